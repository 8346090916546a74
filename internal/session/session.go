package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// Session statuses (GET /v1/session).
const (
	StatusConnecting   = "connecting"
	StatusConnected    = "connected"
	StatusReconnecting = "reconnecting"
	StatusDisconnected = "disconnected" // the session has ended
)

// Reasons carried by the "disconnected" event the gateway itself emits (the
// upstream's own customer_disconnected push is passed through as is).
const (
	// DisconnectReasonAuthentication: re-login after a drop was refused.
	DisconnectReasonAuthentication = "authentication"
	// DisconnectReasonLoggedOut: the customer ended the session (Disconnect).
	DisconnectReasonLoggedOut = "logged_out"
)

// Session is one customer's upstream connection, its event log and its
// subscribers. All exported methods are safe for concurrent use.
type Session struct {
	pool  *Pool       // immutable
	cfg   *Config     // immutable (the pool's)
	token string      // immutable; only in memory, never logged
	log   *zap.Logger // immutable; carries the token's short hash

	// tokenSum is the SHA-256 of token (immutable): what history cursors
	// are bound to, so that they never carry the token.
	tokenSum [32]byte

	ctx     context.Context // the session's lifetime; canceled by stop
	cancel  context.CancelFunc
	done    chan struct{} // closed by end
	endOnce sync.Once

	entry      *entry // set by Pool.create under pool.mu before start; read under pool.mu
	customerID string // guarded by mu: set by Pool.open before the session is published, then only by adoptCustomerID (once, while "")

	// own: cluster mode: the session's ownership, set by Pool.create under
	// pool.mu before the session is published; nil without an engine.
	own *ownership
	// release gives the ownership back (Pool.releaseLocked): set by stop
	// under pool.mu and s.mu, read by end under s.mu and run once the
	// socket is closed.
	release func()
	// elog appends the session's events to the engine's log: set with own,
	// immutable; its run ends once end has closed it.
	elog *logAppender
	// mirror: cluster mode: set when this Session is the container of a
	// customer's streams on this replica (no client, not in the pool's
	// map); immutable.
	mirror *mirror

	inflight   atomic.Int64 // Do calls running
	lastActive atomic.Int64 // UnixNano of the last Acquire, call end or unsubscribe

	// tracker is used by whoever handles stream items: Pool.open before
	// start, the attached client's read loop (through in), restore while no
	// read loop is let through.
	tracker *chatTracker
	in      *inbox // the newest client's; set by dial (called by Pool.open, then by one restore goroutine at a time)

	// wg counts helper goroutines (sneak-peek sends). Add only under mu
	// while !closing; end waits for it after closing is set.
	wg sync.WaitGroup

	mu       sync.Mutex               // guards the fields below; taken after Pool.mu
	client   *chatio.Client           // the live client; nil while down or closed
	owned    *chatio.Client           // the attached client, closed when the session ends (closeOwned)
	idle     *time.Timer              // idle eviction (onIdle); set by start
	gen      uint64                   // connection generation: +1 per installed client
	ready    chan struct{}            // closed when client becomes non-nil; replaced when it is cleared
	status   string                   // Status*
	closing  bool                     // set once by stop; no event, subscriber or helper after it
	endErr   error                    // why the session ended (set with closing)
	seq      uint64                   // id of the last event appended to the log
	ring     []logEntry               // the last ringLen events, up to seq, circular (see keepLocked)
	ringHead int                      // index of the oldest entry
	ringLen  int                      // entries in use
	ringSize int64                    // bytes of the entries' Data
	subs     map[*Subscriber]struct{} // live subscribers
	sneak    map[string]*sneakState   // chat id → throttle state (bounded)
	snap     *summarySnap             // the latest summary, reusable while seq has not moved
}

// summarySnap is a get_chats_summary answer, encoded for a snapshot, that
// is known to be current as of sequence number seq: a subscriber registered
// while s.seq == seq may use it instead of fetching a fresh one (every
// upstream change after it gets a later sequence number).
type summarySnap struct {
	seq       uint64
	at        time.Time
	users     []Message // user_data
	connected []byte    // {chatsSummary, totalChats}
}

// summarySnapMaxAge bounds how long a summary is reused.
const summarySnapMaxAge = 30 * time.Second

// logEntry is one event of the replay ring.
type logEntry struct {
	seq uint64
	msg Message
}

