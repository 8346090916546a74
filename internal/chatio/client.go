package chatio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
	"github.com/chatio-gateway/chatio-gateway/internal/wsconn"
)

// Config configures one upstream connection (one customer). URL and OnItem
// are required; the zero value of every other field means the default given
// beside it.
type Config struct {
	URL            string        // base, e.g. "ws://127.0.0.1:8090/customer/v0.5"; socket = URL+"/rtm/ws?license_id=N"
	License        int64         // the license id sent as license_id
	Token          string        // the access token, without "Bearer "; login sends "Bearer "+Token; never logged
	Customer       CustomerData  // sent in login; Fields nil → {}
	HTTPClient     *http.Client  // used to dial and for SendFile; nil → a shared default with sane transport timeouts
	PingInterval   time.Duration // 0 → 15s; a websocket ping every interval
	PongTimeout    time.Duration // 0 → 10s; no pong in time → socket closed, Err() wraps ErrTimeout; also bounds every write
	RequestTimeout time.Duration // 0 → 15s; per call (slot wait included), on top of the caller's ctx; also bounds the handshake
	MaxPending     int           // 0 → 10; calls beyond wait (ctx-aware) for a slot
	ReadLimit      int64         // 0 → 4 MiB; max frame size in bytes
	Logger         *zap.Logger   // nil → zap.NewNop(); the token is never logged
	// OnIgnored, when set, is told of every frame the read loop ignores,
	// with the Stats counter it lands in: "malformed", "unknown_id" or
	// "dropped". Called on the read loop: it must not block.
	OnIgnored func(reason string)
	// OnItem (required) takes every stream item on the read loop itself,
	// in arrival order: no hand-off between goroutines on the way in. It
	// must not block and must not wait for this client's calls (their
	// answers come through this very read loop). An Emit()-result reaches
	// it before its Call returns. Returning false ends the client with
	// ErrStreamOverflow.
	OnItem func(StreamItem) bool
	// OnDone, when set, is called once at the very end of the read loop,
	// after Done is closed, Err is set and the socket is gone: a client
	// needs no watcher goroutine. It must not call Close or wait for this
	// client (Close waits for the read loop).
	OnDone func()
	// Poller, when set, reads the socket on one of its event loops instead
	// of a goroutine of the client's own, so an idle client holds no
	// goroutine stack (thousands of mostly idle customers are the
	// gateway's case). ws:// and wss:// sockets are polled (crypto/tls
	// decrypts what each read brought); one the handshake read ahead on,
	// or one a proxy dialer returned as its own type, keeps the goroutine. The
	// "read loop" of OnItem, OnDone and OnIgnored is then the poller's loop:
	// the rules are the same, and a callback that blocks now holds up every
	// socket of that loop. The poller must outlive the client.
	Poller *netpoll.Poller
}

// Defaults of Config.
const (
	DefaultPingInterval   = 15 * time.Second
	DefaultPongTimeout    = 10 * time.Second
	DefaultRequestTimeout = 15 * time.Second
	DefaultMaxPending     = 10
	DefaultReadLimit      = 4 << 20
)

// closeTimeout bounds the normal close handshake of Close; after it the
// socket is torn down without waiting for the peer's close frame.
const closeTimeout = wsconn.CloseTimeout

// withDefaults fills in every zero field (the one place defaults live).
func (cfg Config) withDefaults() Config {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Customer.Fields == nil {
		cfg.Customer.Fields = json.RawMessage("{}")
	}
	return cfg
}

// defaultHTTPClient is shared by every client that brings none, so that
// SendFile reuses connections. No overall Timeout: uploads are bounded by
// their ctx; the transport bounds dialing, TLS and waiting for headers.
//
// The transport is set up before it is shared: net/http completes a
// transport's TLS configuration (HTTP/2's NextProtos) lazily, at its first
// request, and a socket's dial reads that configuration (wsconn.Dial): the
// first upload would write it while a dial reads it. CloseIdleConnections
// runs that one-time set-up now (with nothing to close yet).
var defaultHTTPClient = sync.OnceValue(newDefaultHTTPClient)

func newDefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second
	t.CloseIdleConnections()
	return &http.Client{Transport: t}
}

