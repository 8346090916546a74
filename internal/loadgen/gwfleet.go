package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	base   string // http://127.0.0.1:PORT
	prefix string // token prefix
	proto  string

	ctx     context.Context // the fleet's lifetime: streams end with it
	cancel  context.CancelFunc
	closing atomic.Bool // set before Close ends the streams: their end is no error

	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	streamClients []*http.Client // net/http stream connections (odd ones over h2c)
	restClients   []*http.Client // session i's calls use restClients[i%len]
	transports    []*http.Transport
	h2mu          sync.Mutex
	h2            []*h2Reader  // guarded by h2mu: the even h2c connections, dialed at first use
	raw           *rawClient   // every other sendMessage and floor call of the measured phase
	dials         atomic.Int64 // TCP connections opened to the gateway

	chats       []string // written by Open only
	recv        counters
	push        recorder // h2c: read by h2Reader; HTTP/1.1: by net/http's client
	pushNetHTTP recorder // h2c: read by net/http's client
	calls       recorders
	errs        errorCounts
	readers     sync.WaitGroup
}

func newGatewayFleet(base, prefix, proto string, h2conns int) *gatewayFleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &gatewayFleet{base: base, prefix: prefix, proto: proto, ctx: ctx, cancel: cancel}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	f.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			f.dials.Add(1)
		}
		return c, err
	}
	f.raw = &rawClient{addr: strings.TrimPrefix(base, "http://"), dial: f.dial}
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
		f.h2 = make([]*h2Reader, (h2conns+1)/2)
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
	rampOpen(ctx, k, ramp, f.openOne)
	return f.chats, ctx.Err()
}

// openOne opens session i's stream, waits for its connected event, and
// starts a chat.
func (f *gatewayFleet) openOne(ctx context.Context, i int) {
	t0 := time.Now()
	connected := make(chan struct{})
	failed := make(chan string, 1)
	st := &gwStream{f: f, i: i, connected: connected, failed: failed}
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

// startStream opens st's stream (GET /v1/events) on its connection and
// returns what ends it. Over h2c the even connections are h2Readers, the
// odd ones net/http's client; over HTTP/1.1 every stream is read by
// net/http's client.
func (f *gatewayFleet) startStream(st *gwStream) (cancel func()) {
	hdr := [][2]string{{"authorization", "Bearer " + f.token(st.i)}, {"accept", "text/event-stream"}}
	c := st.i % max(1, 2*len(f.h2))
	st.push = &f.push
	if f.proto == ProtoH2 {
		if c%2 == 1 && len(f.streamClients) > 0 {
			st.push = &f.pushNetHTTP // read by net/http's client, below
		} else {
			r, err := f.h2Reader(c / 2)
			if err == nil {
				cancel, err = r.open("/v1/events", hdr, st)
			}
			if err != nil {
				st.fail("transport")
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

// h2Reader returns the n-th h2Reader connection, dialed at first use.
func (f *gatewayFleet) h2Reader(n int) (*h2Reader, error) {
	f.h2mu.Lock()
	defer f.h2mu.Unlock()
	if f.h2[n] != nil {
		return f.h2[n], nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	r, err := dialH2Reader(ctx, strings.TrimPrefix(f.base, "http://"), f.dial)
	if err != nil {
		return nil, err
	}
	f.h2[n] = r
	return r, nil
}

// stream reads st's stream through net/http's client until it ends.
func (f *gatewayFleet) stream(ctx context.Context, st *gwStream, client *http.Client) {
	defer f.readers.Done()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(st.i))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		st.fail("transport")
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
	push      *recorder
	sse       sseParser
	status    int
	connected chan struct{} // closed at the connected event, then nil
	failed    chan<- string // the stream ended before it: why (one value)
}

func (s *gwStream) headers(status int) {
	s.status = status
	if status != http.StatusOK {
		s.fail(strconv.Itoa(status))
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
	case !s.f.closing.Load():
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
		}
	case "new_event":
		if at, ok := pushSentAt(data); ok {
			s.push.add(time.Since(at))
			s.f.recv.received[s.i].Add(1)
		}
	}
}

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

// rest makes one call for session i and decodes a JSON answer into out.
func (f *gatewayFleet) rest(ctx context.Context, i int, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.base+path, strings.NewReader(body))
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
	status, err := f.rest(ctx, i, http.MethodPost, "/v1/chats/"+f.chats[i]+"/messages",
		`{"text":"`+customerPrefix+strconv.Itoa(n)+`"}`, nil)
	if err != nil || status != http.StatusCreated {
		return fmt.Errorf("%s", restKind(status, err))
	}
	return nil
}

func (f *gatewayFleet) live() []int { return liveSessions(f.chats) }

// Load runs the measured phase's customer calls. Every other call (and
// every other floor request) is made by rawClient over HTTP/1.1 instead of
// net/http's client: the two, in turn under the same load, show what the
// client itself adds (see rawClient).
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
				status, err = f.raw.do(ctx, http.MethodGet, "/healthz", f.token(i), "")
			} else {
				status, err = f.rest(ctx, i, http.MethodGet, "/healthz", "", nil)
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
	rec := f.calls.get("sendMessage: POST /v1/chats/{chat}/messages")
	recRaw := f.calls.get("sendMessage/raw: POST /v1/chats/{chat}/messages (minimal HTTP/1.1 client)")
	n := runPaced(ctx, rate, d, 512, func(n int) {
		i := live[n%len(live)]
		t0 := time.Now()
		if n%2 == 1 {
			status, err := f.raw.do(ctx, http.MethodPost, "/v1/chats/"+f.chats[i]+"/messages", f.token(i),
				`{"text":"`+customerPrefix+strconv.Itoa(n)+`"}`)
			if err != nil || status != http.StatusCreated {
				f.errs.inc("sendMessage: " + restKind(status, err))
				return
			}
			recRaw.add(time.Since(t0))
			return
		}
		if err := f.sendMessage(ctx, i, n); err != nil {
			f.errs.inc("sendMessage: " + err.Error())
			return
		}
		rec.add(time.Since(t0))
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
	return fleetResult{
		Push:        f.push.samples(),
		PushNetHTTP: f.pushNetHTTP.samples(),
		Connections: f.dials.Load(),
		Calls:       f.calls.all(),
		Errors:      f.errs.snapshot(),
		Received:    f.recv.snapshot(),
	}, nil
}

func (f *gatewayFleet) Close() error {
	f.closing.Store(true)
	f.cancel() // ends every stream request of net/http's client
	f.h2mu.Lock()
	for _, r := range f.h2 {
		if r != nil {
			_ = r.close() // ends its streams
		}
	}
	f.h2mu.Unlock()
	f.readers.Wait()
	for _, t := range f.transports {
		t.CloseIdleConnections()
	}
	f.raw.close()
	return nil
}