// Message is one event as the stream carries it: ID is the decimal sequence
// number ("" → no id line), Name the SDK event name, Data its JSON.
type Message struct {
	ID   string
	Name string
	Data []byte
	// Origin is the client instance whose call's result this event
	// reports to the other tabs (0: every stream gets it); a stream opened
	// by that instance leaves it out (Origin's doc).
	Origin Origin
}

func newSession(p *Pool, token string) *Session {
	ctx, cancel := context.WithCancel(p.ctx)
	s := &Session{
		pool:    p,
		cfg:     &p.cfg,
		token:   token,
		log:     p.log.WithLazy(zap.String("session", tokenKey(token))),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		tracker: newChatTracker(),
		ready:   make(chan struct{}),
		status:  StatusConnecting,
		// A time-derived base: ids of an earlier incarnation of this
		// session are older than anything this one has buffered.
		seq: uint64(time.Now().UnixMicro()),
		// ring grows with the log up to ReplayBuffer entries.
		subs:  make(map[*Subscriber]struct{}),
		sneak: make(map[string]*sneakState),
	}
	s.tokenSum = sha256.Sum256([]byte(token))
	s.lastActive.Store(time.Now().UnixNano())
	return s
}

// MaxCustomerIDLen bounds a customer id a caller may hand to AcquireAs,
// in bytes.
const MaxCustomerIDLen = 128

// CustomerID is the customer's id (see Pool.AcquireAs for where it comes
// from); "" while nobody has told it.
func (s *Session) CustomerID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.customerID
}

// adoptCustomerID makes id the session's customer id when it has none
// yet, and tells every subscriber with a customer_id event (their
// snapshot said ""). An id once known is kept.
func (s *Session) adoptCustomerID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.customerID != "" || s.closing {
		return
	}
	data, err := encodeJSON(id)
	if err != nil {
		return
	}
	current := s.snap != nil && s.snap.seq == s.seq
	s.customerID = id
	s.appendLocked(encoded{name: sdk.EventCustomerID, data: data}, false)
	if current {
		s.snap.seq = s.seq // the chats have not changed: still reusable
	}
}

// Token is the access token the session logged in with: the session's own
// string, for a caller that must name the token without holding a copy of
// it (a stream ticket). Never log it.
func (s *Session) Token() string { return s.token }

// Status is "connecting", "connected", "reconnecting", or "disconnected"
// once the session has ended.
func (s *Session) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return StatusDisconnected
	}
	return s.status
}

// Done is closed when the session has ended and its socket is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it runs).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endErr
}

// touch marks activity; false when the session is ending.
func (s *Session) touch() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.lastActive.Store(time.Now().UnixNano())
	return true
}

// dial opens a client within a pool-wide dial slot.
func (s *Session) dial(ctx context.Context) (*chatio.Client, chatio.LoginResult, error) {
	p := s.pool
	if err := p.acquireDialSlot(ctx); err != nil {
		return nil, chatio.LoginResult{}, err
	}
	defer p.releaseDialSlot()
	cfg := s.cfg.Upstream
	cfg.Token = s.token
	cfg.Logger = s.log
	cfg.Poller = p.readPoller()
	next := cfg.OnIgnored
	cfg.OnIgnored = func(reason string) {
		p.m.framesIgnored.WithLabelValues(reason).Inc()
		if next != nil {
			next(reason)
		}
	}
	in := &inbox{s: s, limit: inboxLimit}
	cfg.OnItem = in.take
	cfg.OnDone = in.clientDone
	c, login, err := s.cfg.Dial(ctx, cfg)
	if err != nil {
		p.m.dialFailures.WithLabelValues(dialReason(err)).Inc()
		return nil, login, err
	}
	in.c = c
	s.in = in
	p.m.connects.Inc()
	return c, login, nil
}

// inboxLimit is how many stream items an inbox holds until it is attached.
const inboxLimit = 1024

// inbox takes one client's stream items on the client's read loop (no
// hand-off to another goroutine) and hears of its end (OnDone: no watcher
// goroutine either). Until attached it holds the items, at most limit:
// while the first summary is read, or a reconnect restores the session,
// no push may overtake what that publishes. Once attached, each item is
// handled as it arrives, still under mu, so the held ones stay first.
type inbox struct {
	s     *Session
	limit int
	c     *chatio.Client // set by dial once Dial returns

	mu       sync.Mutex
	attached bool                // guarded by mu
	ended    bool                // guarded by mu: the client's read loop is over
	gen      uint64              // guarded by mu: the generation the client was installed as
	held     []chatio.StreamItem // guarded by mu; oldest first
}

