package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// gatewayFleet is the customer side through the gateway: each customer has
// one SSE stream (GET /v1/events) and makes REST calls. Over HTTP/1.1 each
// stream is its own connection, read by net/http's client on a goroutine
// of its own, and REST calls share a keep-alive pool. Over h2c session i's
// stream goes over connection i mod H2Conns; the even connections are
// h2Readers, which take every push on the connection's read goroutine (as
// the direct clients take theirs on their read loop), the odd ones
// net/http's client, which hands each frame to the stream's goroutine;
// those pushes are reported apart. The REST calls go through net/http's
// client (over h2c on its connections), and every other call of the
// measured phase through rawClient instead (see Load).
type gatewayFleet struct {
	bases  []string // http://127.0.0.1:PORT of each replica (one: a single gateway)
	prefix string   // token prefix
	proto  string
	down   []atomic.Bool // replica n refused a connection: killed (cluster runs only)

	ctx     context.Context // the fleet's lifetime: streams end with it
	cancel  context.CancelFunc
	closing atomic.Bool // set before Close ends the streams: their end is no error

	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	streamClients []*http.Client // net/http stream connections (odd ones over h2c)
	restClients   []*http.Client // session i's calls use restClients[i%len]
	transports    []*http.Transport
	h2mu          sync.Mutex
	h2            [][]*h2Reader // guarded by h2mu: per replica, the even h2c connections, dialed at first use (again once broken)
	raw           []*rawClient  // per replica: every other sendMessage and floor call of the measured phase
	dials         atomic.Int64  // TCP connections opened to the gateway
	resumeMu      sync.Mutex    // orders resume's readers.Add before Close's readers.Wait

	chats       []string // written by Open only
	recv        counters
	push        recorder // h2c: read by h2Reader; HTTP/1.1: by net/http's client
	pushNetHTTP recorder // h2c: read by net/http's client
	calls       recorders
	errs        errorCounts
	readers     sync.WaitGroup

	// Cluster runs (more than one replica): see cluster.go.
	probeAt     []atomic.Int64 // unix ns of each session's first takeover probe received, 0 before
	resumes     atomic.Int64   // streams resumed with Last-Event-ID after their replica cut them
	retried     atomic.Int64   // calls sent again to another replica after a transport error
	resumeFails errorCounts    // resume attempts that failed, by kind (the stream tries again)
	killedAt    atomic.Int64   // unix ns at which a replica was first found down, 0 before
}

// clustered reports whether the fleet talks to several replicas.
func (f *gatewayFleet) clustered() bool { return len(f.bases) > 1 }

func newGatewayFleet(bases []string, prefix, proto string, h2conns int) *gatewayFleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &gatewayFleet{bases: bases, prefix: prefix, proto: proto, ctx: ctx, cancel: cancel, down: make([]atomic.Bool, len(bases))}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	f.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			f.dials.Add(1)
		}
		return c, err
	}
	for _, b := range bases {
		f.raw = append(f.raw, &rawClient{addr: strings.TrimPrefix(b, "http://"), dial: f.dial})
	}
	switch proto {
	case ProtoH1:
		var p http.Protocols
		p.SetHTTP1(true)
		// Streams: one connection each, never shared.
		st := &http.Transport{DialContext: f.dial, Protocols: &p, DisableCompression: true,
			MaxIdleConnsPerHost: -1, ResponseHeaderTimeout: 60 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}
		// REST: a keep-alive pool, as a client library would use.
		rt := &http.Transport{DialContext: f.dial, Protocols: &p, DisableCompression: true,
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
		f.transports = []*http.Transport{st, rt}
		f.streamClients = []*http.Client{{Transport: st}}
		f.restClients = []*http.Client{{Transport: rt}}
	default:
		f.h2 = make([][]*h2Reader, len(bases))
		for n := range f.h2 {
			f.h2[n] = make([]*h2Reader, (h2conns+1)/2)
		}
		for range max(h2conns/2, 1) { // one for the calls when every stream connection is an h2Reader
			f.transports = append(f.transports, newH2Transport(f.dial))
		}
		for _, t := range f.transports {
			f.restClients = append(f.restClients, &http.Client{Transport: t})
		}
		if h2conns > 1 {
			f.streamClients = f.restClients
		}
	}
	return f
}

