package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/freeport"
)

// gatewayProc is the gateway running as a child process, so that its memory
// and CPU can be read from /proc apart from the load generator's.
type gatewayProc struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	pprofBase string // http://127.0.0.1:PORT of pprof, "" when off
	exited    chan struct{}
	waitErr   error       // set before exited is closed
	killed    atomic.Bool // SIGKILLed by the run (KillOwnerAt)
}

// buildGateway compiles ./cmd/gateway of the module containing the working
// directory into dir and returns the binary's path.
func buildGateway(ctx context.Context, dir string) (string, error) {
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	out, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the chatio-gateway module: run from it or pass the gateway binary")
	}
	bin := filepath.Join(dir, "gateway")
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, b)
	}
	return bin, nil
}

// startGateway runs bin against the simulator at upstream and waits until
// it is ready.
func startGateway(ctx context.Context, bin, upstream string, env []string, pprof bool, stderr io.Writer) (*gatewayProc, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	g := &gatewayProc{base: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
	// The embedded engine's store: the run's own, gone with the gateway.
	dataDir, err := os.MkdirTemp("", "loadgen-gateway-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"GATEWAY_DATA_DIR="+dataDir,
		"CHATIO_URL="+upstream,
		"CHATIO_LICENSE=1",
		"GATEWAY_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"GATEWAY_LOG_LEVEL=warn",
		"GATEWAY_SHUTDOWN_GRACE=20s",
	)
	if pprof {
		pp, err := freeport.Pick()
		if err != nil {
			_ = os.RemoveAll(dataDir)
			return nil, err
		}
		g.pprofBase = "http://127.0.0.1:" + strconv.Itoa(pp)
		cmd.Env = append(cmd.Env, "GATEWAY_PPROF=true", "GATEWAY_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pp))
	}
	cmd.Env = append(cmd.Env, env...)
	if stderr == nil {
		stderr = io.Discard
	}
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	// The gateway must not outlive the load generator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	g.cmd = cmd
	go func() {
		g.waitErr = cmd.Wait()
		_ = os.RemoveAll(dataDir)
		close(g.exited)
	}()
	if err := g.waitReady(ctx, 15*time.Second); err != nil {
		g.kill()
		return nil, err
	}
	return g, nil
}

func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

func (g *gatewayProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("gateway exited at start: %v", g.waitErr)
		default:
		}
		resp, err := client.Get(g.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway not ready after %v", timeout)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// stop asks the gateway to shut down (SIGTERM) and waits, killing it after
// timeout.
func (g *gatewayProc) stop(timeout time.Duration) error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.exited:
		return g.waitErr
	case <-t.C:
		g.kill()
		return errors.New("gateway did not stop in time: killed")
	}
}

func (g *gatewayProc) kill() {
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// fetchProfile saves one pprof profile of the gateway into path.
func (g *gatewayProc) fetchProfile(ctx context.Context, name, query, path string) error {
	if g.pprofBase == "" {
		return errors.New("pprof is off")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.pprofBase+"/debug/pprof/"+name+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", name, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runtimeStats are the gateway's Go runtime figures from its /metrics.
type runtimeStats struct {
	Goroutines float64 `json:"goroutines"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	HeapAlloc  float64 `json:"heap_alloc_bytes"`
	Reconnects float64 `json:"upstream_reconnects"` // gateway_upstream_reconnects_total
}

// scrapeRuntime reads go_goroutines, the memstats gauges and the upstream
// reconnects from /metrics.
func (g *gatewayProc) scrapeRuntime(ctx context.Context) (runtimeStats, error) {
	var rs runtimeStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/metrics", nil)
	if err != nil {
		return rs, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rs, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return rs, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			rs.Goroutines = v
		case "go_memstats_heap_inuse_bytes":
			rs.HeapInuse = v
		case "go_memstats_stack_inuse_bytes":
			rs.StackInuse = v
		case "go_memstats_heap_alloc_bytes":
			rs.HeapAlloc = v
		case "gateway_upstream_reconnects_total":
			rs.Reconnects = v
		}
	}
	return rs, nil
}