// endpoints derives the socket and upload URLs from the base URL.
func endpoints(base string, license int64) (socket, upload string, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("chatio: bad URL: %w", err)
	}
	var httpScheme string
	switch u.Scheme {
	case "ws", "http":
		httpScheme = "http"
	case "wss", "https":
		httpScheme = "https"
	default:
		return "", "", fmt.Errorf("chatio: bad URL scheme %q (want ws, wss, http or https)", u.Scheme)
	}
	if u.Host == "" {
		return "", "", errors.New("chatio: bad URL: no host")
	}
	rest := strings.TrimRight(base[len(u.Scheme):], "/") // "://host/path"
	q := "?license_id=" + strconv.FormatInt(license, 10)
	return base[:len(u.Scheme)] + rest + "/rtm/ws" + q, httpScheme + rest + "/action/send_file" + q, nil
}

// Stats are the client's counters since Dial.
type Stats struct {
	FramesIn   uint64 // data frames read from the socket
	Pushes     uint64 // pushes without request id handed to OnItem
	UnknownIDs uint64 // responses/results for a request id not in flight (late, or not ours)
	Malformed  uint64 // frames that are not JSON objects with an action (or a response without a string request_id)
	Dropped    uint64 // frames ignored on purpose: customer_updated with request id, non-string request_id, neither push nor result
}

// StreamItem is one thing the session turns into SDK events.
type StreamItem struct {
	Frame    Frame  // the push (or response) frame as received
	ResultOf string // "" for a plain push; else the action of the request this frame is the result of
	// Origin is the tag of the call this frame is the result of (EmitFrom;
	// 0 for a push or an untagged call): opaque to the client.
	Origin uint64
}

// CallOption modifies one Call.
type CallOption func(*callOptions)

type callOptions struct {
	emit   bool
	origin uint64
}

// Emit makes Call also hand the result frame to OnItem (ResultOf = the
// action), in arrival order relative to pushes, before Call returns.
func Emit() CallOption { return func(o *callOptions) { o.emit = true } }

// EmitFrom is Emit with the StreamItem's Origin set to origin: a tag the
// caller gives the call (the session's: which client instance made it).
func EmitFrom(origin uint64) CallOption {
	return func(o *callOptions) { o.emit, o.origin = true, origin }
}

// pendingCall is one request in flight.
type pendingCall struct {
	id     string
	action string
	emit   bool
	origin uint64
	res    chan callResult // capacity 1; written once by whoever removes the call from Client.pending
}

type callResult struct {
	payload json.RawMessage
	err     error
}

// Client is one upstream websocket for one customer. Create it with Dial;
// every method is safe for concurrent use. See the package doc.
type Client struct {
	cfg       Config // immutable after Dial
	conn      *wsconn.Conn
	uploadURL string

	// ctx is the client's lifetime: cancel ends it and closes the socket,
	// which ends a blocked read or write.
	// Cancelled by the read loop on exit, by the keepalive on a stall, by a
	// failed write, by Close.
	ctx    context.Context
	cancel context.CancelFunc

	sem   chan struct{} // MaxPending slots; a call holds one from send to end
	dying chan struct{} // closed by fail when the first cause is recorded
	done  chan struct{} // closed by readLoop at its very end, after err is set
	err   error         // the final cause; written by readLoop before done is closed

	nextID atomic.Uint64

	mu      sync.Mutex
	pending []*pendingCall // guarded by mu: the calls in flight, at most MaxPending (a map would hold more memory per idle client)
	dead    bool           // guarded by mu: set once the client is dying; no call is added after
	cause   error          // guarded by mu; the first reason the client ends

	disconnectReason *string // owned by readLoop: the last customer_disconnected reason
	rerr             error   // polled: why the read side ended, set by readable

	closeOnce sync.Once
	wg        sync.WaitGroup // readLoop, a running ping

	kaMu      sync.Mutex
	pinger    *time.Timer // guarded by kaMu: the keepalive timer (see ping)
	kaStopped bool        // guarded by kaMu: set once the client ends; no ping after it

	framesIn, pushes, unknownIDs, malformed, dropped atomic.Uint64
}

// log writes a line at lvl with the client's license id, when lvl is
// enabled. The id is added to the line, not held in a logger of the
// client's own (≈ 0.3 KiB for each of thousands of clients), and nothing
// is built for a line that is not written: With on Config.Logger would
// also make a lazy logger (zap's WithLazy, as the gateway's sessions
// give) build its fields at once, ≈ 1 KiB more per client.
func (c *Client) log(lvl zapcore.Level, msg string, fields ...zap.Field) {
	if ce := c.cfg.Logger.Check(lvl, msg); ce != nil {
		ce.Write(append(fields, zap.Int64("license_id", c.cfg.License))...)
	}
}

