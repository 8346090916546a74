package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// childEnv makes the test binary run the gateway itself (see TestMain):
// main's body, then a goroutine-leak check before exiting.
const childEnv = "GATEWAY_TEST_CHILD"

// childMain is main for the child process: SIGTERM/SIGINT end run; the
// listen address is printed as "LISTENING addr"; exit status 0 only when
// run returned nil and no goroutine is left behind.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, nil, io.Discard, os.Stderr, func(a net.Addr) { fmt.Printf("LISTENING %s\n", a) })
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreTopFunction("os/signal.loop")); err != nil {
		fmt.Fprintln(os.Stderr, "LEAK:", err)
		return 3
	}
	fmt.Println("CLEAN EXIT")
	return 0
}

// TestSIGTERMUnderLoad runs the gateway as a real process (this test
// binary, re-executed) against a simulator in this process, loads it with
// customers, open streams, agents talking and REST calls in flight (the
// simulator holds each answer 600 ms), sends SIGTERM, and checks the
// shutdown: every call in flight completes, every stream ends with a
// "retry:" hint, every upstream socket is closed by the gateway with a
// normal close frame, and the process exits 0 within the grace period
// having passed its own goroutine-leak check.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	const (
		customers = 12
		grace     = 5 * time.Second
		latency   = 600 * time.Millisecond
	)
	sim, upstream := chatiotest.Start(t, chatiosim.Config{})
	gw := startChild(t, upstream, grace)
	base, stderr, exited := gw.base, gw.stderr, gw.exited

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer client.CloseIdleConnections()
	call := func(method, path, token, body string) (int, []byte, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}

	// Load: customers with a chat and two open streams each, and an agent
	// talking in every chat.
	tokens := make([]string, customers)
	chats := make([]string, customers)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("sigterm-%d", i)
		st, b, err := call("POST", "/v1/chats", tokens[i], `{}`)
		if err != nil || st != 201 {
			t.Fatalf("start chat: %d %s %v", st, b, err)
		}
		var c struct{ ID string }
		_ = json.Unmarshal(b, &c)
		chats[i] = c.ID
	}
	var streams []*termStream
	for _, tok := range tokens {
		for range 2 {
			streams = append(streams, openTermStream(t, client, base, tok))
		}
	}
	for _, s := range streams {
		s.waitConnected(t)
	}
	agent := sim.Agent("sigterm-agent", "Agent")
	stopAgent := make(chan struct{})
	var agentWG sync.WaitGroup
	agentWG.Add(1)
	go func() {
		defer agentWG.Done()
		for n := 0; ; n++ {
			select {
			case <-stopAgent:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_, _ = agent.SendMessage(chats[n%customers], fmt.Sprintf("agent %d", n))
		}
	}()
	defer func() { close(stopAgent); agentWG.Wait() }()

	// Calls in flight: the simulator holds every answer; SIGTERM comes once
	// all of them have reached it.
	sim.SetLatency(latency)
	before := sim.Stats().Requests
	type outcome struct {
		status int
		body   []byte
		err    error
	}
	outcomes := make(chan outcome, customers)
	for i, tok := range tokens {
		go func() {
			st, b, err := call("POST", "/v1/chats/"+chats[i]+"/messages", tok, `{"text":"in flight at SIGTERM"}`)
			outcomes <- outcome{st, b, err}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for sim.Stats().Requests < before+customers {
		if time.Now().After(deadline) {
			t.Fatal("the calls did not reach the simulator")
		}
		time.Sleep(5 * time.Millisecond)
	}
	closesBefore := sim.Stats().ClientCloses
	sockets := sim.OpenSockets()

	start := time.Now()
	gw.sigterm(t)

	// Every call in flight completes.
	completed := 0
	for range customers {
		o := <-outcomes
		switch {
		case o.err != nil:
			t.Errorf("call in flight cut: %v", o.err)
		case o.status == 201:
			completed++
		default:
			var e struct{ Code, Message string }
			if json.Unmarshal(o.body, &e) != nil || e.Code == "" {
				t.Errorf("call in flight answered %d %q: not a clean error", o.status, o.body)
			}
		}
	}
	// Every stream ends, its last message a retry hint of its own in
	// [hint, 2×hint] (GATEWAY_RETRY_HINT=2s): the clients come back spread
	// out.
	hints := map[int]bool{}
	for i, s := range streams {
		ms, ok := s.endedWithRetry(t, grace+2*time.Second)
		if !ok || ms < 2000 || ms > 4000 {
			t.Errorf("stream %d ended without a retry hint in 2000..4000 ms; last block %q", i, s.lastBlock())
		}
		hints[ms] = true
	}
	if len(hints) < 2 {
		t.Errorf("the %d streams ended with the same retry hint %v", len(streams), hints)
	}
	// The process exits, cleanly and in time.
	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("no exit %v after SIGTERM; stderr: %s", grace+5*time.Second, stderr.String())
	}
	took := time.Since(start)
	if exitErr != nil {
		t.Fatalf("exit: %v; stderr: %s", exitErr, stderr.String())
	}
	if took > grace {
		t.Errorf("exit %v after SIGTERM, grace %v", took, grace)
	}
	// Every upstream socket was closed by the gateway with a close frame.
	deadline = time.Now().Add(3 * time.Second)
	for sim.OpenSockets() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	normal := sim.Stats().ClientCloses - closesBefore
	if sim.OpenSockets() != 0 || normal != uint64(sockets) {
		t.Errorf("upstream: %d sockets open, %d of %d closed with a normal close frame", sim.OpenSockets(), normal, sockets)
	}
	if strings.Contains(stderr.String(), "LEAK") {
		t.Errorf("child leaked: %s", stderr.String())
	}
	t.Logf("SIGTERM under load: %d calls in flight, %d completed; %d streams ended with retry; %d upstream sockets closed normally; exit after %v (grace %v)",
		customers, completed, len(streams), normal, took.Round(time.Millisecond), grace)
	if completed != customers {
		t.Errorf("%d of %d calls in flight completed (the simulator answers within %v, well inside the grace)", completed, customers, latency)
	}
}

// termStream reads one event stream to its end, keeping its message blocks.
type termStream struct {
	res       *http.Response
	connected chan struct{}
	done      chan struct{}

	mu     sync.Mutex
	blocks []string // the raw field lines of each message block
}

func openTermStream(t *testing.T, client *http.Client, base, token string) *termStream {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v", err)
	}
	s := &termStream{res: res, connected: make(chan struct{}), done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() { res.Body.Close(); <-s.done })
	return s
}

