package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures an Engine. Zero values take the defaults named on each
// field; every bound has a default, so a zero Config (plus DataDir, NodeID
// and ClusterKey) is a complete one.
type Config struct {
	// URL lists the NATS servers to connect to, comma-separated. Empty: the
	// engine runs nats-server inside this process, listening on nothing.
	URL string
	// DataDir is where the embedded server keeps its JetStream store.
	// Required when URL is empty; unused otherwise.
	DataDir string
	// NodeID names this replica; unique per replica. It is the key of the
	// node lease and the owner named in session records.
	NodeID string
	// ClusterKey keys the customer ids (CustomerKey) and the one-time ids
	// (Once). At least 32 bytes; the same on every replica.
	ClusterKey []byte
	// LeaseTTL is how long the node lease lives without renewal (default
	// 10s; the same on every replica: it is the cgw_nodes bucket's MaxAge).
	// It is renewed every LeaseTTL/4; the local deadline is 70 % of
	// LeaseTTL after a renewal was sent, and the other nodes reap a lease
	// not renewed for 75 % of it (reap.go).
	LeaseTTL time.Duration
	// Streams is the number of log streams the customers are spread over.
	// It must not change for an existing store: a customer's stream is its
	// sid's hash modulo Streams. 0: the existing store's number, else 1
	// with SingleNode (one server has no leaders to spread, and each
	// stream keeps write buffers of its own: 50,000 appends of 200 bytes
	// left 9 MB of live heap on one stream against 35 MB on four), else 4.
	Streams int
	// Replicas is the replica count of the streams and buckets (default: 3
	// when the server reports a cluster of three or more servers, else 1).
	Replicas int
	// MaxEventsPerCustomer is the replay ring: how many events the log keeps
	// per customer (default 1000).
	MaxEventsPerCustomer int64
	// MaxAge is how long the log keeps an event (default 24h).
	MaxAge time.Duration
	// MaxBytes bounds each log stream in bytes (default 1 GiB); the oldest
	// events go first.
	MaxBytes int64
	// MaxEventBytes bounds one event's payload (default 1 MiB).
	MaxEventBytes int32
	// Duplicates is the window in which a retried append with the same
	// message id is recognised (default 20s; kept short, nats-server
	// #8485: the server keeps every append's id for the window, 40,000
	// ids at 2,000 appends/s). A retry after it is still recognised by
	// the customer's last event (Append). With SingleNode the default is
	// the server's least, 100ms: on one server an append's expected last
	// sequence is checked before its id, so a retry of a stored append
	// is refused as "wrong last sequence" and recognised by the last
	// event, never by the window, which only holds memory there
	// (≈ 0.6 KiB per session at the end of a 10,000-session ramp).
	Duplicates time.Duration
	// SingleNode: this Engine is the only one that reads or writes the log
	// (the embedded server listens on nothing, so no other replica can
	// reach it). The log streams then do not republish appends to the
	// live subjects (server work and ~16 allocations on every append,
	// for subscribers that cannot exist): Subscribe gets nothing, and the
	// caller hands its own appends to its readers. Set it for the
	// embedded engine only; a store made with it is republished again by
	// the first Engine started without it.
	SingleNode bool
	// ReadMaxBytes bounds the payload bytes of one Read (default 4 MiB).
	ReadMaxBytes int
	// OpTimeout bounds one engine round trip when the caller's context has
	// no deadline (default 5s).
	OpTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts to an external
	// server (default 500ms; attempts never stop).
	ReconnectWait time.Duration
	// OnState, when set, is called (on a nats.go goroutine, never
	// concurrently with itself) when the connection state changes. After a
	// reconnect, live messages may have been missed: callers CatchUp.
	OnState func(State)
}

// State is the engine connection's state.
type State string

// Connection states reported by State and Config.OnState.
const (
	StateConnected    State = "connected"
	StateReconnecting State = "reconnecting"
	StateClosed       State = "closed"
)