// Dial opens the socket, starts the read loop and keepalive, and logs in.
// A refused login with error type "authentication" returns *AuthError, any
// other refusal *RequestError. ctx bounds the handshake and the login only.
func Dial(ctx context.Context, cfg Config) (*Client, LoginResult, error) {
	if cfg.OnItem == nil {
		return nil, LoginResult{}, errNoOnItem
	}
	cfg = cfg.withDefaults()
	socketURL, uploadURL, err := endpoints(cfg.URL, cfg.License)
	if err != nil {
		return nil, LoginResult{}, err
	}

	dctx, dcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	conn, err := wsconn.Dial(dctx, socketURL, cfg.HTTPClient, cfg.ReadLimit)
	timedOut := errors.Is(dctx.Err(), context.DeadlineExceeded)
	dcancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, LoginResult{}, ctxError(ctx, "dial")
		case timedOut:
			return nil, LoginResult{}, fmt.Errorf("%w: dial: %w", ErrTimeout, err)
		default:
			return nil, LoginResult{}, fmt.Errorf("%w: dial: %w", ErrConnectionLost, err)
		}
	}
	c := &Client{
		cfg:       cfg,
		conn:      conn,
		uploadURL: uploadURL,
		sem:       make(chan struct{}, cfg.MaxPending),
		dying:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.ctx = ctx
	// Cancelling closes the socket, which ends a blocked read or write: in
	// the canceller's goroutine (a context.AfterFunc would hold ≈ 0.5 KiB
	// per client for the client's life). conn.Close reads what startPolled
	// sets: the reader and everyone else cancel only after it.
	c.cancel = func() {
		cancel()
		_ = conn.Close()
	}
	c.wg.Add(1) // the read side, until finish
	if !c.startPolled() {
		go c.readLoop()
	}
	c.kaMu.Lock()
	c.pinger = time.AfterFunc(cfg.PingInterval, c.ping)
	c.kaMu.Unlock()

	raw, err := c.Call(ctx, ActionLogin, LoginPayload{Token: "Bearer " + cfg.Token, Customer: cfg.Customer})
	if err != nil {
		c.Close()
		return nil, LoginResult{}, err
	}
	var lr LoginResult
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &lr); err != nil {
			c.log(zapcore.DebugLevel, "login result not understood; ignored", zap.Error(err))
			lr = LoginResult{}
		}
	}
	c.log(zapcore.DebugLevel, "logged in")
	return c, lr, nil
}

// Call sends one request and waits for its result: the response payload
// for direct actions (IsDirect), the payload of the push carrying the
// request id for indirect ones (the ack's failure still fails the call).
//
// Errors: *AuthError, *RequestError, ErrConnectionLost (socket dropped while
// in flight — also after a stall or a refused item, see Err for the cause),
// *DisconnectedError (after customer_disconnected; wraps ErrConnectionLost),
// ErrTimeout (RequestTimeout or the caller's deadline; also matches
// context.DeadlineExceeded), ErrClosed, and the ctx error wrapped for
// cancellation. RequestTimeout covers the wait for a slot too. A frame
// being written is not abandoned on cancellation (that would close the
// socket); writes are bounded by PongTimeout.
//
// With Emit, the result is ALSO handed to OnItem (ResultOf set) before
// Call returns, in arrival order relative to pushes.
func (c *Client) Call(ctx context.Context, action string, payload any, opts ...CallOption) (json.RawMessage, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	body, err := encodePayload(payload)
	if err != nil {
		return nil, fmt.Errorf("chatio: %s: encode payload: %w", action, err)
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx, action)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError(ctx, action)
	case <-c.dying:
		return nil, callErr(c.currentCause())
	}
	defer func() { <-c.sem }()

	id := strconv.FormatUint(c.nextID.Add(1), 10)
	p := &pendingCall{id: id, action: action, emit: o.emit, origin: o.origin, res: make(chan callResult, 1)}
	c.mu.Lock()
	if c.dead {
		cause := c.cause
		c.mu.Unlock()
		return nil, callErr(cause)
	}
	c.pending = append(c.pending, p)
	c.mu.Unlock()

	frame, err := json.Marshal(Frame{RequestID: json.RawMessage(strconv.Quote(id)), Action: action, Payload: body})
	if err != nil { // cannot happen: every part is valid JSON
		c.forget(id)
		return nil, fmt.Errorf("chatio: %s: encode frame: %w", action, err)
	}
	if err := c.write(frame); err != nil {
		c.forget(id)
		return nil, err
	}

	select {
	case r := <-p.res:
		return r.payload, r.err
	case <-ctx.Done():
		c.forget(id)
		select { // the answer may have won the race; prefer it
		case r := <-p.res:
			return r.payload, r.err
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.probe() // no answer in time: is the peer still there?
		}
		return nil, ctxError(ctx, action)
	}
}