// take is the client's OnItem: false (the client ends, the session
// reconnects) when limit items are already held.
func (b *inbox) take(it chatio.StreamItem) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.attached {
		if len(b.held) >= b.limit {
			return false
		}
		b.held = append(b.held, it)
		return true
	}
	b.s.handleItem(it)
	return true
}

// attach handles what was held and lets the rest through as it comes. It
// reports false when the client has ended already (its end is then the
// caller's to handle).
func (b *inbox) attach(gen uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, it := range b.held {
		b.s.handleItem(it)
		b.held[i] = chatio.StreamItem{}
	}
	b.held = nil
	b.attached = true
	b.gen = gen
	return !b.ended
}

// clientDone is the client's OnDone, on its read loop's last breath.
func (b *inbox) clientDone() {
	b.mu.Lock()
	b.ended = true
	attached := b.attached
	b.mu.Unlock()
	if attached {
		b.s.clientEnded(b)
	}
}

// installClient makes c the live client (a new generation).
func (s *Session) installClient(c *chatio.Client) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client = c
	s.gen++
	s.status = StatusConnected
	close(s.ready)
	return s.gen
}

// clearClient forgets the live client if it is still generation gen
// (compare-then-clear).
func (s *Session) clearClient(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.client == nil {
		return
	}
	s.client = nil
	if !s.closing {
		s.status = StatusReconnecting
	}
	s.ready = make(chan struct{})
}

// Do runs fn with the live upstream client. At most MaxInFlight calls run
// per session (ErrOverloaded beyond). While the upstream is down it waits up
// to ReconnectWait (bounded by ctx) for a reconnect, then fails with
// chatio.ErrConnectionLost. A call keeps the session from idling out.
func (s *Session) Do(ctx context.Context, fn func(ctx context.Context, c *chatio.Client) error) error {
	if s.inflight.Add(1) > int64(s.cfg.MaxInFlight) {
		s.inflight.Add(-1)
		return ErrOverloaded
	}
	defer func() {
		s.lastActive.Store(time.Now().UnixNano())
		s.inflight.Add(-1)
	}()
	c, err := s.liveClient(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, c)
}

// liveClient returns the live client, waiting up to ReconnectWait for one.
func (s *Session) liveClient(ctx context.Context) (*chatio.Client, error) {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		closing, c, ready := s.closing, s.client, s.ready
		s.mu.Unlock()
		if closing {
			return nil, ErrSessionClosed
		}
		if c != nil {
			return c, nil
		}
		if timeout == nil {
			t := time.NewTimer(s.cfg.ReconnectWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ready:
		case <-timeout:
			return nil, chatio.ErrConnectionLost
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, ErrSessionClosed
		}
	}
}