// newH2Transport is one h2c connection of net/http's client.
func newH2Transport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{DialContext: dial, Protocols: &p, DisableCompression: true,
		HTTP2: &http.HTTP2Config{
			// Keep to one connection per transport: the gateway
			// allows enough streams per connection.
			StrictMaxConcurrentRequests: true,
		}}
}

func (f *gatewayFleet) token(i int) string { return f.prefix + strconv.Itoa(i) }

func (f *gatewayFleet) Open(ctx context.Context, k int, ramp float64) ([]string, error) {
	f.chats = make([]string, k)
	f.recv.received = make([]atomic.Int64, k)
	f.probeAt = make([]atomic.Int64, k)
	rampOpen(ctx, k, ramp, f.openOne)
	return f.chats, ctx.Err()
}

// openOne opens session i's stream, waits for its connected event, and
// starts a chat. With several replicas the session is first opened on the
// replica chosen to own it (GET /v1/session there: nobody owns it yet, so
// that replica takes it), then the stream goes to the replica chosen for
// it, and the chat is started on a random one (see placement).
func (f *gatewayFleet) openOne(ctx context.Context, i int) {
	owner, streamAt := 0, 0
	if f.clustered() {
		owner, streamAt = placement(f.prefix, i, len(f.bases))
		t0 := time.Now()
		status, err := f.restAt(ctx, owner, i, http.MethodGet, "/v1/session", "", nil)
		if err != nil || status != http.StatusOK {
			f.errs.inc("session: " + restKind(status, err))
			return
		}
		f.calls.get("session: GET /v1/session (opens it on its owner)").add(time.Since(t0))
	}
	t0 := time.Now()
	connected := make(chan struct{})
	failed := make(chan string, 1)
	st := &gwStream{f: f, i: i, replica: streamAt, connected: connected, failed: failed}
	st.sse.message = st.message
	cancel := f.startStream(st)
	t := time.NewTimer(30 * time.Second)
	select {
	case <-connected:
		t.Stop() // the stream lives on until Close ends them all
	case kind := <-failed:
		t.Stop()
		cancel()
		f.errs.inc("events: " + kind)
		return
	case <-t.C:
		cancel()
		f.errs.inc("events: no connected event in 30s")
		return
	case <-ctx.Done():
		t.Stop()
		cancel()
		return
	}
	f.calls.get("open: GET /v1/events → connected").add(time.Since(t0))

	t0 = time.Now()
	var chat struct {
		ID string `json:"id"`
	}
	status, err := f.rest(ctx, i, http.MethodPost, "/v1/chats", "{}", &chat)
	if err != nil || status != http.StatusCreated || chat.ID == "" {
		f.errs.inc("startChat: " + restKind(status, err))
		return
	}
	f.calls.get("startChat: POST /v1/chats").add(time.Since(t0))
	f.chats[i] = chat.ID
}

// startStream opens st's stream (GET /v1/events, with Last-Event-ID when
// it resumes) on st's replica and returns what ends it. Over h2c the even
// connections are h2Readers, the odd ones net/http's client; over
// HTTP/1.1 every stream is read by net/http's client.
func (f *gatewayFleet) startStream(st *gwStream) (cancel func()) {
	hdr := [][2]string{{"authorization", "Bearer " + f.token(st.i)}, {"accept", "text/event-stream"}}
	if st.lastID != "" {
		hdr = append(hdr, [2]string{"last-event-id", st.lastID})
	}
	c := 0 // HTTP/1.1: every stream on a connection of its own
	if f.proto == ProtoH2 {
		c = st.i % max(1, 2*len(f.h2[st.replica]))
	}
	st.push = &f.push
	if f.proto == ProtoH2 {
		if c%2 == 1 && len(f.streamClients) > 0 {
			st.push = &f.pushNetHTTP // read by net/http's client, below
		} else {
			cancel, err := f.openH2(st.replica, c/2, "/v1/events", hdr, st)
			if err != nil {
				f.noteDown(st.replica, err)
				st.fail("transport")
				if st.resumeSince.IsZero() {
					return func() {}
				}
				st.end(err) // a resume: try again
				return func() {}
			}
			return cancel
		}
	}
	rctx, rcancel := context.WithCancel(f.ctx) // the stream's request; ends with the fleet
	f.readers.Add(1)
	go f.stream(rctx, st, f.streamClients[(c/2)%len(f.streamClients)])
	return rcancel
}