// encodePayload: nil → no payload field; raw JSON as is; else marshalled.
func encodePayload(payload any) (json.RawMessage, error) {
	switch p := payload.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(p) == 0 {
			return nil, nil
		}
		if !json.Valid(p) {
			return nil, errors.New("invalid raw JSON")
		}
		return p, nil
	default:
		return json.Marshal(payload)
	}
}

// ctxError maps an ended call context: a passed deadline (ours or the
// caller's) is ErrTimeout, cancellation is the ctx error, both wrapped.
func ctxError(ctx context.Context, action string) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrTimeout, action, err)
	}
	return fmt.Errorf("chatio: %s: %w", action, err)
}

// callErr is what a call fails with when the client ends for cause:
// ErrClosed and connection losses (including *DisconnectedError) as they are;
// anything else (stall, overflow, write failure) as ErrConnectionLost.
func callErr(cause error) error {
	switch {
	case cause == nil:
		return ErrConnectionLost
	case errors.Is(cause, ErrClosed), errors.Is(cause, ErrConnectionLost):
		return cause
	case errors.Is(cause, ErrTimeout):
		// A stall (no pong, a write that never ended): the call got no
		// answer in time, and the socket it was on is gone.
		return fmt.Errorf("%w: %w: %v", ErrTimeout, ErrConnectionLost, cause)
	default:
		return fmt.Errorf("%w: %v", ErrConnectionLost, cause)
	}
}

func (c *Client) currentCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// forget removes a call that gave up.
func (c *Client) forget(id string) {
	c.mu.Lock()
	c.removeLocked(c.findLocked(id))
	c.mu.Unlock()
}

// findLocked is the index of the call with this id in c.pending, or -1.
func (c *Client) findLocked(id string) int {
	for i, p := range c.pending {
		if p.id == id {
			return i
		}
	}
	return -1
}

// removeLocked takes c.pending[i] out (i < 0: nothing), in place; an
// emptied list lets its array go.
func (c *Client) removeLocked(i int) {
	if i < 0 {
		return
	}
	n := len(c.pending) - 1
	c.pending[i] = c.pending[n]
	c.pending[n] = nil
	c.pending = c.pending[:n]
	if n == 0 {
		c.pending = nil
	}
}

// take removes and returns the call with this id (nil if not in flight).
func (c *Client) take(id string) *pendingCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.findLocked(id)
	if i < 0 {
		return nil
	}
	p := c.pending[i]
	c.removeLocked(i)
	return p
}

// fail records why the client ends (the first cause wins) and fails every
// call in flight. It does not touch the socket. It reports whether cause
// was the one recorded.
func (c *Client) fail(cause error) bool {
	c.mu.Lock()
	if c.cause != nil {
		c.mu.Unlock()
		return false
	}
	c.cause = cause
	pend := c.pending
	c.pending, c.dead = nil, true
	close(c.dying)
	c.mu.Unlock()
	err := callErr(cause)
	for _, p := range pend {
		p.res <- callResult{err: err}
	}
	return true
}

// write sends one frame with a write deadline. A failed write has closed the
// socket (wsconn.Conn); the call fails with the client's cause.
func (c *Client) write(b []byte) error {
	err := c.conn.WriteText(b, time.Now().Add(c.cfg.PongTimeout))
	if err == nil {
		return nil
	}
	var cause error
	if errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil {
		cause = fmt.Errorf("%w: write stalled for %v", ErrTimeout, c.cfg.PongTimeout)
	} else {
		cause = fmt.Errorf("%w: write: %v", ErrConnectionLost, err)
	}
	if c.fail(cause) {
		c.log(zapcore.InfoLevel, "upstream write failed", zap.Error(err))
		c.cancel()
	}
	return callErr(c.currentCause())
}

