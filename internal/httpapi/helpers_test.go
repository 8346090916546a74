package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/memnet"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is one gateway under test: the simulator, a real session pool and the
// HTTP server on 127.0.0.1.
type env struct {
	t      *testing.T
	sim    *chatiosim.Server
	pool   *session.Pool
	api    *Server
	srv    *httptest.Server
	client *http.Client
	reg    *prometheus.Registry
	logs   *observer.ObservedLogs
	// dial connects to the gateway (srv) over the in-memory network of
	// newBubbleEnv; nil over loopback.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

type envOptions struct {
	cfg         Config
	pool        session.Config
	sim         chatiosim.Config
	upstreamURL string      // instead of the simulator's
	log         *zap.Logger // instead of an observer that keeps every entry
}

func newEnv(t *testing.T, opts ...func(*envOptions)) *env {
	t.Helper()
	return startEnv(t, false, opts...)
}

// newBubbleEnv is newEnv for a test inside a synctest bubble
// (synctest.Test): the simulator and the gateway are served over in-memory
// networks (memnet) instead of loopback sockets, so that every goroutine
// of the test blocks durably and the bubble's fake clock moves on when all
// of them wait: a test of a timer (the heartbeat) takes no wall time and
// can check the instant something happened. The pool reads its sockets
// with goroutines (ReadLoops -1): the event loops wait in epoll, outside
// the bubble's knowledge.
func newBubbleEnv(t *testing.T, opts ...func(*envOptions)) *env {
	t.Helper()
	return startEnv(t, true, opts...)
}

// serveOn serves h with an httptest.Server on ln instead of a loopback
// listener.
func serveOn(h http.Handler, ln net.Listener) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return srv
}