// Disconnect ends the session for good (DELETE /v1/session): every
// subscriber receives a final "disconnected" event ({"reason":"logged_out"})
// and its C closes with ErrSessionClosed; the upstream socket is closed with
// a normal close frame; the session leaves the pool. Disconnect waits (at
// most a few seconds) for the socket to be closed. Idempotent.
func (s *Session) Disconnect() {
	final := reasonMessage(DisconnectReasonLoggedOut)
	s.stop(ErrSessionClosed, &final, nil)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

// reasonMessage is a gateway-made "disconnected" event.
func reasonMessage(reason string) Message {
	data, _ := json.Marshal(map[string]string{"reason": reason})
	return Message{Name: sdk.EventDisconnected, Data: data}
}

// stop ends the session once: under the pool's and the session's locks it
// checks cond (nil → true), marks the session closing, appends final (if
// any) to the log, ends every subscriber with err, stops the sneak-peek
// timers and takes the session out of the pool; then it cancels the
// session's context, on which closeOwned closes the socket. Reports whether this
// call ended the session.
func (s *Session) stop(err error, final *Message, cond func() bool) bool {
	p := s.pool
	p.mu.Lock()
	s.mu.Lock()
	if s.closing || (cond != nil && !cond()) {
		s.mu.Unlock()
		p.mu.Unlock()
		return false
	}
	s.closing = true
	// closeOwned's count, taken with closing set: any end() of the session
	// (which gives back the session's own count) sees closing after this,
	// so Pool.wg never reaches zero in between.
	p.wg.Add(1)
	s.endErr = err
	s.client = nil
	cut := 0
	if final != nil {
		cut = s.appendLocked(encoded{name: final.Name, data: final.Data}, true)
	}
	for sub := range s.subs {
		sub.endLocked(err)
	}
	s.releaseRingLocked() // no event and no resume after closing
	for chat, st := range s.sneak {
		if st.timer != nil {
			st.timer.Stop()
		}
		delete(s.sneak, chat)
	}
	p.removeLocked(s)
	var unfed *mirror
	if s.own != nil {
		// No forwarded call reaches this session from now on; the next
		// session of the token here Owns only once end has released.
		_ = s.own.sub.Drain()
		s.release = p.releaseLocked(s.token, s.own.sid)
		// The customer's streams here now follow whoever owns it next
		// (the appender still feeds them what it has queued).
		unfed = p.unfeedLocked(s.own.sid, s.elog)
	}
	s.mu.Unlock()
	p.mu.Unlock()
	if unfed != nil {
		p.liveSub(unfed)
	}
	s.cancel()
	// The client is closed off the caller's goroutine (Close may wait a
	// second for the peer's close frame); its end then ends the session.
	go func() {
		defer p.wg.Done()
		s.closeOwned()
	}()
	if cut > 0 {
		s.logSlowCut(cut)
	}
	s.log.Info("session ended", zap.Error(err))
	return true
}

// ---- the event log ----

type encoded struct {
	name   string
	data   []byte
	origin Origin
}

// encodeJSON marshals v the way JSON.stringify would print it (no HTML
// escaping), without a trailing newline.
func encodeJSON(v any) ([]byte, error) {
	// The data of a push from a checked frame (sdk.PushEvents) holds only
	// valid, compact values: written in one pass, nothing validated again.
	if c, ok := v.(jsonobj.Checked); ok {
		if b, err := c.AppendJSON(make([]byte, 0, 64*len(c)+2)); err == nil {
			return b, nil
		}
		// An error: let the encoder report it as it always has.
	}
	// Most other events are a jsonobj.Object: what the encoder would do with it
	// (MarshalJSON, then check and compact the output) without reflection
	// or a second copy when the output is compact already.
	if o, ok := v.(jsonobj.Object); ok {
		if b, err := o.MarshalJSON(); err == nil && json.Valid(b) {
			if !hasInsignificantSpace(b) {
				return b, nil
			}
			var buf bytes.Buffer
			if json.Compact(&buf, b) == nil {
				return buf.Bytes(), nil
			}
		}
		// An error: let the encoder report it as it always has.
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// hasInsignificantSpace reports whether valid JSON b has whitespace
// outside its strings (which json.Compact would remove).
func hasInsignificantSpace(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}

// publish encodes each event once and appends it to the log, fanning it out
// to every subscriber. Safe from any goroutine; events of one call stay
// together and in order. It returns the sequence number of the last one
// (0 when nothing was appended).
func (s *Session) publish(evs ...sdk.Event) uint64 {
	return s.publishWithSummary(nil, evs...)
}

// publishWithSummary is publish; with a non-nil snap it also makes snap the
// session's summary as of the last event, in the same critical section.
func (s *Session) publishWithSummary(snap *summarySnap, evs ...sdk.Event) uint64 {
	return s.publishFrom(snap, evs, nil, 0)
}

// publishFrom is publishWithSummary of evs then others, the events of
// others tagged with origin (the instance whose call's result they
// report to the other tabs), all in one critical section.
func (s *Session) publishFrom(snap *summarySnap, evs, others []sdk.Event, origin Origin) uint64 {
	if len(evs)+len(others) == 0 {
		return 0
	}
	out := make([]encoded, 0, len(evs)+len(others))
	for i := range len(evs) + len(others) {
		e, o := evs, Origin(0)
		if i >= len(evs) {
			e, o, i = others, origin, i-len(evs)
		}
		data, err := encodeJSON(e[i].Data)
		if err != nil {
			s.pool.m.dropped.WithLabelValues(reasonEncode).Inc()
			s.log.Error("event not encodable", zap.String("event", e[i].Name), zap.Error(err))
			continue
		}
		out = append(out, encoded{e[i].Name, data, o})
	}
	seq, cut := s.appendAll(out, snap)
	if cut > 0 {
		s.logSlowCut(cut)
	}
	return seq
}

// appendAll appends out to the log under s.mu, and makes snap (if not nil)
// the summary as of the last one. It returns the last sequence number (0
// when the session is closing: nothing is appended) and how many
// subscribers were cut off as too slow.
func (s *Session) appendAll(out []encoded, snap *summarySnap) (seq uint64, cut int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.pool.m.dropped.WithLabelValues(reasonClosed).Add(float64(len(out)))
		return 0, 0
	}
	for _, e := range out {
		cut += s.appendLocked(e, false)
	}
	if snap != nil {
		snap.seq = s.seq
		s.snap = snap
	}
	return s.seq, cut
}

// logSlowCut logs, with no lock held, that n subscribers were cut off.
//
//go:noinline
func (s *Session) logSlowCut(n int) {
	s.log.Info("subscriber cut off: too slow", zap.Int("subscribers", n),
		zap.Int("buffer", s.cfg.SubscriberBuffer), zap.Int("buffer_bytes", s.cfg.SubscriberBufferBytes))
}

// newSummarySnap encodes a parsed summary for snapshots.
func newSummarySnap(cs sdk.ChatsSummary, users []sdk.Event) (*summarySnap, error) {
	snap := &summarySnap{at: time.Now(), users: make([]Message, 0, len(users))}
	for _, u := range users {
		data, err := encodeJSON(u.Data)
		if err != nil {
			return nil, err
		}
		snap.users = append(snap.users, Message{Name: u.Name, Data: data})
	}
	data, err := encodeJSON(cs)
	if err != nil {
		return nil, err
	}
	snap.connected = data
	return snap, nil
}

// keepSummary remembers snap as current at seq, unless the log has moved
// on since.
func (s *Session) keepSummary(snap *summarySnap, seq uint64) {
	if snap == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq == seq && !s.closing {
		snap.seq = seq
		s.snap = snap
	}
}

// appendLocked assigns the next sequence number, keeps the event in the
// ring and offers it to every subscriber without blocking: a subscriber
// whose queue is full (SubscriberBuffer events or SubscriberBufferBytes) is
// cut off with ErrSlowSubscriber. final may use the one slot each queue
// keeps for the session's last message. It returns how many subscribers
// were cut off. s.mu held.
func (s *Session) appendLocked(e encoded, final bool) (cut int) {
	s.seq++
	if s.elog != nil {
		s.elog.push(s.seq, e)
	}
	m := Message{ID: strconv.FormatUint(s.seq, 10), Name: e.name, Data: e.data, Origin: e.origin}
	if s.elog == nil { // in cluster mode streams resume from the engine's log
		s.keepLocked(m)
	}
	s.pool.m.published.Inc()
	delivered := 0
	for sub := range s.subs {
		if sub.offerLocked(m, final) {
			delivered++
			continue
		}
		s.pool.m.dropped.WithLabelValues(reasonSlow).Inc()
		s.pool.m.subscribersCut.WithLabelValues(reasonSlow).Inc()
		sub.endLocked(ErrSlowSubscriber)
		cut++
	}
	s.pool.m.delivered.Add(float64(delivered))
	return cut
}

// ---- the replay ring ----
//
// The ring holds the last ringLen events of the log, up to s.seq, oldest
// at ringHead; entry i is ring[(ringHead+i)%len(ring)]. Events leave it
// oldest first only, so a Last-Event-ID is either within it (resume
// replays exactly the later events) or older (a fresh snapshot): never a
// silent gap. An event the ring cannot keep empties it. Its slice grows
// with the log up to ReplayBuffer entries.

// replayBudget is the pool's account of what the replay rings keep beyond
// their shares (Config.ReplayBudgetBytes): one atomic counter, no lock, so
// that a session never waits for, or trims, another.
type replayBudget struct {
	share  int64        // immutable: the bytes each ring may keep whatever the others hold
	shared int64        // immutable: the bytes all rings together may keep beyond their shares
	excess atomic.Int64 // the bytes the rings keep beyond their shares
}

// keepLocked keeps m, the event numbered s.seq, in the ring. First the
// oldest events are dropped until ReplayBuffer and ReplayBufferBytes hold
// with m (an m larger than ReplayBufferBytes empties the ring and is not
// kept). Then, when the ring's bytes beyond its share would overdraw the
// pool's budget, the ring drops more of its own oldest events (m too, if m
// alone is beyond the share) until the budget holds or the ring is back
// within its share. s.mu held.
func (s *Session) keepLocked(m Message) {
	cfg := s.cfg
	size := int64(len(m.Data))
	before := s.ringSize
	if size > int64(cfg.ReplayBufferBytes) {
		for s.ringLen > 0 {
			s.dropOldestLocked()
		}
	} else {
		for s.ringLen > 0 && (s.ringLen >= cfg.ReplayBuffer || s.ringSize+size > int64(cfg.ReplayBufferBytes)) {
			s.dropOldestLocked()
		}
		if s.ringLen == len(s.ring) {
			s.growRingLocked()
		}
		s.ring[(s.ringHead+s.ringLen)%len(s.ring)] = logEntry{s.seq, m}
		s.ringLen++
		s.ringSize += size
	}
	b := &s.pool.budget
	was, now := max(0, before-b.share), max(0, s.ringSize-b.share)
	switch {
	case now > was:
		if excess := b.excess.Add(now - was); excess > b.shared {
			kept := now
			for s.ringLen > 0 && excess > b.shared && s.ringSize > b.share {
				s.dropOldestLocked()
				left := max(0, s.ringSize-b.share)
				excess -= kept - left
				kept = left
			}
			if kept != now {
				b.excess.Add(kept - now)
			}
		}
	case now < was:
		b.excess.Add(now - was)
	}
	if d := s.ringSize - before; d != 0 {
		s.pool.m.replayBytes.Add(float64(d))
	}
}

// dropOldestLocked lets go of the ring's oldest event. s.mu held, ringLen > 0.
func (s *Session) dropOldestLocked() {
	e := &s.ring[s.ringHead]
	s.ringSize -= int64(len(e.msg.Data))
	*e = logEntry{}
	s.ringHead++
	if s.ringHead == len(s.ring) {
		s.ringHead = 0
	}
	s.ringLen--
}

// growRingLocked gives the ring more slots; called when every slot is in
// use and fewer than ReplayBuffer are. s.mu held.
func (s *Session) growRingLocked() {
	grown := make([]logEntry, min(s.cfg.ReplayBuffer, max(8, 2*len(s.ring))))
	n := copy(grown, s.ring[s.ringHead:])
	copy(grown[n:], s.ring[:s.ringHead])
	s.ring, s.ringHead = grown, 0
}

// releaseRingLocked lets go of the whole ring and gives its bytes back to
// the pool's budget; the session is closing. s.mu held.
func (s *Session) releaseRingLocked() {
	b := &s.pool.budget
	if ex := s.ringSize - b.share; ex > 0 {
		b.excess.Add(-ex)
	}
	if s.ringSize != 0 {
		s.pool.m.replayBytes.Sub(float64(s.ringSize))
	}
	s.ring, s.ringHead, s.ringLen, s.ringSize = nil, 0, 0, 0
}

// ---- the session's life, without a goroutine of its own ----
//
// A connected session runs no goroutine: pushes are handled on the
// client's read loop (inbox), idle eviction runs on a timer (onIdle), the
// end of the session closes its client on a goroutine started by stop
// (closeOwned), and the end of a client starts a recovery goroutine that
// lives only until the session is connected again or ends. Every one of
// these holds a count of Pool.wg while it runs; the session holds one
// from Pool.create until end.

// start makes c, dialed and summarised by Pool.open, the session's
// connection and arms idle eviction. Called once, by Pool.create, with a
// count of Pool.wg already taken for the session.
func (s *Session) start(c *chatio.Client) {
	s.mu.Lock()
	s.idle = time.AfterFunc(s.cfg.IdleTimeout, s.onIdle)
	s.mu.Unlock()
	s.attach(c, s.in)
}

// attach makes c (live already: installClient) the client the session
// holds open, and lets its pushes through.
func (s *Session) attach(c *chatio.Client, in *inbox) {
	s.mu.Lock()
	if s.closing || s.ctx.Err() != nil { // closeOwned has run, or is about to with owned unset
		s.mu.Unlock()
		_ = c.Close()
		s.end()
		return
	}
	s.owned = c
	gen := s.gen
	s.mu.Unlock()
	if !in.attach(gen) {
		s.clientEnded(in) // it ended before it was attached: nobody else saw it
	}
}

// closeOwned closes the session's client once the session has ended
// (stop); the client's end then ends the session (clientEnded). A client
// attached after stop is closed by attach.
func (s *Session) closeOwned() {
	s.mu.Lock()
	c := s.owned
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// clientEnded is told, on the read loop's way out, that the attached
// client of in is gone: the session ends when it was ending anyway, else
// it recovers on a goroutine of its own.
func (s *Session) clientEnded(in *inbox) {
	if s.ctx.Err() != nil {
		s.end()
		return
	}
	s.pool.wg.Add(1)
	go s.restoreAfterDrop(in)
}

// restoreAfterDrop reconnects after the client of in dropped, then attaches the
// new client or ends the session.
func (s *Session) restoreAfterDrop(in *inbox) {
	defer s.pool.wg.Done()
	in.mu.Lock()
	gen := in.gen
	in.mu.Unlock()
	s.clearClient(gen)
	c := s.reconnect(in.c)
	if c == nil {
		s.end()
		return
	}
	s.attach(c, s.in)
}

// end finishes the session once: it leaves the pool (if stop has not
// taken it out already), its helpers are waited for, Done closes.
func (s *Session) end() {
	s.endOnce.Do(func() {
		s.mu.Lock()
		if s.idle != nil {
			s.idle.Stop()
		}
		s.mu.Unlock()
		s.stop(ErrSessionClosed, nil, nil) // no-op when someone else ended it
		s.wg.Wait()
		s.mu.Lock()
		release := s.release
		s.mu.Unlock()
		if release != nil {
			// The socket is closed: the ownership can go (an engine round
			// trip: not on the read loop that may be running end).
			s.pool.wg.Add(1) // the session's own count is still held
			go func() {
				defer s.pool.wg.Done()
				if s.elog != nil {
					// The events logged up to the end (the final one
					// included) go to the log while this replica still
					// owns the customer.
					s.elog.close()
					<-s.elog.done
				}
				release()
			}()
		}
		s.pool.m.sessions.Dec()
		close(s.done)
		s.pool.wg.Done()
	})
}

// onIdle runs on the idle timer: it ends the session when it has had no
// subscriber and no call for IdleTimeout; else it re-arms the timer.
func (s *Session) onIdle() {
	var wait time.Duration
	ended := s.stop(ErrSessionClosed, nil, func() bool {
		if len(s.subs) > 0 || s.inflight.Load() > 0 {
			wait = s.cfg.IdleTimeout
			return false
		}
		since := time.Since(time.Unix(0, s.lastActive.Load()))
		if since < s.cfg.IdleTimeout {
			wait = s.cfg.IdleTimeout - since
			return false
		}
		return true
	})
	if ended {
		s.log.Info("session idle: evicted")
		return
	}
	s.mu.Lock()
	if wait > 0 && !s.closing {
		s.idle.Reset(wait)
	}
	s.mu.Unlock()
}

// handleItem turns one stream item into SDK events and publishes them. A
// frame the conversion cannot take is counted and skipped; not even a
// panic in it ends the session (or the process).
func (s *Session) handleItem(it chatio.StreamItem) {
	defer func() {
		if v := recover(); v != nil {
			s.conversionPanicked(&it, v)
		}
	}()
	w := parseWireDelivery(it.Frame)
	if w != nil && s.tracker.duplicate(w) {
		s.pool.m.dropped.WithLabelValues(reasonDuplicate).Inc()
		return
	}
	evs, others, err := itemEvents(&it)
	if err != nil {
		s.notConvertible(&it, err)
	}
	if w != nil {
		s.tracker.delivered(w)
	}
	s.publishFrom(nil, evs, others, Origin(it.Origin))
}

// itemEvents converts a push, or the result of a call, to the SDK's
// events: evs, what every stream gets (the SDK emits them for its own call
// too), and others, what the customer's other tabs see of a call's result
// (the calling instance resolves it and emits nothing for it).
func itemEvents(it *chatio.StreamItem) (evs, others []sdk.Event, err error) {
	if it.ResultOf == "" {
		evs, err = sdk.PushEvents(it.Frame)
		return evs, nil, err
	}
	evs, err = sdk.ResultFrameEvents(it.ResultOf, it.Frame)
	if err != nil {
		return evs, nil, err
	}
	others, err = sdk.ResultPushEvents(it.Frame)
	return evs, others, err
}

// The logging of handleItem's failures, in functions of their own: the
// frames of the push path stay small (handleItem runs on the upstream
// read loop's stack, chatio.Client.dispatch).

//go:noinline
func (s *Session) conversionPanicked(it *chatio.StreamItem, v any) {
	s.pool.m.dropped.WithLabelValues(reasonConvert).Inc()
	s.log.Error("upstream frame broke the conversion; skipped", zap.String("action", it.Frame.Action),
		zap.String("result_of", it.ResultOf), zap.Any("panic", v), zap.Stack("stack"))
}

//go:noinline
func (s *Session) notConvertible(it *chatio.StreamItem, err error) {
	s.pool.m.dropped.WithLabelValues(reasonConvert).Inc()
	s.log.Debug("upstream frame not convertible", zap.String("action", it.Frame.Action),
		zap.String("result_of", it.ResultOf), zap.Error(err))
}

// backoff is the sleep before reconnect attempt n: full jitter, uniform in
// [0, min(ReconnectMax, ReconnectMin·2^n)).
func (s *Session) backoff(n int) time.Duration {
	d := s.cfg.ReconnectMin
	for i := 0; i < n && d < s.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.ReconnectMax)
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// sleep waits d; false when the session ended meanwhile (evicted or
// stopped).
func (s *Session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// reconnect is called by restoreAfterDrop after old's socket dropped: it emits
// connection_lost, then redials with backoff until a new connection is
// logged in, gap-filled and announced with connection_restored. It returns
// nil when the session ends instead (stopped, evicted, re-login refused, or
// a customer_disconnected reason that forbids reconnecting).
func (s *Session) reconnect(old *chatio.Client) *chatio.Client {
	cause := old.Err()
	_ = old.Close()
	s.log.Info("upstream connection lost", zap.Error(cause))
	s.publish(sdk.Event{Name: sdk.EventConnectionLost})

	var de *chatio.DisconnectedError
	if errors.As(cause, &de) && !de.Retry {
		// The "disconnected" event came with the customer_disconnected push.
		s.stop(fmt.Errorf("%w: %w", ErrSessionClosed, cause), nil, nil)
		return nil
	}
	for attempt := 0; ; attempt++ {
		if !s.sleep(s.backoff(attempt)) {
			return nil
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
		c, _, err := s.dial(ctx)
		if err == nil {
			err = s.restore(ctx, c)
			if err != nil {
				_ = c.Close()
			}
		}
		cancel()
		if err == nil {
			s.pool.m.reconnects.Inc()
			s.log.Info("upstream connection restored", zap.Int("attempts", attempt+1))
			return c
		}
		if s.ctx.Err() != nil {
			return nil
		}
		var ae *chatio.AuthError
		if errors.As(err, &ae) {
			s.log.Info("re-login refused: session ends", zap.Error(err))
			final := reasonMessage(DisconnectReasonAuthentication)
			s.stop(fmt.Errorf("%w: %w", ErrSessionClosed, err), &final, nil)
			return nil
		}
		if errors.As(err, &de) && !de.Retry {
			s.stop(fmt.Errorf("%w: %w", ErrSessionClosed, err), nil, nil)
			return nil
		}
		s.log.Info("reconnect failed", zap.Int("attempt", attempt+1), zap.Error(err))
	}
}

// restore runs on a freshly logged-in client and makes it the live one. It
// asks for the summary as the SDK does after a reconnect, reads
// back what each known chat missed while the socket was down (emitted as
// new_event), then emits what the SDK emits for the summary: user_data…,
// connection_restored.
func (s *Session) restore(ctx context.Context, c *chatio.Client) error {
	payload, err := c.GetLatestChatsSummary(ctx)
	if err != nil {
		return err
	}
	if err := s.fillGaps(ctx, c, payload); err != nil {
		return err
	}
	cs, users, err := sdk.ParseChatsSummary(payload)
	if err != nil {
		s.log.Warn("get_chats_summary answer not parsable", zap.Error(err))
		cs = sdk.ChatsSummary{ChatsSummary: []jsonobj.Object{}}
		users = nil
	}
	s.tracker.seedFromSummary(payload)
	snap, err := newSummarySnap(cs, users)
	if err != nil {
		snap = nil
	}
	// Live before connection_restored is out: a subscriber that sees it
	// finds the session connected. Results of calls made on c from now on
	// reach the log through c's stream, after connection_restored.
	s.installClient(c)
	s.publishWithSummary(snap, append(users, sdk.Event{Name: sdk.EventConnectionRestored, Data: cs})...)
	return nil
}