// readLoop owns every read of the socket for the client's life, routes the
// frames, and on exit finishes the client.
func (c *Client) readLoop() {
	var rerr error
	for {
		data, err := c.conn.Read()
		if err != nil {
			rerr = err
			break
		}
		if !c.dispatch(data) {
			break
		}
	}
	c.finish(rerr)
}

// startPolled hands the socket to the configured poller; false: it is read
// by a goroutine (no poller, no TCP socket of ours under the websocket,
// bytes read ahead by the handshake, or Add failed).
func (c *Client) startPolled() bool {
	if c.cfg.Poller == nil {
		return false
	}
	tc, ok := c.conn.Pollable()
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	c.conn.SetPolled(raw, c.spawn)
	if _, err := c.cfg.Poller.Add(tc, c.readable, c.pollEnded); err != nil {
		c.conn.SetPolled(nil, nil)
		c.log(zapcore.DebugLevel, "upstream socket read by a goroutine", zap.Error(err))
		return false
	}
	return true
}

// readable is the polled socket's read loop, one call at a time on the
// poller's loop: what the socket has is read and routed; false ends it.
func (c *Client) readable(r *netpoll.Reader) bool {
	ok, err := c.conn.ReadSome(r, c.dispatch)
	if !ok {
		c.rerr = err
	}
	return ok
}

// pollEnded: the poller has let the socket go. The close frame owed may
// wait for the socket, so the client is finished on a goroutine.
func (c *Client) pollEnded() {
	go func() {
		c.conn.EndPolled()
		c.finish(c.rerr)
	}()
}