func (s *termStream) read() {
	defer close(s.done)
	sc := bufio.NewScanner(s.res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur bytes.Buffer
	seen := false
	for sc.Scan() {
		l := sc.Text()
		if l != "" {
			cur.WriteString(l + "\n")
			continue
		}
		if cur.Len() == 0 {
			continue
		}
		b := cur.String()
		cur.Reset()
		if strings.HasPrefix(b, ": heartbeat") {
			continue // heartbeats come and go; not the end of anything
		}
		s.mu.Lock()
		s.blocks = append(s.blocks, b)
		s.mu.Unlock()
		if !seen && strings.Contains(b, "event: connected\n") {
			seen = true
			close(s.connected)
		}
	}
}

func (s *termStream) waitConnected(t *testing.T) {
	t.Helper()
	select {
	case <-s.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("stream not connected")
	}
}

// endedWithRetry waits for the stream's end: the retry field of its last
// block (ms), ok when it has one.
func (s *termStream) endedWithRetry(t *testing.T, within time.Duration) (ms int, ok bool) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(within):
		t.Errorf("stream still open %v after SIGTERM", within)
		return 0, false
	}
	for _, l := range strings.Split(s.lastBlock(), "\n") {
		if v, found := strings.CutPrefix(l, "retry: "); found {
			ms, err := strconv.Atoi(v)
			return ms, err == nil
		}
	}
	return 0, false
}

func (s *termStream) lastBlock() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blocks) == 0 {
		return ""
	}
	return s.blocks[len(s.blocks)-1]
}

// child is the gateway run as a process (this test binary, re-executed;
// see childMain) against upstream.
type child struct {
	cmd    *exec.Cmd
	base   string      // http://addr
	stderr *syncBuffer // its log
	exited chan error  // cmd.Wait's, once stdout is read to its end
}