// openH2 opens a stream on replica rep's n-th h2Reader connection, dialed
// at first use and again when it broke (its replica was killed).
func (f *gatewayFleet) openH2(rep, n int, path string, hdr [][2]string, sink streamSink) (func(), error) {
	for attempt := 0; ; attempt++ {
		r, err := f.h2Reader(rep, n)
		if err != nil {
			return nil, err
		}
		cancel, err := r.open(path, hdr, sink)
		if err == nil || attempt > 0 {
			return cancel, err
		}
		// Broken: drop it (its streams have ended or are ending) and dial again.
		f.h2mu.Lock()
		if f.h2[rep][n] == r {
			f.h2[rep][n] = nil
		}
		f.h2mu.Unlock()
		_ = r.close()
	}
}

// h2Reader returns replica rep's n-th h2Reader connection, dialed at first
// use.
func (f *gatewayFleet) h2Reader(rep, n int) (*h2Reader, error) {
	f.h2mu.Lock()
	defer f.h2mu.Unlock()
	if f.h2[rep][n] != nil {
		return f.h2[rep][n], nil
	}
	if f.closing.Load() {
		return nil, errH2Closed
	}
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	r, err := dialH2Reader(ctx, strings.TrimPrefix(f.bases[rep], "http://"), f.dial)
	if err != nil {
		return nil, err
	}
	f.h2[rep][n] = r
	return r, nil
}

// stream reads st's stream through net/http's client until it ends.
func (f *gatewayFleet) stream(ctx context.Context, st *gwStream, client *http.Client) {
	defer f.readers.Done()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.bases[st.replica]+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(st.i))
	req.Header.Set("Accept", "text/event-stream")
	if st.lastID != "" {
		req.Header.Set("Last-Event-ID", st.lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		f.noteDown(st.replica, err)
		st.fail("transport")
		if !st.resumeSince.IsZero() {
			st.end(err)
		}
		return
	}
	defer resp.Body.Close()
	st.headers(resp.StatusCode)
	buf := make([]byte, 2048)
	for {
		n, err := resp.Body.Read(buf)
		st.data(buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			st.end(err)
			return
		}
	}
}

// gwStream is one session's event stream; its methods run on the goroutine
// that reads it (a streamSink for h2Reader).
type gwStream struct {
	f         *gatewayFleet
	i         int
	replica   int // the replica it is open on
	push      *recorder
	sse       sseParser
	status    int
	connected chan struct{} // closed at the connected event, then nil
	failed    chan<- string // the stream ended before it: why (one value)

	// A resumed stream (cluster runs): the session's earlier stream was
	// cut, and this one asks for what followed lastID.
	lastID      string
	resumeSince time.Time // when the first stream of this run of attempts was cut
	attempts    int
}

func (s *gwStream) headers(status int) {
	s.status = status
	if status != http.StatusOK {
		s.fail(strconv.Itoa(status))
		if !s.resumeSince.IsZero() {
			s.f.resumeFails.inc(strconv.Itoa(status))
		}
		return
	}
	if !s.resumeSince.IsZero() {
		s.f.resumes.Add(1)
		s.f.calls.get("resume: stream cut → 200 with Last-Event-ID on a replica").add(time.Since(s.resumeSince))
	}
}

