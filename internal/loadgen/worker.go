package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Either mode's clients can run in a child process (see Config.Worker):
// the parent drives a remoteFleet, the child serves ServeWorker, one JSON
// request and one JSON answer per line.

// fleetSpec says which fleet a worker opens.
type fleetSpec struct {
	Mode    string   `json:"mode"`              // ModeGateway or ModeDirect
	URL     string   `json:"url"`               // the gateway's base URL or the simulator's websocket URL
	URLs    []string `json:"urls,omitempty"`    // gateway: the replicas' base URLs when there are several (URL unused)
	Prefix  string   `json:"prefix"`            // token prefix
	Proto   string   `json:"proto,omitempty"`   // gateway: ProtoH1 or ProtoH2
	H2Conns int      `json:"h2conns,omitempty"` // gateway over h2c
	Loops   int      `json:"read_loops"`        // direct: Config.DirectReadLoops
}

// newFleet makes the fleet spec describes in this process.
func newFleet(spec fleetSpec) (fleet, error) {
	if spec.Mode == ModeGateway {
		bases := spec.URLs
		if len(bases) == 0 {
			bases = []string{spec.URL}
		}
		return newGatewayFleet(bases, spec.Prefix, spec.Proto, spec.H2Conns), nil
	}
	return newDirectFleet(spec.URL, spec.Prefix, spec.Loops)
}

type workerRequest struct {
	Op       string        `json:"op"` // open, load, drain, throughput, result, close
	Fleet    *fleetSpec    `json:"fleet,omitempty"`
	K        int           `json:"k,omitempty"`
	Rate     float64       `json:"rate,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Sent     []int64       `json:"sent,omitempty"`
	Callers  int           `json:"callers,omitempty"`
}

type workerAnswer struct {
	Err        string           `json:"err,omitempty"`
	Chats      []string         `json:"chats,omitempty"`
	N          int64            `json:"n,omitempty"`
	Throughput *fleetThroughput `json:"throughput,omitempty"`
	Result     *fleetResult     `json:"result,omitempty"`
}

// ServeWorker runs one mode's clients for a parent load generator:
// requests on r, answers on w, until "close" or the end of r. Every phase
// is bounded by the parent's request; the worker exits when its input ends
// (the parent is gone).
func ServeWorker(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	enc := json.NewEncoder(w)
	var f fleet
	ctx := context.Background()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	for {
		var req workerRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var ans workerAnswer
		var err error
		switch {
		case req.Op == "open" && f == nil && req.Fleet != nil:
			if f, err = newFleet(*req.Fleet); err == nil {
				ans.Chats, err = f.Open(ctx, req.K, req.Rate)
			}
		case f == nil:
			err = errors.New("open first")
		case req.Op == "load":
			ans.N, err = f.Load(ctx, req.Rate, req.Duration)
		case req.Op == "drain":
			err = f.Drain(ctx, req.Sent, req.Duration)
		case req.Op == "throughput":
			var t fleetThroughput
			t, err = f.Throughput(ctx, req.Callers, req.Duration)
			ans.Throughput = &t
		case req.Op == "result":
			var res fleetResult
			res, err = f.Result(ctx)
			ans.Result = &res
		case req.Op == "close":
			err = f.Close()
			f = nil
			if err == nil {
				return enc.Encode(ans)
			}
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		if err != nil {
			ans.Err = err.Error()
		}
		if err := enc.Encode(ans); err != nil {
			return err
		}
	}
}

// remoteFleet drives a fleet in a child process.
type remoteFleet struct {
	spec   fleetSpec
	cmd    *exec.Cmd // nil when the worker is not a process (tests)
	in     io.WriteCloser
	enc    *json.Encoder
	dec    *json.Decoder
	exited chan struct{} // closed when cmd has been waited for
}

func startRemoteFleet(argv []string, spec fleetSpec, stderr io.Writer) (*remoteFleet, error) {
	cmd, in, out, err := startChild(argv, stderr)
	if err != nil {
		return nil, fmt.Errorf("start client worker: %w", err)
	}
	f := &remoteFleet{spec: spec, cmd: cmd}
	f.initPipes(in, out)
	go func() {
		_ = cmd.Wait()
		close(f.exited)
	}()
	return f, nil
}

// startChild starts argv, a child of this load generator driven over its
// standard input and output, killed if this process dies; its standard
// error goes to stderr (nil: this process's).
func startChild(argv []string, stderr io.Writer) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if stderr == nil {
		stderr = os.Stderr
	}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, in, out, nil
}

func (f *remoteFleet) initPipes(in io.WriteCloser, out io.Reader) {
	f.in = in
	f.enc = json.NewEncoder(in)
	f.dec = json.NewDecoder(bufio.NewReader(out))
	f.exited = make(chan struct{})
}

func (f *remoteFleet) kill() {
	if f.cmd != nil {
		_ = f.cmd.Process.Kill()
	} else {
		_ = f.in.Close()
	}
}

func (f *remoteFleet) pid() int { return f.cmd.Process.Pid }

// call sends one request and reads its answer; ctx ending kills the worker.
func (f *remoteFleet) call(ctx context.Context, req workerRequest) (workerAnswer, error) {
	stop := context.AfterFunc(ctx, f.kill)
	defer stop()
	var ans workerAnswer
	if err := f.enc.Encode(req); err != nil {
		return ans, fmt.Errorf("client worker: %w", err)
	}
	if err := f.dec.Decode(&ans); err != nil {
		return ans, fmt.Errorf("client worker: %w", err)
	}
	if ans.Err != "" {
		return ans, fmt.Errorf("client worker: %s", ans.Err)
	}
	return ans, nil
}

func (f *remoteFleet) Open(ctx context.Context, k int, ramp float64) ([]string, error) {
	ans, err := f.call(ctx, workerRequest{Op: "open", Fleet: &f.spec, K: k, Rate: ramp})
	return ans.Chats, err
}

func (f *remoteFleet) Load(ctx context.Context, rate float64, d time.Duration) (int64, error) {
	ans, err := f.call(ctx, workerRequest{Op: "load", Rate: rate, Duration: d})
	return ans.N, err
}

func (f *remoteFleet) Drain(ctx context.Context, sent []int64, timeout time.Duration) error {
	_, err := f.call(ctx, workerRequest{Op: "drain", Sent: sent, Duration: timeout})
	return err
}

func (f *remoteFleet) Throughput(ctx context.Context, callers int, d time.Duration) (fleetThroughput, error) {
	ans, err := f.call(ctx, workerRequest{Op: "throughput", Callers: callers, Duration: d})
	if err != nil || ans.Throughput == nil {
		return fleetThroughput{}, err
	}
	return *ans.Throughput, nil
}

func (f *remoteFleet) Result(ctx context.Context) (fleetResult, error) {
	ans, err := f.call(ctx, workerRequest{Op: "result"})
	if err != nil || ans.Result == nil {
		return fleetResult{}, err
	}
	return *ans.Result, nil
}

func (f *remoteFleet) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := f.call(ctx, workerRequest{Op: "close"})
	_ = f.in.Close()
	if f.cmd == nil {
		return err
	}
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		f.kill()
		<-f.exited
	}
	return err
}