// Errors the engine answers with.
var (
	// ErrFenced: the append was refused because another writer appended to
	// the customer's log (the caller is no longer its owner), or this node's
	// lease is no longer valid.
	ErrFenced = errors.New("engine: fenced: not the owner of this customer's log any more")
	// ErrNoOwner: nobody serves the session's operations subject.
	ErrNoOwner = errors.New("engine: the session has no owner")
	// ErrOwned: another live node owns the session (Own's error is an
	// *OwnedError, which names the owner).
	ErrOwned = errors.New("engine: the session is owned by another node")
	// ErrTooOld: the events after the given sequence are no longer all in
	// the log; the caller sends a snapshot.
	ErrTooOld = errors.New("engine: the log no longer holds every event after this sequence")
	// ErrClosed: the Engine was closed.
	ErrClosed = errors.New("engine: closed")
)

// OwnedError is Own's answer when another node owns the session and its
// lease is alive: errors.Is(err, ErrOwned). Owner is that owner's
// OwnerID (node and lease epoch): what Alive takes, to wait for its lease
// to lapse.
type OwnedError struct{ Owner string }

func (e *OwnedError) Error() string {
	return ErrOwned.Error() + ": " + parseOwner([]byte(e.Owner)).node
}

// Is makes errors.Is(err, ErrOwned) true.
func (e *OwnedError) Is(target error) bool { return target == ErrOwned }

// Engine is the gateway's handle on NATS JetStream. Its methods are safe
// for concurrent use.
type Engine struct {
	cfg   Config
	srv   *server.Server // embedded server, nil when connected to URL
	nc    *nats.Conn
	js    jetstream.JetStream
	nodes jetstream.KeyValue
	owner jetstream.KeyValue
	once  jetstream.KeyValue

	replicas int
	streams  []streamNames

	lease leaseState
	seen  sightings // other nodes' lease revisions, and when first seen (reap.go)
	// rewatch is signalled (capacity 1, never blocking) when the
	// connection is back after a loss: the lease watch starts again.
	rewatch chan struct{}
	ops     opsTable // the sessions this node serves (Serve)
	acks    acks     // the appends waiting for their acknowledgement (AppendOwnedAsync)

	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	closeMu sync.Mutex
}

type streamNames struct {
	name   string // CGW_EV_<n>
	evPfx  string // cgw.ev.<n>.
	livPfx string // cgw.live.<n>.
	direct string // $JS.API.DIRECT.GET.CGW_EV_<n>
	msgGet string // $JS.API.STREAM.MSG.GET.CGW_EV_<n>
}

// Bucket and stream names.
const (
	bucketNodes  = "cgw_nodes"
	bucketOwners = "cgw_owners"
	bucketOnce   = "cgw_once"
	streamPrefix = "CGW_EV_"
	onceMaxTTL   = 24 * time.Hour
)

func (c *Config) defaults() error {
	if c.NodeID == "" {
		return errors.New("engine: NodeID is required")
	}
	if !validToken(c.NodeID) {
		return fmt.Errorf("engine: NodeID %q: only letters, digits, '-' and '_'", c.NodeID)
	}
	if len(c.ClusterKey) < 32 {
		return errors.New("engine: ClusterKey must be at least 32 bytes")
	}
	if c.URL == "" && c.DataDir == "" {
		return errors.New("engine: DataDir is required for the embedded server")
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.LeaseTTL < 300*time.Millisecond {
		return errors.New("engine: LeaseTTL below 300ms")
	}
	if c.Streams < 0 || c.Streams > 1024 {
		return errors.New("engine: Streams must be 0 to 1024")
	}
	if c.MaxEventsPerCustomer <= 0 {
		c.MaxEventsPerCustomer = 1000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 1 << 20
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 20 * time.Second
		if c.SingleNode {
			c.Duplicates = minDuplicates
		}
	}
	if c.Duplicates > c.MaxAge {
		c.Duplicates = c.MaxAge
	}
	if c.ReadMaxBytes <= 0 {
		c.ReadMaxBytes = 4 << 20
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = 500 * time.Millisecond
	}
	return nil
}

// validToken reports whether s is one NATS subject token of safe
// characters (it ends up in subjects and KV keys).
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Start starts the embedded server (Config.URL empty) or connects to the
// configured servers, makes sure the streams and buckets exist, takes the
// node lease and starts renewing it. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, rewatch: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			e.shutdown()
		}
	}()
	if err := e.connect(ctx); err != nil {
		return nil, err
	}
	if err := e.setup(ctx); err != nil {
		return nil, err
	}
	if err := e.serveNode(); err != nil {
		return nil, err
	}
	if err := e.startAcks(); err != nil {
		return nil, err
	}
	if err := e.lease.start(ctx, e); err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.lease.renewLoop(rctx, e)
	}()
	if !cfg.SingleNode {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.watchLeases(rctx)
		}()
	}
	go func() {
		defer e.wg.Done()
		e.sweepAcks(rctx.Done())
	}()
	ok = true
	return e, nil
}