// spawn runs f on a goroutine the client waits for (a polled socket's
// pong: no write on the poller's loop). Only while the read side lives.
func (c *Client) spawn(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// finish ends the client after its read side: cause, socket, done, OnDone.
func (c *Client) finish(rerr error) {
	defer c.wg.Done()
	var loss error
	if c.disconnectReason != nil {
		r := *c.disconnectReason
		loss = &DisconnectedError{Reason: r, Retry: ShouldReconnect(r)}
	} else {
		loss = fmt.Errorf("%w: %v", ErrConnectionLost, rerr)
	}
	c.fail(loss) // no-op when Close, a stall or an overflow came first
	c.cancel()
	c.stopKeepalive()
	_ = c.conn.Close()

	c.err = c.currentCause()
	if errors.Is(c.err, ErrClosed) {
		c.log(zapcore.DebugLevel, "upstream connection closed")
	} else {
		c.log(zapcore.InfoLevel, "upstream connection ended", zap.Error(c.err))
	}
	close(c.done)
	if c.cfg.OnDone != nil {
		c.cfg.OnDone()
	}
}

// dispatch routes one frame; false stops the read loop (OnItem refused).
// A push goes on to OnItem from here, on the read loop's stack, which
// grows to hold the deepest path a frame takes and keeps that size until
// a GC halves it: dispatch keeps its own frame small (the answers and the
// logging sit in functions of their own).
func (c *Client) dispatch(data []byte) bool {
	c.framesIn.Add(1)
	d, err := classify(data)
	if err != nil {
		c.malformedFrame(err, len(data))
		return true
	}
	switch d.class {
	case classPush:
		if d.frame.Action == PushCustomerDisconnected {
			c.noteDisconnect(d.frame.Payload)
		}
		c.pushes.Add(1)
		return c.toItem(StreamItem{Frame: d.frame})
	case classDropped:
		c.droppedFrame(d.frame.Action, d.why)
		return true
	}
	return c.answer(&d)
}

// answer routes a response or a result to its call.
func (c *Client) answer(d *decodedFrame) bool {
	f := &d.frame
	if d.class == classResponse {
		if f.Success != nil && *f.Success {
			p, found := c.takeIfDirect(d.id)
			switch {
			case !found:
				return c.unknown(f.Action, d.id)
			case p == nil:
				return true // an indirect ack: the result push follows
			default:
				return c.resolve(p, f, callResult{payload: f.Payload})
			}
		}
		p := c.take(d.id)
		if p == nil {
			return c.unknown(f.Action, d.id)
		}
		p.res <- callResult{err: responseError(p.action, f.Payload)}
		return true
	}
	p := c.take(d.id) // classResult
	if p == nil {
		return c.unknown(f.Action, d.id)
	}
	return c.resolve(p, f, callResult{payload: f.Payload})
}

//go:noinline
func (c *Client) malformedFrame(err error, n int) {
	c.malformed.Add(1)
	c.ignored("malformed")
	c.log(zapcore.DebugLevel, "malformed frame ignored", zap.Error(err), zap.Int("bytes", n))
}

//go:noinline
func (c *Client) droppedFrame(action, why string) {
	c.dropped.Add(1)
	c.ignored("dropped")
	c.log(zapcore.DebugLevel, "frame dropped", zap.String("action", action), zap.String("why", why))
}

//go:noinline
func (c *Client) noteDisconnect(payload json.RawMessage) {
	r := disconnectReason(payload)
	c.disconnectReason = &r
	c.log(zapcore.InfoLevel, "customer_disconnected", zap.String("reason", r))
}

// takeIfDirect reports whether id is in flight and, when its action is
// direct (IsDirect on the action we sent, not the echoed one), removes and
// returns it.
func (c *Client) takeIfDirect(id string) (p *pendingCall, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.findLocked(id)
	if i < 0 {
		return nil, false
	}
	if p = c.pending[i]; !IsDirect(p.action) {
		return nil, true
	}
	c.removeLocked(i)
	return p, true
}

//go:noinline
func (c *Client) unknown(action, id string) bool {
	c.unknownIDs.Add(1)
	c.ignored("unknown_id")
	c.log(zapcore.DebugLevel, "answer for a request not in flight", zap.String("action", action), zap.String("request_id", id))
	return true
}

// resolve delivers a result, first to OnItem when the call asked for it.
func (c *Client) resolve(p *pendingCall, f *Frame, r callResult) bool {
	if p.emit && !c.toItem(StreamItem{Frame: *f, ResultOf: p.action, Origin: p.origin}) {
		p.res <- callResult{err: callErr(c.currentCause())}
		return false
	}
	p.res <- r
	return true
}

// toItem hands an item to OnItem; when OnItem refuses it, the client ends
// with ErrStreamOverflow.
func (c *Client) toItem(it StreamItem) bool {
	if c.cfg.OnItem(it) {
		return true
	}
	c.overflowed()
	return false
}

// overflowed ends the client because OnItem cannot take more.
//
//go:noinline
func (c *Client) overflowed() {
	if c.fail(ErrStreamOverflow) {
		c.log(zapcore.InfoLevel, "stream consumer cannot take more; closing upstream")
	}
}

// responseError turns a failed response's payload into *AuthError or *RequestError.
func responseError(action string, payload json.RawMessage) error {
	var ep ErrorPayload
	_ = json.Unmarshal(payload, &ep) // a shapeless error is still an error
	if ep.Error.Type == ErrTypeAuthentication {
		return &AuthError{Message: ep.Error.Message}
	}
	return &RequestError{Action: action, Type: ep.Error.Type, Message: ep.Error.Message}
}

// disconnectReason reads {"reason": "..."}; anything else is "".
func disconnectReason(payload json.RawMessage) string {
	var p struct {
		Reason any `json:"reason"`
	}
	_ = json.Unmarshal(payload, &p)
	s, _ := p.Reason.(string)
	return s
}

// ping runs on the keepalive timer, PingInterval after Dial and after each
// answered ping: no pong within PongTimeout ends the client with
// ErrTimeout. A timer instead of a goroutine per client: a ping's
// goroutine exists only while it waits for its pong.
func (c *Client) ping() {
	c.kaMu.Lock()
	if c.kaStopped {
		c.kaMu.Unlock()
		return
	}
	c.wg.Add(1) // the read loop's count is held while !kaStopped
	c.kaMu.Unlock()
	defer c.wg.Done()

	pctx, cancel := context.WithTimeout(c.ctx, c.cfg.PongTimeout)
	err := c.conn.Ping(pctx)
	stalled := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	if err == nil {
		c.kaMu.Lock()
		if !c.kaStopped {
			c.pinger.Reset(c.cfg.PingInterval)
		}
		c.kaMu.Unlock()
		return
	}
	if c.ctx.Err() != nil {
		return
	}
	if stalled {
		if c.fail(fmt.Errorf("%w: no pong within %v", ErrTimeout, c.cfg.PongTimeout)) {
			c.log(zapcore.InfoLevel, "upstream stalled: no pong", zap.Duration("pong_timeout", c.cfg.PongTimeout))
			c.cancel()
		}
	}
	// Otherwise the socket is already gone: the read loop reports it.
}

// probe pings at once unless a ping is already on its way: a call that
// got no answer in time may be the first sign of a stalled peer, which the
// pong's absence then confirms within PongTimeout instead of waiting for
// the next PingInterval.
func (c *Client) probe() {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	if !c.kaStopped && c.pinger.Stop() { // Stop false: a ping is running (or it is over)
		c.pinger.Reset(0)
	}
}

// ignored reports an ignored frame to Config.OnIgnored.
func (c *Client) ignored(reason string) {
	if c.cfg.OnIgnored != nil {
		c.cfg.OnIgnored(reason)
	}
}

// stopKeepalive disarms the keepalive for good (a running ping ends with
// c.ctx).
func (c *Client) stopKeepalive() {
	c.kaMu.Lock()
	c.kaStopped = true
	c.pinger.Stop()
	c.kaMu.Unlock()
}

// Done is closed when the socket is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client ended; nil before Done. ErrConnectionLost (wrapped),
// *DisconnectedError, ErrTimeout (wrapped: no pong, or a write stalled),
// ErrStreamOverflow, or ErrClosed.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		FramesIn:   c.framesIn.Load(),
		Pushes:     c.pushes.Load(),
		UnknownIDs: c.unknownIDs.Load(),
		Malformed:  c.malformed.Load(),
		Dropped:    c.dropped.Load(),
	}
}