func (s *gwStream) data(p []byte) {
	if s.status != http.StatusOK {
		return
	}
	if err := s.sse.feed(p); err != nil {
		s.f.errs.inc("stream: " + err.Error())
	}
}

func (s *gwStream) end(err error) {
	switch {
	case s.connected != nil:
		s.fail("transport: " + streamErrKind(err))
	case s.f.closing.Load():
	case s.f.clustered():
		// A replica went away (or refused the resume): the customer
		// resumes on another one, as a browser's EventSource would.
		if !s.resumeSince.IsZero() && s.status == 0 {
			s.f.resumeFails.inc("transport: " + streamErrKind(err))
		}
		s.f.resume(s, err)
	default:
		s.f.errs.inc("stream ended: " + streamErrKind(err))
	}
}

// fail says why the stream ended before its connected event (once).
func (s *gwStream) fail(kind string) {
	if s.connected == nil {
		return
	}
	select {
	case s.failed <- kind:
	default:
	}
}

func (s *gwStream) message(event, data []byte) {
	switch string(event) {
	case "connected":
		if s.connected != nil {
			close(s.connected)
			s.connected = nil
		} else if !s.resumeSince.IsZero() {
			// The log no longer had what followed Last-Event-ID: the
			// stream started over from a snapshot, and whatever fell in
			// between is lost to it (counted as lost below, if any).
			s.f.errs.inc("stream: resume fell back to a snapshot")
		}
	case "new_event":
		if at, probe, ok := pushSent(data); ok {
			now := time.Now()
			s.push.add(now.Sub(at))
			s.f.recv.received[s.i].Add(1)
			if probe {
				s.f.probeAt[s.i].CompareAndSwap(0, now.UnixNano())
			}
		}
	}
}

// resume opens the stream of old's session again, on a random replica
// that has not refused connections, with Last-Event-ID (after a back-off
// when it is not the first attempt). It gives up 60 s after the first cut.
func (f *gatewayFleet) resume(old *gwStream, err error) {
	f.resumeMu.Lock()
	defer f.resumeMu.Unlock()
	if f.closing.Load() {
		return
	}
	f.noteDown(old.replica, err)
	since := old.resumeSince
	if since.IsZero() {
		since = time.Now()
	}
	lastID := old.sse.lastID
	if lastID == "" {
		lastID = old.lastID
	}
	f.readers.Add(1)
	go func() {
		defer f.readers.Done()
		if old.attempts > 0 {
			if time.Since(since) > 60*time.Second {
				f.errs.inc("stream: not resumed within 60s")
				return
			}
			if !sleepCtx(f.ctx, min(time.Duration(25<<min(old.attempts, 6))*time.Millisecond, time.Second)) {
				return
			}
		}
		st := &gwStream{f: f, i: old.i, replica: f.pick(old.replica), lastID: lastID, resumeSince: since, attempts: old.attempts + 1}
		st.sse.message = st.message
		st.sse.lastID = lastID
		f.startStream(st)
	}()
}

// pick returns a random replica that has not refused a connection,
// another than avoid when there is one (avoid < 0: any).
func (f *gatewayFleet) pick(avoid int) int {
	n := len(f.bases)
	if n == 1 {
		return 0
	}
	start := rand.IntN(n)
	for k := range n {
		r := (start + k) % n
		if r != avoid && !f.down[r].Load() {
			return r
		}
	}
	return start
}