func (e *Engine) connect(ctx context.Context) error {
	cfg := &e.cfg
	opts := []nats.Option{
		nats.Name("chatio-gateway/" + cfg.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/4, cfg.ReconnectWait/4),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(cfg.OpTimeout),
		nats.RetryOnFailedConnect(false),
		// Nothing is buffered while the connection is down: a call then
		// fails at once, and a publish its caller was told had failed (a
		// one-time id answered 503, an append given up) cannot land after
		// the reconnect.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { e.notify(StateReconnecting) }),
		nats.ReconnectHandler(func(*nats.Conn) { e.notify(StateConnected) }),
		nats.ClosedHandler(func(*nats.Conn) { e.notify(StateClosed) }),
		// Slow consumers are reported here; the live path's gap detection
		// recovers what a dropped message carried.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
	url := cfg.URL
	if url == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("engine: data dir: %w", err)
		}
		s, err := server.NewServer(&server.Options{
			ServerName: cfg.NodeID,
			StoreDir:   cfg.DataDir,
			JetStream:  true,
			DontListen: true, // reached in process only
			NoSigs:     true,
			NoLog:      true,
		})
		if err != nil {
			return fmt.Errorf("engine: embedded server: %w", err)
		}
		s.Start()
		e.srv = s
		wait := cfg.OpTimeout
		if dl, ok := ctx.Deadline(); ok {
			wait = time.Until(dl)
		}
		if !s.ReadyForConnections(wait) {
			return errors.New("engine: embedded server did not start")
		}
		opts = append(opts, nats.InProcessServer(s))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("engine: connect: %w", err)
	}
	e.nc = nc
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.OpTimeout))
	if err != nil {
		return fmt.Errorf("engine: jetstream: %w", err)
	}
	e.js = js
	return nil
}

func (e *Engine) notify(s State) {
	if s == StateConnected {
		select {
		case e.rewatch <- struct{}{}:
		default:
		}
	}
	if f := e.cfg.OnState; f != nil {
		f(s)
	}
}

// clusterSize estimates the number of servers in the cluster the
// connection reached: the servers the connection knows (the configured
// ones and those the cluster's INFO announced).
func (e *Engine) clusterSize() int {
	if e.srv != nil && !e.srv.JetStreamIsClustered() {
		return 1
	}
	if e.nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, u := range e.nc.Servers() {
		seen[u] = true
	}
	return len(seen)
}

