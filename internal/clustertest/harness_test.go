package clustertest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/freeport"
)

// gatewayBin is the gateway binary, built once per test run (TestMain).
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gatewayBinary builds cmd/gateway with go build, once per test run.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("no go command: %w", err)
			return
		}
		binDir, buildErr = os.MkdirTemp("", "clustertest-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "gateway")
		cmd := exec.Command(goCmd, "build", "-o", binPath, "github.com/chatio-gateway/chatio-gateway/cmd/gateway")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort is a port of 127.0.0.1 free a moment ago that no other
// process of this test takes first (freeport.Pick): a child keeps it
// across restarts.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runNATS runs a nats-server with JetStream (file store) in the test
// process on 127.0.0.1.
func runNATS(t *testing.T) string {
	t.Helper()
	o := &server.Options{
		ServerName: "ct", Host: "127.0.0.1", Port: freePort(t),
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
}

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

// proc is one child process, a gateway or a nats-server; it keeps its
// ports (and its data dir) across restarts.
type proc struct {
	name, base string
	env        []string
	stderr     *syncBuffer             // every run's stderr
	bin        func(*testing.T) string // gatewayBinary, or natsBinary
	args       []string
	ready      string // the URL that answers 200 once it is ready

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newProc(t *testing.T, name string, env ...string) *proc {
	port := freePort(t)
	p := &proc{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &syncBuffer{}, bin: gatewayBinary}
	p.ready = p.base + "/readyz"
	p.env = append(os.Environ(),
		"GATEWAY_ADDR="+fmt.Sprintf("127.0.0.1:%d", port),
		"GATEWAY_LOG_LEVEL="+cmp.Or(os.Getenv("CLUSTERTEST_LOG_LEVEL"), "warn"),
		"GATEWAY_HEARTBEAT=1s",
		"GATEWAY_RETRY_HINT=1s",
		"GATEWAY_SHUTDOWN_GRACE=5s",
		"GATEWAY_RATE_LIMIT=1000", "GATEWAY_RATE_BURST=1000",
		"GATEWAY_LEASE_TTL=2s",
		"GATEWAY_NODE_ID="+name,
		"CHATIO_LICENSE=1",
	)
	p.env = append(p.env, env...)
	t.Cleanup(func() { p.kill() })
	return p
}

// start runs the process and waits until it is ready (a gateway's
// /readyz, a nats-server's /healthz answers 200).
func (p *proc) start(t *testing.T) {
	t.Helper()
	p.launch(t)
	p.waitReady(t, 20*time.Second)
}

// launch runs the process.
func (p *proc) launch(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin(t), p.args...)
	cmd.Env = p.env
	fmt.Fprintf(p.stderr, "--- %s start %s\n", p.name, time.Now().Format("15:04:05.000"))
	cmd.Stderr = p.stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// waitReady waits until p.ready answers 200.
func (p *proc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for {
		res, err := c.Get(p.ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start; stderr:\n%s", p.name, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready; stderr:\n%s", p.name, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		fmt.Fprintf(p.stderr, "--- %s %v %s\n", p.name, sig, time.Now().Format("15:04:05.000"))
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the current run to end.
func (p *proc) wait(t *testing.T, within time.Duration) {
	t.Helper()
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, within, p.stderr.String())
	}
}

// kill ends the current run, SIGKILL (also when stopped), and reaps it.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// ownedSessions is the replica's gateway_sessions gauge (-1 unreachable).
func (p *proc) ownedSessions() int { return p.metric("gateway_sessions") }

// metric is the value of an unlabelled series of the replica's /metrics
// (-1 unreachable or absent).
func (p *proc) metric(name string) int {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	res, err := c.Get(p.base + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f)
		}
	}
	return -1
}

// bases picks a random replica for every request.
type bases []string

func (b bases) pick() string { return b[rand.N(len(b))] }

// restClient is the customers' REST client (a stopped replica must not
// hold a request forever).
func restClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 8 * time.Second}
}