// noteDown marks replica rep as down when err says that it refused a
// connection (it was killed).
func (f *gatewayFleet) noteDown(rep int, err error) {
	if err == nil || !f.clustered() || !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	if !f.down[rep].Swap(true) {
		f.killedAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// where names where a call of session i sent to replica rep ran: on the
// session's owner, forwarded to it, or after its owner was killed (owner
// unknown); "" with a single gateway.
func (f *gatewayFleet) where(i, rep int) string {
	if !f.clustered() {
		return ""
	}
	owner, _ := placement(f.prefix, i, len(f.bases))
	switch {
	case f.down[owner].Load():
		return whereOwnerKilled
	case rep == owner:
		return whereOwner
	default:
		return whereForwarded
	}
}

// Where a call ran, in the names of the cluster runs' call rows.
const (
	whereOwner       = "@owner"
	whereForwarded   = "@forwarded"
	whereOwnerKilled = "@owner-killed"
)

// streamErrKind names why a stream ended: nil or io.EOF when the gateway
// ended it, else the error, one kind per error rather than per stream
// (digits, as in stream ids, dropped).
func streamErrKind(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "EOF (the gateway ended it)"
	}
	msg := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, err.Error())
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// rest makes one call for session i on a random replica and decodes a
// JSON answer into out. In a cluster run, a transport error (the replica
// was killed) sends it once more to another replica, as a load balancer
// would; the call's replica is returned.
func (f *gatewayFleet) rest(ctx context.Context, i int, method, path, body string, out any) (int, error) {
	status, _, err := f.restAny(ctx, i, method, path, body, out)
	return status, err
}

func (f *gatewayFleet) restAny(ctx context.Context, i int, method, path, body string, out any) (int, int, error) {
	rep := f.pick(-1)
	status, err := f.restAt(ctx, rep, i, method, path, body, out)
	if err != nil && f.clustered() && ctx.Err() == nil {
		f.noteDown(rep, err)
		f.retried.Add(1)
		rep = f.pick(rep)
		status, err = f.restAt(ctx, rep, i, method, path, body, out)
	}
	return status, rep, err
}

// restAt makes one call for session i on replica rep.
func (f *gatewayFleet) restAt(ctx context.Context, rep, i int, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.bases[rep]+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+f.token(i))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.restClients[i%len(f.restClients)].Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// raw is rest through the replica's rawClient (no answer decoded).
func (f *gatewayFleet) rawAny(ctx context.Context, i int, method, path, body string) (int, int, error) {
	rep := f.pick(-1)
	status, err := f.raw[rep].do(ctx, method, path, f.token(i), body)
	if err != nil && f.clustered() && ctx.Err() == nil {
		f.noteDown(rep, err)
		f.retried.Add(1)
		rep = f.pick(rep)
		status, err = f.raw[rep].do(ctx, method, path, f.token(i), body)
	}
	return status, rep, err
}

func restKind(status int, err error) string {
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case err != nil:
		return "transport"
	default:
		return strconv.Itoa(status)
	}
}

func (f *gatewayFleet) sendMessage(ctx context.Context, i, n int) error {
	_, err := f.sendMessageAt(ctx, i, n)
	return err
}

// sendMessageAt is sendMessage that returns the replica that answered.
func (f *gatewayFleet) sendMessageAt(ctx context.Context, i, n int) (int, error) {
	status, rep, err := f.restAny(ctx, i, http.MethodPost, "/v1/chats/"+f.chats[i]+"/messages",
		`{"text":"`+customerPrefix+strconv.Itoa(n)+`"}`, nil)
	if err != nil || status != http.StatusCreated {
		return rep, fmt.Errorf("%s", restKind(status, err))
	}
	return rep, nil
}

func (f *gatewayFleet) live() []int { return liveSessions(f.chats) }