func (e *Engine) setup(ctx context.Context) error {
	cfg := &e.cfg
	e.replicas = cfg.Replicas
	if e.replicas <= 0 {
		e.replicas = 1
		if e.clusterSize() >= 3 {
			e.replicas = 3
		}
	}
	n, err := e.storeStreams(ctx)
	if err != nil {
		return err
	}
	switch {
	case cfg.Streams == 0 && n > 0:
		cfg.Streams = n
	case cfg.Streams == 0 && n < 0:
		cfg.Streams = 4
	case cfg.Streams == 0 && cfg.SingleNode:
		cfg.Streams = 1
	case cfg.Streams == 0:
		cfg.Streams = 4
	case n > 0 && n != cfg.Streams:
		return fmt.Errorf("engine: the log has %d streams, Streams is %d: it must not change for an existing store", n, cfg.Streams)
	}
	e.streams = make([]streamNames, cfg.Streams)
	for i := range e.streams {
		name := fmt.Sprintf("%s%d", streamPrefix, i)
		sn := streamNames{
			name:   name,
			evPfx:  fmt.Sprintf("cgw.ev.%d.", i),
			livPfx: fmt.Sprintf("cgw.live.%d.", i),
			direct: "$JS.API.DIRECT.GET." + name,
			msgGet: "$JS.API.STREAM.MSG.GET." + name,
		}
		e.streams[i] = sn
		sc := jetstream.StreamConfig{
			Name:              name,
			Subjects:          []string{sn.evPfx + "*"},
			Storage:           jetstream.FileStorage,
			Replicas:          e.replicas,
			Retention:         jetstream.LimitsPolicy,
			Discard:           jetstream.DiscardOld,
			MaxMsgsPerSubject: cfg.MaxEventsPerCustomer,
			MaxAge:            cfg.MaxAge,
			MaxBytes:          cfg.MaxBytes,
			MaxMsgSize:        cfg.MaxEventBytes + 4096,
			Duplicates:        cfg.Duplicates,
			DenyDelete:        true,
			DenyPurge:         true,
			AllowDirect:       true,
			Metadata:          map[string]string{metaStreams: strconv.Itoa(cfg.Streams)},
		}
		if !cfg.SingleNode {
			sc.RePublish = &jetstream.RePublish{
				Source:      sn.evPfx + "*",
				Destination: sn.livPfx + "{{wildcard(1)}}",
			}
		}
		if err := retryUnavailable(ctx, func(ctx context.Context) error {
			_, err := e.js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return fmt.Errorf("engine: stream %s: %w", name, err)
		}
	}
	kv := func(c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		var b jetstream.KeyValue
		err := retryUnavailable(ctx, func(ctx context.Context) error {
			var err error
			b, err = e.js.CreateOrUpdateKeyValue(ctx, c)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("engine: bucket %s: %w", c.Bucket, err)
		}
		return b, nil
	}
	if e.nodes, err = kv(jetstream.KeyValueConfig{
		Bucket: bucketNodes, History: 1, TTL: cfg.LeaseTTL,
		Storage: jetstream.FileStorage, Replicas: e.replicas,
	}); err != nil {
		return err
	}
	if e.owner, err = kv(jetstream.KeyValueConfig{
		Bucket: bucketOwners, History: 1, TTL: cfg.MaxAge,
		Storage: jetstream.FileStorage, Replicas: e.replicas,
	}); err != nil {
		return err
	}
	if e.once, err = kv(jetstream.KeyValueConfig{
		Bucket: bucketOnce, History: 1, TTL: onceMaxTTL,
		LimitMarkerTTL: time.Second,
		Storage:        jetstream.FileStorage, Replicas: e.replicas,
	}); err != nil {
		return err
	}
	return nil
}

// minDuplicates is the least duplicate window nats-server takes.
const minDuplicates = 100 * time.Millisecond

// metaStreams is the stream metadata key that records Config.Streams.
const metaStreams = "cgw_streams"

// storeStreams is the number of log streams the existing store was made
// with (Config.Streams must not change for it), 0 when there is none yet,
// -1 when the store does not record it (made before it did; the default
// then was 4).
func (e *Engine) storeStreams(ctx context.Context) (int, error) {
	var info *jetstream.StreamInfo
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		s, err := e.js.Stream(ctx, streamPrefix+"0")
		if err != nil {
			return err
		}
		info = s.CachedInfo()
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("engine: stream %s0: %w", streamPrefix, err)
	}
	v := info.Config.Metadata[metaStreams]
	if v == "" {
		return -1, nil // made before the count was recorded
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("engine: stream %s0 records %q streams", streamPrefix, v)
	}
	return n, nil
}

// attemptTimeout bounds one attempt of retryUnavailable. A JetStream API
// request that reaches a stream whose leader is gone (killed, not yet
// replaced) is dropped: no answer, no "no responders". Bounded only by
// the caller's context, one such request waited for all of it (a
// takeover's Own, for GATEWAY_UPSTREAM_DIAL_TIMEOUT, while every call of
// that customer waited for the takeover); so an attempt without an
// answer in attemptTimeout is tried again, as Append does.
const attemptTimeout = 2 * time.Second

// retryUnavailable runs f until it succeeds, fails with something other
// than a transient cluster error, or ctx ends (then the last error). Each
// attempt is bounded by attemptTimeout; one that runs out is retried.
func retryUnavailable(ctx context.Context, f func(context.Context) error) error {
	back := 20 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := f(actx)
		timedOut := err != nil && ctx.Err() == nil && actx.Err() != nil
		cancel()
		if err == nil || !(timedOut || transient(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(back):
		}
		back = min(back*2, 500*time.Millisecond)
	}
}

// transient reports errors that a retry may cure: no responders (a stream
// or meta leader being elected), timeouts, and the clustered CAS answers
// "temporarily unavailable" (10163), "wrong last sequence" without a
// sequence (10164: another proposal for the subject is in flight) and
// "duplicate message id is in process" (10158).
func transient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case 10163, 10164, 10158, 10008 /* cluster not available */ :
			return true
		}
		if ae.Code == 503 {
			return true
		}
	}
	return false
}

