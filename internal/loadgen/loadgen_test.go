package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// workerEnv makes the test binary a client worker: the smoke run's worker
// command is the test binary itself.
const workerEnv = "LOADGEN_TEST_CLIENT_WORKER"

// relayArg as the test binary's only argument makes it the relay of the
// smoke run's relay mode.
const relayArg = "loadgen-test-relay"

func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == relayArg {
		if err := ServeRelay(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(workerEnv) == "1" {
		if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPushSentAt(t *testing.T) {
	at := time.Unix(0, 1712345678123456789)
	data := []byte(`{"chat":"C1","event":{"id":"T_1","type":"message","text":"` + agentText(at) + `","order":1}}`)
	got, ok := pushSentAt(data)
	if !ok || !got.Equal(at) {
		t.Fatalf("pushSentAt = %v, %v; want %v", got, ok, at)
	}
	for _, bad := range []string{`{"text":"hello"}`, `{"text":"lg:"}`, `{"text":"lg:12x"}`, `{"text":"lg:12`} {
		if _, ok := pushSentAt([]byte(bad)); ok {
			t.Errorf("pushSentAt(%s) found a time", bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ns []int64
	for i := 1; i <= 1000; i++ {
		ns = append(ns, int64(i)*int64(time.Millisecond))
	}
	l := summarize(ns)
	if l.Count != 1000 || l.P50 != 500 || l.P90 != 900 || l.P99 != 990 || l.P999 != 999 || l.Max != 1000 {
		t.Fatalf("summarize = %+v", l)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("summarize(nil) not zero")
	}
}

// smokeSetup is what a smoke run needs (skipped with -short): a context
// of 2 minutes, a gateway built from ./cmd/gateway, and a log that the
// test prints when it fails.
func smokeSetup(t *testing.T) (context.Context, string, *syncBuffer) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	bin, err := buildGateway(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	return ctx, bin, log
}

// TestSmoke is a short run of the whole load generator, both modes, so that
// it cannot rot: a gateway child process built from ./cmd/gateway, 20
// customers over h2c with each mode's clients in a worker process, then
// over HTTP/1.1 with the clients in this process, and the direct baseline.
func TestSmoke(t *testing.T) {
	ctx, bin, log := smokeSetup(t)
	base := Config{
		K: 20, Ramp: 200, R: 100, S: 20, Duration: 1500 * time.Millisecond,
		Callers: 2, CallersDuration: 500 * time.Millisecond,
		Settle: 200 * time.Millisecond, DrainTimeout: 3 * time.Second,
		GatewayBin: bin, Log: log, GatewayStderr: log,
	}

	h2 := base
	h2.Proto, h2.H2Conns, h2.Mode = ProtoH2, 2, ModeBoth
	t.Setenv(workerEnv, "1") // for the worker, which inherits it
	h2.Worker = []string{os.Args[0]}
	// Streams quieter than the write timeout must live on (over HTTP/2 a
	// write deadline left set resets an idle stream): 1 message/s per
	// session, a 400 ms write timeout.
	h2.R = 20
	h2.GatewayEnv = []string{"GATEWAY_STREAM_WRITE_TIMEOUT=400ms"}
	rep, err := Run(ctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Modes) != 2 {
		t.Fatalf("%d modes ran, want 2", len(rep.Modes))
	}
	for _, m := range rep.Modes {
		checkMode(t, m, h2)
	}
	g := rep.mode(ModeGateway)
	// 2 connections for the streams and REST calls, and the minimal HTTP/1.1
	// client's: one per call in flight at once, a few at these rates.
	if g.Connections < 2 || g.Connections > 2+4 {
		t.Errorf("gateway h2: %d connections, want the streams multiplexed over 2", g.Connections)
	}
	if g.Gateway == nil || g.Gateway.IdleRSSMiB <= 0 || g.Gateway.OpenRSSMiB <= 0 {
		t.Errorf("gateway memory not measured: %+v", g.Gateway)
	}
	for _, m := range rep.Modes {
		if !strings.HasPrefix(m.ClientProcess, "worker") {
			t.Errorf("%s clients ran %q", m.Mode, m.ClientProcess)
		}
	}
	// Half the streams are read by h2Reader, half by net/http's client.
	if g.PushNetHTTP.Count == 0 || g.Push.Count == 0 || int64(g.Push.Count+g.PushNetHTTP.Count) != g.AgentSent {
		t.Errorf("gateway h2: %d pushes read by h2Reader, %d by net/http, %d sent", g.Push.Count, g.PushNetHTTP.Count, g.AgentSent)
	}
	var text, md bytes.Buffer
	if err := rep.Text(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"push latency p99 (ms)", "push latency, read by net/http's client p99 (ms)", "sendMessage p50 (ms)", "HTTP floor (GET /healthz) p50 (ms)", "sendMessage, minimal HTTP/1.1 client p50 (ms)", "gateway KiB per session", "throughput (calls/s)",
		"h2Reader (the even conns)", "net/http's client, h2c", "the client's read loop", "the client's websocket actions"} {
		if !strings.Contains(text.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.JSON(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}

	// The relay mode: the direct clients through a byte relay, then
	// without; clients in the worker as above.
	rl := base
	rl.Mode, rl.K, rl.Duration, rl.Callers = ModeRelay, 10, time.Second, 0
	rl.Worker, rl.Relay = []string{os.Args[0]}, []string{os.Args[0], relayArg}
	rep, err = Run(ctx, rl)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Modes) != 2 || rep.mode(ModeRelay) == nil || rep.mode(ModeDirect) == nil {
		t.Fatalf("relay run: modes %v", rep.Modes)
	}
	for _, m := range rep.Modes {
		checkMode(t, m, rl)
	}
	if r := rep.mode(ModeRelay); r.Gateway == nil || r.Gateway.OpenRSSMiB <= 0 {
		t.Errorf("relay: its process not measured: %+v", r.Gateway)
	}
	text.Reset()
	if err := rep.Text(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"through a byte relay process", "relay KiB per session", "push latency p99 (ms)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("relay report lacks %q:\n%s", want, text.String())
		}
	}

	h1 := base
	h1.Proto, h1.Mode, h1.Callers = ProtoH1, ModeGateway, 0
	h1.K, h1.Duration = 10, time.Second
	rep, err = Run(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	g = rep.mode(ModeGateway)
	checkMode(t, g, h1)
	if g.ClientProcess != "in-process" {
		t.Errorf("gateway h1 clients ran %q", g.ClientProcess)
	}
	// Every stream is read by net/http's client, reported as the push row.
	if g.Push.Count == 0 || g.PushNetHTTP.Count != 0 {
		t.Errorf("gateway h1: %d pushes in the push row, %d in net/http's beside h2Reader's", g.Push.Count, g.PushNetHTTP.Count)
	}
	if g.PushReadBy != "net/http's client" || g.CallsMadeBy != "net/http's client, HTTP/1.1" {
		t.Errorf("gateway h1: push read by %q, calls made by %q", g.PushReadBy, g.CallsMadeBy)
	}
	if g.Connections < int64(h1.K) {
		t.Errorf("gateway h1: %d connections for %d streams", g.Connections, h1.K)
	}
}

func checkMode(t *testing.T, m *ModeReport, cfg Config) {
	t.Helper()
	if m.Opened != cfg.K {
		t.Errorf("%s: %d/%d sessions open", m.Mode, m.Opened, cfg.K)
	}
	if m.TotalErrors() != 0 {
		t.Errorf("%s: errors %v", m.Mode, m.Errors)
	}
	if cfg.R > 0 && m.AgentSent < int64(cfg.R*cfg.Duration.Seconds()/2) {
		t.Errorf("%s: %d agent messages sent, want about %.0f", m.Mode, m.AgentSent, cfg.R*cfg.Duration.Seconds())
	}
	if m.AgentReceived != m.AgentSent || m.Lost != 0 || m.Duplicates != 0 {
		t.Errorf("%s: %d agent messages sent, %d received (%d lost, %d duplicated)", m.Mode, m.AgentSent, m.AgentReceived, m.Lost, m.Duplicates)
	}
	if int64(m.Push.Count+m.PushNetHTTP.Count) != m.AgentSent || m.Push.P50 <= 0 || m.Push.Max < m.Push.P99 {
		t.Errorf("%s: push latency %+v for %d messages", m.Mode, m.Push, m.AgentSent)
	}
	for _, op := range []string{"open", "startChat"} {
		if _, l, ok := m.Call(op); !ok || l.Count != cfg.K {
			t.Errorf("%s: %s latency %+v, want %d samples", m.Mode, op, l, cfg.K)
		}
	}
	if _, l, ok := m.Call("sendMessage"); !ok || l.Count == 0 || int64(l.Count) > m.CustomerSent+int64(cfg.Callers)*1000 || l.P50 <= 0 {
		t.Errorf("%s: sendMessage latency %+v (%d sent)", m.Mode, l, m.CustomerSent)
	}
	if m.Mode == ModeGateway {
		// Both clients took their share of the measured phase's calls.
		for _, op := range []string{"sendMessage/raw", "floor", "floor/raw"} {
			if _, l, ok := m.Call(op); !ok || l.Count == 0 || l.P50 <= 0 {
				t.Errorf("%s: %s latency %+v", m.Mode, op, l)
			}
		}
	}
	if cfg.Callers > 0 && (m.Throughput == nil || m.Throughput.Calls == 0 || m.Throughput.Errors != 0) {
		t.Errorf("%s: throughput %+v", m.Mode, m.Throughput)
	}
}

// TestWorker runs the direct fleet through the worker protocol in-process.
// (TestSmoke runs both fleets in a worker process.)
func TestWorker(t *testing.T) {
	sm, err := startSim()
	if err != nil {
		t.Fatal(err)
	}
	defer sm.close()
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeWorker(inR, outW)
		outW.Close()
	}()
	f := &remoteFleet{spec: fleetSpec{Mode: ModeDirect, URL: sm.url, Prefix: "w-"}}
	f.initPipes(inW, outR)
	ctx := context.Background()
	chats, err := f.Open(ctx, 3, 100)
	if err != nil || len(chats) != 3 || chats[0] == "" {
		t.Fatalf("open: %v %v", chats, err)
	}
	agent := sm.s.Agent("a", "")
	sent := make([]int64, 3)
	for i, ch := range chats {
		if _, err := agent.SendMessage(ch, agentText(time.Now())); err != nil {
			t.Fatal(err)
		}
		sent[i]++
	}
	if err := f.Drain(ctx, sent, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := f.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Push) != 3 || len(res.Received) != 3 || res.Received[2] != 1 || len(res.Errors) != 0 {
		t.Fatalf("result %+v", res)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer for several writers (the run's progress and
// the gateway's log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The gateway's /metrics as the load generator reads them: the runtime
// figures and the upstream reconnects, which a run counts as errors.
func TestScrapeRuntime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "# HELP go_goroutines Number of goroutines.\n"+
			"go_goroutines 12\n"+
			"go_memstats_heap_inuse_bytes 4.5e+06\n"+
			"go_memstats_stack_inuse_bytes 65536\n"+
			"go_memstats_heap_alloc_bytes 3e+06\n"+
			"gateway_upstream_reconnects_total 7\n"+
			`gateway_upstream_dial_failures_total{reason="timeout"} 3`+"\n")
	}))
	defer srv.Close()
	rs, err := (&gatewayProc{base: srv.URL}).scrapeRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := runtimeStats{Goroutines: 12, HeapInuse: 4.5e6, StackInuse: 65536, HeapAlloc: 3e6, Reconnects: 7}
	if rs != want {
		t.Fatalf("scraped %+v, want %+v", rs, want)
	}
}
