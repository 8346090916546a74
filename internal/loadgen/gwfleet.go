package loadgen

import (
	"bufio"
	"bytes"
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
// stream is its own connection and REST calls share a keep-alive pool; over
// h2c every stream and call of session i goes over connection i mod H2Conns.
type gatewayFleet struct {
	base   string // http://127.0.0.1:PORT
	prefix string // token prefix

	ctx    context.Context // the fleet's lifetime: streams end with it
	cancel context.CancelFunc

	streamClients []*http.Client // session i's stream uses streamClients[i%len]
	restClients   []*http.Client // session i's calls use restClients[i%len]
	transports    []*http.Transport
	raw           *rawClient   // every other sendMessage and floor call of the measured phase
	dials         atomic.Int64 // TCP connections opened to the gateway

	chats   []string // written by Open only
	mu      sync.Mutex
	cancels []context.CancelFunc // guarded by mu: one per open stream
	recv    counters
	push    recorder
	calls   recorders
	errs    errorCounts
	readers sync.WaitGroup
}

func newGatewayFleet(base, prefix, proto string, h2conns int) *gatewayFleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &gatewayFleet{base: base, prefix: prefix, ctx: ctx, cancel: cancel}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			f.dials.Add(1)
		}
		return c, err
	}
	f.raw = &rawClient{addr: strings.TrimPrefix(base, "http://"), dial: dial}
	switch proto {
	case ProtoH1:
		var p http.Protocols
		p.SetHTTP1(true)
		// Streams: one connection each, never shared.
		st := &http.Transport{DialContext: dial, Protocols: &p, DisableCompression: true,
			MaxIdleConnsPerHost: -1, ResponseHeaderTimeout: 60 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}
		// REST: a keep-alive pool, as a client library would use.
		rt := &http.Transport{DialContext: dial, Protocols: &p, DisableCompression: true,
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
		f.transports = []*http.Transport{st, rt}
		f.streamClients = []*http.Client{{Transport: st}}
		f.restClients = []*http.Client{{Transport: rt}}
	default:
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		for range h2conns {
			t := &http.Transport{DialContext: dial, Protocols: &p, DisableCompression: true,
				HTTP2: &http.HTTP2Config{
					// Keep to one connection per transport: the gateway
					// allows enough streams per connection.
					StrictMaxConcurrentRequests: true,
				}}
			f.transports = append(f.transports, t)
			c := &http.Client{Transport: t}
			f.streamClients = append(f.streamClients, c)
			f.restClients = append(f.restClients, c)
		}
	}
	return f
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
	rctx, rcancel := context.WithCancel(f.ctx) // the stream's request; ends with the fleet
	connected := make(chan struct{})
	failed := make(chan string, 1)
	f.readers.Add(1)
	go f.stream(rctx, i, connected, failed)
	t := time.NewTimer(30 * time.Second)
	select {
	case <-connected:
		t.Stop()
	case kind := <-failed:
		t.Stop()
		rcancel()
		f.errs.inc("events: " + kind)
		return
	case <-t.C:
		rcancel()
		f.errs.inc("events: no connected event in 30s")
		return
	case <-ctx.Done():
		t.Stop()
		rcancel()
		return
	}
	f.mu.Lock()
	f.cancels = append(f.cancels, rcancel)
	f.mu.Unlock()
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

// stream opens session i's event stream and parses it until it ends: it
// closes connected at the connected event and times every agent message.
// A failure to open is sent on failed.
func (f *gatewayFleet) stream(ctx context.Context, i int, connected chan struct{}, failed chan<- string) {
	defer f.readers.Done()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(i))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := f.streamClients[i%len(f.streamClients)].Do(req)
	if err != nil {
		failed <- "transport"
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		failed <- strconv.Itoa(resp.StatusCode)
		return
	}
	br := bufio.NewReaderSize(resp.Body, 2048)
	var event []byte
	var data []byte
	var long []byte // a line longer than the buffer, assembled
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if connected == nil && ctx.Err() == nil {
				f.errs.inc("stream ended: " + streamErrKind(err))
			}
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0: // end of a message
			if string(event) == "connected" && connected != nil {
				close(connected)
				connected = nil
			}
			if string(event) == "new_event" {
				if at, ok := pushSentAt(data); ok {
					f.push.add(time.Since(at))
					f.recv.received[i].Add(1)
				}
			}
			event, data = event[:0], data[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			event = append(event[:0], line[len("event: "):]...)
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
}

// streamErrKind names why a stream's body ended.
func streamErrKind(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF):
		return "EOF (the gateway ended it)"
	case strings.Contains(msg, "stream error"), strings.Contains(msg, "GOAWAY"), strings.Contains(msg, "connection"):
		// One kind per error, not per stream: digits (stream ids) dropped.
		msg = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, msg)
		if len(msg) > 80 {
			msg = msg[:80]
		}
		return msg
	default:
		return "other"
	}
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
		Push:     f.push.samples(),
		Calls:    f.calls.all(),
		Errors:   f.errs.snapshot(),
		Received: f.recv.snapshot(),
	}, nil
}

func (f *gatewayFleet) Close() error {
	f.cancel() // ends every stream request
	f.readers.Wait()
	for _, t := range f.transports {
		t.CloseIdleConnections()
	}
	f.raw.close()
	return nil
}