// opCtx bounds ctx by OpTimeout when it has no deadline.
func (e *Engine) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.cfg.OpTimeout)
}

// NodeID is this replica's node id.
func (e *Engine) NodeID() string { return e.cfg.NodeID }

// SingleNode reports Config.SingleNode: no live subjects (Subscribe gets
// nothing); the caller feeds its readers its own appends.
func (e *Engine) SingleNode() bool { return e.cfg.SingleNode }

// Replicas is the replica count the streams and buckets were created with.
func (e *Engine) Replicas() int { return e.replicas }

// LeaseTTL is the node lease's time to live (Config.LeaseTTL, defaults
// filled in).
func (e *Engine) LeaseTTL() time.Duration { return e.cfg.LeaseTTL }

// Conn is the engine's NATS connection (for metrics and tests; do not
// close it).
func (e *Engine) Conn() *nats.Conn { return e.nc }

// State is the connection's current state.
func (e *Engine) State() State {
	switch e.nc.Status() {
	case nats.CONNECTED:
		return StateConnected
	case nats.CLOSED:
		return StateClosed
	default:
		return StateReconnecting
	}
}

// Ready reports, without a round trip, whether the engine is connected and
// this node's lease is valid: what a caller checks before it answers.
func (e *Engine) Ready() bool {
	return !e.closed.Load() && e.nc.Status() == nats.CONNECTED && e.LeaseValid()
}

// Probe makes one JetStream round trip (account info), bounded by ctx and
// OpTimeout: what /readyz asks.
func (e *Engine) Probe(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	_, err := e.js.AccountInfo(ctx)
	return err
}

// Close gives up the node lease (so that other nodes may take this node's
// sessions over at once), stops the renewal goroutine, drains the
// connection and stops the embedded server. ctx bounds the whole.
// Callers Release their sessions first. Close is idempotent.
func (e *Engine) Close(ctx context.Context) error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	if e.stop != nil {
		e.stop()
	}
	e.wg.Wait()
	e.lease.giveUp(ctx, e)
	return e.shutdownCtx(ctx)
}

func (e *Engine) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.shutdownCtx(ctx)
}

func (e *Engine) shutdownCtx(ctx context.Context) error {
	var err error
	if e.nc != nil {
		closed := make(chan struct{})
		e.nc.SetClosedHandler(func(*nats.Conn) { close(closed); e.notify(StateClosed) })
		if derr := e.nc.Drain(); derr != nil {
			e.nc.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				e.nc.Close()
				err = ctx.Err()
			}
		}
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	return err
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