func startEnv(t *testing.T, inMemory bool, opts ...func(*envOptions)) *env {
	t.Helper()
	o := envOptions{
		cfg: Config{AllowedOrigins: []string{"https://shop.example"}},
		pool: session.Config{
			ReconnectWait: 500 * time.Millisecond,
			DialTimeout:   3 * time.Second,
			ReconnectMin:  20 * time.Millisecond,
			ReconnectMax:  100 * time.Millisecond,
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e := &env{t: t}
	var url string
	pc := o.pool
	if inMemory {
		e.sim = chatiosim.New(o.sim)
		ln := memnet.Listen("simulator.test:80")
		sim := serveOn(e.sim, ln)
		tr := &http.Transport{DialContext: ln.Dial}
		t.Cleanup(func() {
			e.sim.Close()
			sim.Close()
			tr.CloseIdleConnections()
		})
		url = "ws://simulator.test:80/customer/v0.5"
		pc.Upstream.HTTPClient = &http.Client{Transport: tr}
		pc.ReadLoops = -1
	} else {
		e.sim, url = chatiotest.Start(t, o.sim)
	}
	if o.upstreamURL != "" {
		url = o.upstreamURL
	}
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	log := zap.New(core)
	if o.log != nil {
		log = o.log
	}
	e.reg = prometheus.NewRegistry()

	pc.Upstream.URL = url
	pc.Upstream.License = 1
	if pc.Upstream.RequestTimeout == 0 {
		pc.Upstream.RequestTimeout = 3 * time.Second
	}
	e.pool = session.NewPool(pc, log, e.reg)
	e.api = New(o.cfg, e.pool, log, e.reg)
	if inMemory {
		ln := memnet.Listen("gateway.test:80")
		e.srv = serveOn(e.api.Handler(), ln)
		e.dial = ln.Dial
		e.client = &http.Client{Transport: &http.Transport{DialContext: ln.Dial}}
	} else {
		e.srv = httptest.NewServer(e.api.Handler())
		e.client = &http.Client{Transport: &http.Transport{}}
	}
	t.Cleanup(func() {
		e.api.SetDraining() // ends open streams
		e.client.CloseIdleConnections()
		e.srv.CloseClientConnections()
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.pool.Shutdown(ctx); err != nil {
			t.Errorf("pool shutdown: %v", err)
		}
	})
	return e
}

// downURL is an upstream address where nothing listens.
func downURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "ws://" + addr + "/customer/v0.5"
}

// resp is an answer read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// doNoFatal is do for other goroutines: a transport failure is a 0 status.
func (e *env) doNoFatal(method, path, token, body string) resp {
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return resp{body: []byte(err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := e.client.Do(req)
	if err != nil {
		return resp{body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// do sends one request; body may be nil, a string, []byte or io.Reader;
// headers are "Key: value" pairs.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// expect checks an answer's status (and, for errors, its code).
func expect(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code == "" {
		if len(r.body) == 0 {
			return nil
		}
		var m map[string]any
		_ = json.Unmarshal(r.body, &m)
		return m
	}
	m := r.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s; body %s", m["code"], code, r.body)
	}
	if _, ok := m["message"].(string); !ok {
		t.Fatalf("no message in %s", r.body)
	}
	return m
}

// startChat starts a chat for token and returns its id and first thread.
func (e *env) startChat(token string) (chat, thread string) {
	e.t.Helper()
	m := expect(e.t, e.do("POST", "/v1/chats", token, `{}`), 201, "")
	chat, _ = m["id"].(string)
	threads, _ := m["threads"].([]any)
	if chat == "" || len(threads) != 1 {
		e.t.Fatalf("startChat answered %v", m)
	}
	thread, _ = threads[0].(string)
	return chat, thread
}

// watch returns the simulator's activities of one action, as they come.
func (e *env) watch(action string) func() chatiosim.Activity {
	ch, cancel := e.sim.Watch(64)
	e.t.Cleanup(cancel)
	return func() chatiosim.Activity {
		e.t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case a, ok := <-ch:
				if !ok {
					e.t.Fatal("watch closed")
				}
				if a.Action == action {
					return a
				}
			case <-timeout:
				e.t.Fatalf("no %s activity", action)
			}
		}
	}
}

// ---- SSE client ----

type sseMsg struct {
	ID, Event, Data string
	hasID           bool
	Comment         string // a comment line (no other field)
	Retry           string // a retry line (no other field)
}

type sseStream struct {
	t      *testing.T
	res    *http.Response
	ch     chan sseMsg
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openStream opens GET path (with the token, when non-empty) and fails the
// test unless it answers 200 text/event-stream.
func (e *env) openStream(path, token string, headers ...string) *sseStream {
	e.t.Helper()
	s, r := e.tryStream(path, token, headers...)
	if s == nil {
		e.t.Fatalf("stream: status %d: %s", r.status, r.body)
	}
	return s
}

// tryStream opens a stream; on a non-200 answer it returns nil and the answer.
func (e *env) tryStream(path, token string, headers ...string) (*sseStream, resp) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("stream: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		return nil, resp{res.StatusCode, res.Header, b}
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("stream Content-Type %q", ct)
	}
	s := &sseStream{t: e.t, res: res, ch: make(chan sseMsg, 1024), cancel: cancel}
	s.wg.Add(1)
	go s.read()
	e.t.Cleanup(s.close)
	return s, resp{status: res.StatusCode, header: res.Header}
}

func (s *sseStream) read() {
	defer s.wg.Done()
	defer close(s.ch)
	sc := bufio.NewScanner(s.res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur sseMsg
	var have bool
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if have {
				s.ch <- cur
			}
			cur, have = sseMsg{}, false
		case strings.HasPrefix(line, ":"):
			s.ch <- sseMsg{Comment: strings.TrimSpace(line[1:])}
		case strings.HasPrefix(line, "retry: "):
			s.ch <- sseMsg{Retry: line[len("retry: "):]}
		case strings.HasPrefix(line, "id: "):
			cur.ID, cur.hasID, have = line[4:], true, true
		case strings.HasPrefix(line, "event: "):
			cur.Event, have = line[7:], true
		case strings.HasPrefix(line, "data: "):
			if cur.Data != "" {
				cur.Data += "\n"
			}
			cur.Data, have = cur.Data+line[6:], true
		default:
			s.ch <- sseMsg{Comment: "BAD LINE: " + line}
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.res.Body.Close()
	s.wg.Wait()
}

// next returns the next message of any kind; ok false when the stream ended.
func (s *sseStream) next(timeout time.Duration) (sseMsg, bool) {
	s.t.Helper()
	select {
	case m, ok := <-s.ch:
		if strings.HasPrefix(m.Comment, "BAD LINE") {
			s.t.Fatalf("stream: %s", m.Comment)
		}
		return m, ok
	case <-time.After(timeout):
		s.t.Fatalf("stream: nothing within %v", timeout)
		return sseMsg{}, false
	}
}

// event returns the next event, skipping comments and retry lines.
func (s *sseStream) event() sseMsg {
	s.t.Helper()
	for {
		m, ok := s.next(5 * time.Second)
		if !ok {
			s.t.Fatal("stream ended")
		}
		if m.Event != "" || m.Data != "" {
			return m
		}
	}
}

// waitEvent skips events until one named name.
func (s *sseStream) waitEvent(name string) sseMsg {
	s.t.Helper()
	for {
		if m := s.event(); m.Event == name {
			return m
		}
	}
}

// ended waits for the stream's end and returns what came before it.
func (s *sseStream) ended(timeout time.Duration) []sseMsg {
	s.t.Helper()
	var got []sseMsg
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-s.ch:
			if !ok {
				return got
			}
			got = append(got, m)
		case <-deadline:
			s.t.Fatalf("stream did not end within %v; got %+v", timeout, got)
		}
	}
}

// data decodes an event's data.
func (m sseMsg) data(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(m.Data), &v); err != nil {
		t.Fatalf("event %s data %q: %v", m.Event, m.Data, err)
	}
	return v
}

var _ = chatio.MaxFileSize