func do(c *http.Client, method, url, token, body string) (int, []byte) {
	st, b, _ := doH(c, method, url, token, body)
	return st, b
}

// doH is do that also returns the answer's header.
func doH(c *http.Client, method, url, token, body string) (int, []byte, http.Header) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

func jsonField(b []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// msg is one stream message as recorded.
type msg struct {
	ID, Event, Data string
	Conn            int
	At              time.Time // when it was read
}

// recorder reads a customer's event stream like an EventSource whose
// every (re)connection goes to a random replica, with Last-Event-ID; a
// connection silent for idleCut (heartbeats are 1 s) is given up.
type recorder struct {
	c      *http.Client
	pick   func() string
	token  string
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	msgs   []msg
	lastID string
	conns  int
	fails  int
	ends   []streamEnd // how each connection that got a 200 ended (the last maxRefusals)
	refus  []refusal   // connections answered other than 200 (the last maxRefusals)
}

// streamEnd is the end of one stream connection: hinted when its last
// lines were a retry hint ("retry: N" and a comment saying reconnect),
// cut when the recorder gave up on it (idleCut) or stopped.
type streamEnd struct {
	at          time.Time
	hinted, cut bool
}

// refusal is a stream connection answered other than 200 (status 0: no
// answer).
type refusal struct {
	at         time.Time
	status     int
	code       string
	retryAfter string
}

const maxRefusals = 10000

const idleCut = 3 * time.Second

func record(t *testing.T, c *http.Client, pick func() string, token string) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{c: c, pick: pick, token: token, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go r.run()
	t.Cleanup(r.stop)
	return r
}

func (r *recorder) stop() { r.cancel(); <-r.done }

func (r *recorder) run() {
	defer close(r.done)
	for r.ctx.Err() == nil {
		r.once()
		select {
		case <-r.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *recorder) once() {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	watchdog := time.AfterFunc(idleCut, cancel)
	defer watchdog.Stop()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.pick()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	r.mu.Lock()
	last, conn := r.lastID, r.conns
	r.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := r.c.Do(req)
	if err != nil {
		r.refused(refusal{at: time.Now()})
		return
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		r.refused(refusal{at: time.Now(), status: res.StatusCode, code: jsonField(b, "code"), retryAfter: res.Header.Get("Retry-After")})
		return
	}
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var m msg
	var data []string
	seen, retry, hint := false, false, false
	defer func() {
		r.mu.Lock()
		if len(r.ends) == maxRefusals {
			r.ends = r.ends[1:]
		}
		r.ends = append(r.ends, streamEnd{at: time.Now(), hinted: hint, cut: ctx.Err() != nil})
		r.mu.Unlock()
	}()
	for sc.Scan() {
		watchdog.Reset(idleCut)
		line := sc.Text()
		if line == "" {
			if seen {
				hint = false
			}
			if seen && (m.Event != "" || m.ID != "" || len(data) > 0) {
				m.Data = strings.Join(data, "\n")
				m.Conn, m.At = conn, time.Now()
				r.mu.Lock()
				r.msgs = append(r.msgs, m)
				if m.ID != "" {
					r.lastID = m.ID
				}
				r.mu.Unlock()
			}
			m, data, seen, retry = msg{}, nil, false, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			hint = hint || (retry && strings.Contains(line, "reconnect"))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			retry = true
			continue
		default:
			continue
		}
		seen = true
	}
}

func (r *recorder) refused(f refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails++
	if len(r.refus) == maxRefusals {
		r.refus = r.refus[1:]
	}
	r.refus = append(r.refus, f)
}

// endsSince are the ends of the connections that ended at or after from.
func (r *recorder) endsSince(from time.Time) []streamEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []streamEnd
	for _, e := range r.ends {
		if !e.at.Before(from) {
			out = append(out, e)
		}
	}
	return out
}

// refusedIn are the refused connections between from and to.
func (r *recorder) refusedIn(from, to time.Time) []refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []refusal
	for _, f := range r.refus {
		if !f.at.Before(from) && !f.at.After(to) {
			out = append(out, f)
		}
	}
	return out
}

func (r *recorder) messages() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg(nil), r.msgs...)
}