// Load runs the measured phase's customer calls. Every other call (and
// every other floor request) is made by rawClient over HTTP/1.1 instead of
// net/http's client: the two, in turn under the same load, show what the
// client itself adds (see rawClient). In a cluster run each call goes to a
// random replica, and sendMessage's latency is also recorded apart by
// where the call ran (where: on the owner, forwarded, owner killed).
func (f *gatewayFleet) Load(ctx context.Context, rate float64, d time.Duration) (int64, error) {
	live := f.live()
	if len(live) == 0 {
		return 0, errors.New("no open session")
	}
	// The HTTP floor: a request the gateway answers without any work
	// (GET /healthz) at half the rate, so that sendMessage's latency can be
	// split into what any HTTP round trip costs here and what the gateway
	// adds.
	floor := f.calls.get("floor: GET /healthz")
	floorRaw := f.calls.get("floor/raw: GET /healthz (minimal HTTP/1.1 client)")
	floorDone := make(chan struct{})
	go func() {
		defer close(floorDone)
		runPaced(ctx, rate/2, d, 64, func(n int) {
			i := live[n%len(live)]
			t0 := time.Now()
			var status int
			var err error
			if n%2 == 1 {
				status, _, err = f.rawAny(ctx, i, http.MethodGet, "/healthz", "")
			} else {
				status, _, err = f.restAny(ctx, i, http.MethodGet, "/healthz", "", nil)
			}
			if err != nil || status != http.StatusOK {
				f.errs.inc("healthz: " + restKind(status, err))
				return
			}
			if n%2 == 1 {
				floorRaw.add(time.Since(t0))
			} else {
				floor.add(time.Since(t0))
			}
		})
	}()
	defer func() { <-floorDone }()
	const (
		name    = "sendMessage"
		nameRaw = "sendMessage/raw"
		route   = ": POST /v1/chats/{chat}/messages"
		rawNote = " (minimal HTTP/1.1 client)"
	)
	rec := f.calls.get(name + route)
	recRaw := f.calls.get(nameRaw + route + rawNote)
	n := runPaced(ctx, rate, d, 512, func(n int) {
		i := live[n%len(live)]
		t0 := time.Now()
		if n%2 == 1 {
			status, rep, err := f.rawAny(ctx, i, http.MethodPost, "/v1/chats/"+f.chats[i]+"/messages",
				`{"text":"`+customerPrefix+strconv.Itoa(n)+`"}`)
			if err != nil || status != http.StatusCreated {
				f.errs.inc("sendMessage: " + restKind(status, err))
				return
			}
			took := time.Since(t0)
			recRaw.add(took)
			if w := f.where(i, rep); w != "" {
				f.calls.get(nameRaw + w + route + rawNote).add(took)
			}
			return
		}
		rep, err := f.sendMessageAt(ctx, i, n)
		if err != nil {
			f.errs.inc("sendMessage: " + err.Error())
			return
		}
		took := time.Since(t0)
		rec.add(took)
		if w := f.where(i, rep); w != "" {
			f.calls.get(name + w + route).add(took)
		}
	})
	return n, nil
}

func (f *gatewayFleet) Drain(ctx context.Context, sent []int64, timeout time.Duration) error {
	waitReceived(ctx, &f.recv, sent, timeout)
	return nil
}

func (f *gatewayFleet) Throughput(ctx context.Context, callers int, d time.Duration) (fleetThroughput, error) {
	return sendBackToBack(ctx, f.live(), callers, d, &f.errs, f.sendMessage)
}

func (f *gatewayFleet) Result(context.Context) (fleetResult, error) {
	res := fleetResult{
		Push:        f.push.samples(),
		PushNetHTTP: f.pushNetHTTP.samples(),
		Connections: f.dials.Load(),
		Calls:       f.calls.all(),
		Errors:      f.errs.snapshot(),
		Received:    f.recv.snapshot(),
	}
	if f.clustered() {
		res.ProbeAt = make([]int64, len(f.probeAt))
		for i := range f.probeAt {
			res.ProbeAt[i] = f.probeAt[i].Load()
		}
		res.Resumes, res.Retried, res.DownAt = f.resumes.Load(), f.retried.Load(), f.killedAt.Load()
		res.ResumeFailures = f.resumeFails.snapshot()
	}
	return res, nil
}

func (f *gatewayFleet) Close() error {
	f.resumeMu.Lock()
	f.closing.Store(true)
	f.resumeMu.Unlock()
	f.cancel() // ends every stream request of net/http's client
	f.h2mu.Lock()
	readers := slices.Concat(f.h2...)
	f.h2mu.Unlock()
	for _, r := range readers {
		if r != nil {
			_ = r.close() // ends its streams
		}
	}
	f.readers.Wait()
	for _, t := range f.transports {
		t.CloseIdleConnections()
	}
	for _, r := range f.raw {
		r.close()
	}
	return nil
}