// startChild starts the gateway process with a shutdown grace of grace
// and waits until it listens. A failed test kills it.
func startChild(t *testing.T, upstream string, grace time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		"CHATIO_URL="+upstream, "CHATIO_LICENSE=1",
		"GATEWAY_ADDR=127.0.0.1:0",
		"GATEWAY_SHUTDOWN_GRACE="+grace.String(),
		"GATEWAY_LOG_LEVEL=warn",
		"GATEWAY_RETRY_HINT=2s",
		"GATEWAY_HEARTBEAT=1s",
		"GATEWAY_DATA_DIR="+t.TempDir(),
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		c.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { // a failed test must not leave the child running
		_ = cmd.Process.Kill()
	})
	select {
	case l := <-lines:
		addr, ok := strings.CutPrefix(l, "LISTENING ")
		if !ok {
			t.Fatalf("child said %q; stderr: %s", l, c.stderr.String())
		}
		c.base = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("child not listening; stderr: %s", c.stderr.String())
	}
	go func() { // the rest of stdout ("CLEAN EXIT")
		for range lines {
		}
	}()
	return c
}

func (c *child) sigterm(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERMUpload: an upload that cannot finish within the grace (its
// client stalls halfway through the file) is answered before the grace
// ends: 503 OVERLOADED with Retry-After and a JSON body. The upstream never
// gets the file, and the process exits cleanly in time.
func TestSIGTERMUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	const grace = 4 * time.Second
	sim, simURL := chatiotest.Start(t, chatiosim.Config{})
	// The upstream as the gateway sees it: the simulator, telling when an
	// upload reaches it.
	uploading := make(chan struct{}, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/action/send_file") {
			select {
			case uploading <- struct{}{}:
			default:
			}
		}
		sim.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	_ = simURL
	gw := startChild(t, "ws"+strings.TrimPrefix(proxy.URL, "http")+"/customer/v0.5", grace)

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("POST", gw.base+"/v1/chats", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer sigterm-upload")
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("start chat: %v", err)
	}
	var chat struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&chat)
	res.Body.Close()

	// The upload: the head of the form and part of the file, then nothing.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = io.WriteString(pw, "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n")
		_, _ = pw.Write(bytes.Repeat([]byte("a"), 256<<10))
	}()
	req, _ = http.NewRequest("POST", gw.base+"/v1/chats/"+chat.ID+"/files", pr)
	req.Header.Set("Authorization", "Bearer sigterm-upload")
	req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
	type answer struct {
		res  *http.Response
		body []byte
		err  error
		at   time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := client.Do(req)
		a := answer{res: res, err: err}
		if err == nil {
			a.body, a.err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		a.at = time.Now()
		answered <- a
	}()
	select {
	case <-uploading:
	case <-time.After(10 * time.Second):
		t.Fatalf("the upload never reached the upstream; stderr: %s", gw.stderr.String())
	}

	start := time.Now()
	gw.sigterm(t)
	var a answer
	select {
	case a = <-answered:
	case <-time.After(grace + 5*time.Second):
		// (A cut connection does not end client.Do either: the transport
		// waits for its body writer, stalled on the pipe.)
		t.Fatalf("no answer to the upload; stderr %s", gw.stderr.String())
	}
	if a.err != nil {
		t.Fatalf("upload cut without an answer after %v: %v", time.Since(start).Round(time.Millisecond), a.err)
	}
	var e struct{ Code, Message string }
	if a.res.StatusCode != 503 || json.Unmarshal(a.body, &e) != nil || e.Code != "OVERLOADED" || e.Message == "" ||
		a.res.Header.Get("Retry-After") == "" {
		t.Fatalf("upload answered %d %q (Retry-After %q), want 503 OVERLOADED with Retry-After", a.res.StatusCode, a.body, a.res.Header.Get("Retry-After"))
	}
	if took := a.at.Sub(start); took > grace {
		t.Errorf("upload answered %v after SIGTERM, grace %v", took, grace)
	}

	select {
	case err := <-gw.exited:
		if err != nil {
			t.Fatalf("exit: %v; stderr: %s", err, gw.stderr.String())
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("no exit after SIGTERM; stderr: %s", gw.stderr.String())
	}
	if took := time.Since(start); took > grace {
		t.Errorf("exit %v after SIGTERM, grace %v", took, grace)
	}
	if strings.Contains(gw.stderr.String(), "LEAK") {
		t.Errorf("child leaked: %s", gw.stderr.String())
	}
	for _, ev := range sim.Events(chat.ID) {
		if ev.Type == "file" {
			t.Errorf("the cut upload became a file event: %s", ev.Raw)
		}
	}
	t.Logf("upload answered %d %s %v after SIGTERM (grace %v)", a.res.StatusCode, e.Code, a.at.Sub(start).Round(time.Millisecond), grace)
}