type newEvent struct {
	Chat  string `json:"chat"`
	Event struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"event"`
}

func parseNewEvent(m msg) (newEvent, bool) {
	var ne newEvent
	if m.Event != "new_event" || json.Unmarshal([]byte(m.Data), &ne) != nil || ne.Event.ID == "" {
		return ne, false
	}
	return ne, true
}

// customer is one customer of a run: a chat, streams, and the events
// every stream must carry once.
type customer struct {
	token, id, chat string
	recs            []*recorder

	mu       sync.Mutex
	required map[string]bool
	sentAt   map[string]time.Time // agent messages: when SendMessage returned
}

// run is one scenario's world: simulator, replicas, customers, traffic
// and the socket sampler.
type run struct {
	t       *testing.T
	sim     *chatiosim.Server
	simURL  string
	procs   []*proc
	nats    []*proc // nats-server child processes, when the scenario runs them
	reps    bases
	rest    *http.Client
	streams *http.Client
	cs      []*customer

	stopTraffic                              chan struct{}
	traffic                                  sync.WaitGroup
	agentSent, custOK, custFailed, agentErrs atomic.Int64

	callMu sync.Mutex
	calls  []call // the customers' message POSTs, in the order they ended

	stopSampler chan struct{}
	sampler     sync.WaitGroup
	samples     atomic.Int64
	maxSockets  atomic.Int64 // the most live sockets of one token in a sample
	sockMu      sync.Mutex
	doubles     []doubleSocket // moments with two live sockets for one token
}

// call is one customer message POST of the traffic: when it was sent and
// answered, and the answer (status 0: no answer).
type call struct {
	start, end time.Time
	status     int
	code       string
	retryAfter string
}

// maxCalls bounds run.calls (a soak keeps the newest).
const maxCalls = 100000

// callsIn are the traffic's POSTs sent at or after from and answered by to.
func (r *run) callsIn(from, to time.Time) []call {
	r.callMu.Lock()
	defer r.callMu.Unlock()
	var out []call
	for _, c := range r.calls {
		if !c.start.Before(from) && !c.end.After(to) {
			out = append(out, c)
		}
	}
	return out
}

type doubleSocket struct {
	at    time.Time
	token string
	n     int
}

func newRun(t *testing.T) *run {
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	strTr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(strTr.CloseIdleConnections)
	return &run{t: t, sim: sim, simURL: url, rest: restClient(t), streams: &http.Client{Transport: strTr}}
}

// addCustomers starts n customers, each with a chat and streamsPer
// recorded streams, every request to a random replica.
func (r *run) addCustomers(prefix string, n, streamsPer int) {
	t := r.t
	for i := range n {
		c := &customer{token: fmt.Sprintf("%s-%02d", prefix, i), required: map[string]bool{}, sentAt: map[string]time.Time{}}
		c.id = chatiosim.CustomerIDForToken(c.token)
		var st int
		var b []byte
		for range 5 {
			st, b = do(r.rest, "POST", r.reps.pick()+"/v1/chats", c.token, `{}`)
			if st == 201 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if st != 201 {
			t.Fatalf("start chat for %s: %d %s", c.token, st, b)
		}
		c.chat = jsonField(b, "id")
		for range streamsPer {
			c.recs = append(c.recs, record(t, r.streams, r.reps.pick, c.token))
		}
		r.cs = append(r.cs, c)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, c := range r.cs {
		for _, rec := range c.recs {
			for {
				ok := false
				for _, m := range rec.messages() {
					ok = ok || m.Event == "connected"
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stream of %s: not connected", c.token)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// startTraffic: an agent writes in every chat, every customer posts over
// REST to a random replica.
func (r *run) startTraffic(agentEvery, customerEvery time.Duration) {
	r.stopTraffic = make(chan struct{})
	agent := r.sim.Agent("ct-agent", "Cluster Agent")
	for _, c := range r.cs {
		r.traffic.Add(2)
		go func() {
			defer r.traffic.Done()
			for n := 0; ; n++ {
				select {
				case <-r.stopTraffic:
					return
				case <-time.After(agentEvery/2 + rand.N(agentEvery)):
				}
				id, err := agent.SendMessage(c.chat, fmt.Sprintf("agent %s #%d", c.token, n))
				if err != nil {
					r.agentErrs.Add(1)
					continue
				}
				r.agentSent.Add(1)
				c.mu.Lock()
				c.required[id] = true
				c.sentAt[id] = time.Now()
				c.mu.Unlock()
			}
		}()
		go func() {
			defer r.traffic.Done()
			for n := 0; ; n++ {
				select {
				case <-r.stopTraffic:
					return
				case <-time.After(customerEvery/2 + rand.N(customerEvery)):
				}
				start := time.Now()
				st, b, h := doH(r.rest, "POST", r.reps.pick()+"/v1/chats/"+c.chat+"/messages", c.token,
					fmt.Sprintf(`{"text":"customer %s #%d"}`, c.token, n))
				cl := call{start: start, end: time.Now(), status: st}
				if st != 201 {
					cl.code, cl.retryAfter = jsonField(b, "code"), h.Get("Retry-After")
				}
				r.callMu.Lock()
				if len(r.calls) == maxCalls {
					r.calls = r.calls[1:]
				}
				r.calls = append(r.calls, cl)
				r.callMu.Unlock()
				if id := jsonField(b, "id"); st == 201 && id != "" {
					c.mu.Lock()
					c.required[id] = true
					c.mu.Unlock()
					r.custOK.Add(1)
				} else {
					r.custFailed.Add(1)
				}
			}
		}()
	}
}

func (r *run) endTraffic() {
	close(r.stopTraffic)
	r.traffic.Wait()
}

// startSampler samples the simulator's socket table every 5 ms: two
// logged-in sockets of one customer at once are recorded.
func (r *run) startSampler() {
	r.stopSampler = make(chan struct{})
	r.sampler.Add(1)
	go func() {
		defer r.sampler.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stopSampler:
				return
			case <-tick.C:
			}
			r.samples.Add(1)
			for _, c := range r.cs {
				n := r.sim.CustomerSockets(c.id)
				if int64(n) > r.maxSockets.Load() {
					r.maxSockets.Store(int64(n))
				}
				if n > 1 {
					r.sockMu.Lock()
					r.doubles = append(r.doubles, doubleSocket{time.Now(), c.token, n})
					r.sockMu.Unlock()
				}
			}
		}
	}()
	r.t.Cleanup(r.endSampler)
}

func (r *run) endSampler() {
	if r.stopSampler != nil {
		close(r.stopSampler)
		r.sampler.Wait()
		r.stopSampler = nil
	}
}

// doubleSockets returns the moments with two live sockets for one token,
// leaving out those inside the given windows.
func (r *run) doubleSockets(excused ...[2]time.Time) []doubleSocket {
	r.sockMu.Lock()
	defer r.sockMu.Unlock()
	var out []doubleSocket
next:
	for _, d := range r.doubles {
		for _, w := range excused {
			if !d.at.Before(w[0]) && !d.at.After(w[1]) {
				continue next
			}
		}
		out = append(out, d)
	}
	return out
}

// takeDoubles returns the moments with two live sockets for one token
// outside the excused windows, and forgets them all (a soak's table stays
// bounded by one round).
func (r *run) takeDoubles(excused ...[2]time.Time) []doubleSocket {
	out := r.doubleSockets(excused...)
	r.sockMu.Lock()
	r.doubles = nil
	r.sockMu.Unlock()
	return out
}

// deliveries calls fn for every delivery of an agent message sent at or
// after from: the customer, the index of its stream, the message's send
// time and the stream message that carried it.
func (r *run) deliveries(from time.Time, fn func(c *customer, stream int, sent time.Time, m msg)) {
	for _, c := range r.cs {
		c.mu.Lock()
		sent := make(map[string]time.Time, len(c.sentAt))
		for k, v := range c.sentAt {
			sent[k] = v
		}
		c.mu.Unlock()
		for si, rec := range c.recs {
			for _, m := range rec.messages() {
				ne, ok := parseNewEvent(m)
				if !ok {
					continue
				}
				if at, ok := sent[ne.Event.ID]; ok && !at.Before(from) {
					fn(c, si, at, m)
				}
			}
		}
	}
}

// worstLatency is the longest time from an agent message's send (at or
// after from) to its arrival on a stream, and that message's customer.
func (r *run) worstLatency(from time.Time) (time.Duration, string) {
	var worst time.Duration
	var who string
	r.deliveries(from, func(c *customer, _ int, sent time.Time, m msg) {
		if d := m.At.Sub(sent); d > worst {
			worst, who = d, c.token
		}
	})
	return worst, who
}

// mostOwned is the replica holding the most sessions.
func (r *run) mostOwned() (*proc, []int) {
	var best *proc
	counts := make([]int, len(r.procs))
	for i, p := range r.procs {
		counts[i] = p.ownedSessions()
		if best == nil || counts[i] > counts[slicesIndex(r.procs, best)] {
			best = p
		}
	}
	return best, counts
}

func slicesIndex(ps []*proc, p *proc) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// counts is what a verdict counted.
type counts struct {
	sent, delivered, want, duplicates, missing, outOfOrder int
	resumes, resyncs, refused                              int
}

// verdict waits for every required event on every stream (settleWithin),
// a pause for duplicates, then counts per stream: lost, duplicated, out of
// order, foreign, ids not rising. It fails the test on any of them.
func (r *run) verdict(name string, settleWithin time.Duration) counts {
	t := r.t
	deadline := time.Now().Add(settleWithin)
	for _, c := range r.cs {
		c.mu.Lock()
		req := make(map[string]bool, len(c.required))
		for k := range c.required {
			req[k] = true
		}
		c.mu.Unlock()
		for _, rec := range c.recs {
			for {
				got := 0
				for _, m := range rec.messages() {
					if ne, ok := parseNewEvent(m); ok && req[ne.Event.ID] {
						got++
					}
				}
				if got >= len(req) || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	time.Sleep(700 * time.Millisecond) // a window for duplicates to show
	var delivered, want, duplicates, missing, outOfOrder, foreign, badIDs, resumes, resyncs, refused int
	for _, c := range r.cs {
		order := map[string]int{}
		for i, ev := range r.sim.Events(c.chat) {
			order[ev.ID] = i
		}
		c.mu.Lock()
		required := c.required
		c.mu.Unlock()
		for si, rec := range c.recs {
			seen := map[string]int{}
			lastIdx, lastSeq := -1, uint64(0)
			for _, m := range rec.messages() {
				if m.ID != "" {
					s, _ := strconv.ParseUint(m.ID, 10, 64)
					if s <= lastSeq {
						badIDs++
						t.Errorf("%s %s stream %d: id %s after %d", name, c.token, si, m.ID, lastSeq)
					} else {
						lastSeq = s
					}
				}
				if m.Event == "connected" && m.Conn > 0 {
					resyncs++
				}
				ne, ok := parseNewEvent(m)
				if !ok {
					continue
				}
				if ne.Chat != c.chat {
					foreign++
					t.Errorf("%s %s stream %d: event of chat %s", name, c.token, si, ne.Chat)
					continue
				}
				seen[ne.Event.ID]++
				if seen[ne.Event.ID] > 1 {
					duplicates++
					t.Errorf("%s %s stream %d: %s (%q) delivered %d times (id %s)", name, c.token, si, ne.Event.ID, ne.Event.Text, seen[ne.Event.ID], m.ID)
					continue
				}
				idx, known := order[ne.Event.ID]
				if !known {
					t.Errorf("%s %s stream %d: unknown event %s", name, c.token, si, ne.Event.ID)
					continue
				}
				if idx < lastIdx {
					outOfOrder++
					t.Errorf("%s %s stream %d: %s out of order", name, c.token, si, ne.Event.ID)
				}
				lastIdx = max(lastIdx, idx)
			}
			var miss []string
			for id := range required {
				want++
				if seen[id] == 0 {
					miss = append(miss, id)
				} else {
					delivered++
				}
			}
			if len(miss) > 0 {
				sort.Strings(miss)
				missing += len(miss)
				t.Errorf("%s %s stream %d: %d missing: %s", name, c.token, si, len(miss), strings.Join(miss[:min(5, len(miss))], " "))
			}
			rec.mu.Lock()
			resumes += rec.conns - 1
			refused += rec.fails
			rec.mu.Unlock()
		}
	}
	t.Logf("%s: %d customers × %d streams on %d replicas; sent %d (agent %d, customer %d; %d customer POSTs failed, outcome unknown); "+
		"delivered %d of %d required deliveries; duplicates %d, missing %d, out of order %d, foreign %d, bad ids %d; "+
		"stream resumes %d (resyncs %d, connections refused or failed %d); socket table sampled %d times, at most %d live sockets for one token",
		name, len(r.cs), len(r.cs[0].recs), len(r.procs), r.agentSent.Load()+r.custOK.Load(), r.agentSent.Load(), r.custOK.Load(), r.custFailed.Load(),
		delivered, want, duplicates, missing, outOfOrder, foreign, badIDs, resumes, resyncs, refused, r.samples.Load(), r.maxSockets.Load())
	if r.agentErrs.Load() > 0 {
		t.Errorf("%s: %d agent messages could not be sent", name, r.agentErrs.Load())
	}
	if t.Failed() {
		for _, p := range append(append([]*proc(nil), r.procs...), r.nats...) {
			t.Logf("%s stderr (tail):\n%s", p.name, tail(p.stderr.String(), 4000))
		}
	}
	return counts{sent: int(r.agentSent.Load() + r.custOK.Load()), delivered: delivered, want: want, duplicates: duplicates,
		missing: missing, outOfOrder: outOfOrder, resumes: resumes, resyncs: resyncs, refused: refused}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// clusterKey is a fixed 32-byte hex key shared by the replicas of a run.
const clusterKey = "5f0c2a9e7b3d41c6a8e0f1d2c3b4a59687f6e5d4c3b2a1908f7e6d5c4b3a2918"

// startCluster: a nats-server here and n gateway replicas on it.
func (r *run) startCluster(n int) {
	r.startGateways(n, runNATS(r.t), nil)
}

// runNATSCluster runs three nats-servers with JetStream (file store) in
// one cluster, in the test process, on 127.0.0.1; it returns them and
// their client URLs, comma-separated.
func runNATSCluster(t *testing.T) ([]*server.Server, string) {
	t.Helper()
	var cports []int
	var routes, urls []string
	for range 3 {
		p := freePort(t)
		cports = append(cports, p)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	for i := range 3 {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: freePort(t),
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		}
		o.Cluster.Name = "ct"
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = cports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		srvs = append(srvs, s)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		current, peers := true, 0
		for _, s := range srvs {
			if !s.JetStreamIsCurrent() {
				current = false
			}
			if s.JetStreamIsLeader() {
				peers = len(s.JetStreamClusterPeers())
			}
		}
		if current && peers == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader with three current peers")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return srvs, strings.Join(urls, ",")
}