// Close sends a normal close frame (the handshake bounded by a short
// deadline, then the socket is torn down), fails in-flight calls with
// ErrClosed and waits for the client's goroutines. Idempotent; always nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.fail(ErrClosed)
		select {
		case <-c.done:
		default:
			// The peer's answering close frame ends the read loop.
			if c.conn.CloseNormal() == nil {
				t := time.NewTimer(closeTimeout)
				select {
				case <-c.done:
				case <-t.C:
				}
				t.Stop()
			}
		}
		c.cancel()
		c.stopKeepalive()
		c.wg.Wait()
	})
	return nil
}

// frameClass is how the read loop routes a decoded frame.
type frameClass int

const (
	classPush     frameClass = iota + 1 // a push without request_id: to OnItem
	classResponse                       // type "response" with a string request_id: ack, result or failure
	classResult                         // any other frame with a string request_id: the result of that request
	classDropped                        // ignored on purpose, as the SDK does
)

// decodedFrame is classify's verdict on one frame.
type decodedFrame struct {
	frame Frame
	class frameClass
	id    string // the request id, when it is a JSON string
	why   string // why a classDropped frame is dropped
}

var errNoAction = errors.New("frame without action")

// classify decodes one frame and says how it is routed, following the SDK's
// socketListener: a "response" is matched by its request id; a frame with a
// string request id is a result, except customer_updated (dropped); a frame
// whose request_id is present but not a string is dropped; a "push" without
// request id goes to OnItem; anything else is dropped. An error means the
// frame is malformed (not a JSON object of the wire shape, no action, or a
// response without a string request id). Pure: no state, no I/O.
func classify(data []byte) (decodedFrame, error) {
	var d decodedFrame
	var err error
	if d.frame, err = DecodeFrame(data); err != nil {
		return decodedFrame{}, err
	}
	f := &d.frame
	if f.Action == "" {
		return decodedFrame{}, errNoAction
	}
	hasID := len(f.RequestID) > 0
	isString := false
	if hasID {
		raw := bytes.TrimSpace(f.RequestID)
		if s, ok := jsonobj.PlainString(raw); ok {
			d.id, isString = string(s), true // the usual id: no escapes
		} else if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &d.id) == nil {
			isString = true
		}
	}
	switch {
	case f.Type == TypeResponse:
		if !isString {
			return decodedFrame{}, errors.New("response without a string request_id")
		}
		d.class = classResponse
	case isString && f.Action == PushCustomerUpdated:
		d.class, d.why = classDropped, "customer_updated carrying a request id"
	case isString:
		d.class = classResult
	case hasID:
		d.class, d.why = classDropped, "request_id is not a string"
	case f.Type != TypePush:
		d.class, d.why = classDropped, "neither a response, a result nor a push"
	default:
		d.class = classPush
	}
	return d, nil
}
