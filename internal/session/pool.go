package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// Pool holds one Session per customer token (the license is the pool's).
type Pool struct {
	cfg     Config          // immutable after NewPool
	log     *zap.Logger     // immutable
	m       *metrics        // immutable; the collectors are goroutine-safe
	dialSem chan struct{}   // pool-wide dial slots (MaxConcurrentDials)
	budget  replayBudget    // the replay rings' bytes together (ReplayBudgetBytes)
	ctx     context.Context // the pool's lifetime; parent of every session's
	cancel  context.CancelFunc

	// wg counts creation goroutines, each session from creation to its end,
	// and what a session starts (a recovery, the goroutine closing its
	// client). A creation or a session is added only under mu while
	// !draining; the rest is added while its session's count is held. So
	// Shutdown's Wait never races an Add at zero.
	wg sync.WaitGroup

	callLimit atomic.Pointer[func(token string) error] // SetCallLimit's (limit.go)

	pollOnce sync.Once
	poller   *netpoll.Poller // the upstream sockets' read loops: set by pollOnce at the first dial, closed by Shutdown

	mu       sync.Mutex        // guards the fields below; taken before any Session.mu
	sessions map[string]*entry // token → entry, including those being created
	draining bool              // set once by Shutdown
	// releasing: cluster mode: token → closed once the ownership of the
	// token's previous session here is given back (releaseLocked).
	releasing map[string]chan struct{}
	// mirrors: cluster mode: the customers' streams on this replica.
	mirrors map[engine.SID]*mirror
	// lapses: cluster mode: owner → the watch for its lease's lapse
	// (lapse.go); at most maxLapseWatches.
	lapses map[string]*lapseWatch
}

// entry is one slot of the pool. ready is closed by the creation goroutine
// once s or err is set; neither changes afterwards.
type entry struct {
	ready chan struct{}
	s     *Session
	err   error
}

// NewPool makes a pool. A nil log logs nothing; a nil reg registers no
// metrics. The config is taken with defaults filled in (see Config).
func NewPool(cfg Config, log *zap.Logger, reg prometheus.Registerer) *Pool {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:      cfg,
		log:      log,
		m:        newPoolMetrics(reg, cfg.Engine != nil),
		dialSem:  make(chan struct{}, cfg.MaxConcurrentDials),
		budget:   replayBudget{share: cfg.replayShare(), shared: cfg.ReplayBudgetBytes - cfg.replayShare()*int64(cfg.MaxSessions)},
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]*entry),
	}
	if cfg.Engine != nil {
		p.releasing = make(map[string]chan struct{})
		p.mirrors = make(map[engine.SID]*mirror)
		p.lapses = make(map[string]*lapseWatch)
		p.wg.Add(2)
		go p.watchLease()
		go p.keepMirrors()
	}
	return p
}

// tokenKey is what logs may carry instead of a token: a short sha256 prefix.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// Acquire returns the session of token, creating it when there is none:
// dial, login, get_chats_summary. Concurrent first calls for one token share
// a single creation; the creation goes on when the caller's ctx ends (others
// may be waiting), bounded by DialTimeout. Errors: ErrDraining,
// ErrOverloaded, *chatio.AuthError (bad token), dial errors, ctx.Err().
func (p *Pool) Acquire(ctx context.Context, token string) (*Session, error) {
	return p.AcquireAs(ctx, token, "")
}

// AcquireAs is Acquire for a caller that was told the customer's id
// (X-Customer-Id: the entityId that came with the token). The id is only
// ever echoed back (CustomerID, the customer_id event), never trusted for
// anything else; the caller checks its form (MaxCustomerIDLen, no control
// characters). Which id a session has, in order of trust:
//
//   - the id in the upstream's login answer;
//   - customerID of the call that created the session;
//   - the customer-type user of the first get_chats_summary answer;
//   - else, the first non-empty customerID of a later call: a session
//     that has no id at all adopts it (and emits customer_id with it).
//
// An id, once known, never changes for the session's life; "" changes
// nothing.
func (p *Pool) AcquireAs(ctx context.Context, token, customerID string) (*Session, error) {
	if token == "" {
		return nil, &chatio.AuthError{Message: "empty token"}
	}
	for {
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return nil, ErrDraining
		}
		e, ok := p.sessions[token]
		if !ok {
			if len(p.sessions) >= p.cfg.MaxSessions {
				p.mu.Unlock()
				return nil, ErrOverloaded
			}
			e = &entry{ready: make(chan struct{})}
			p.sessions[token] = e
			p.wg.Add(1)
			go p.create(token, customerID, e)
		}
		p.mu.Unlock()

		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		if e.s.touch() {
			if customerID != "" {
				e.s.adoptCustomerID(customerID)
			}
			return e.s, nil
		}
		// The session is ending: stop took it out of the map in the same
		// critical section that marked it closing, so the next round
		// creates a fresh one.
	}
}

// Lookup returns the session of token when there is one, waiting (bounded
// by ctx) for a creation in progress; nil when there is none or its
// creation failed. It never dials: DELETE /v1/session for a token without
// a session costs no upstream connection.
func (p *Pool) Lookup(ctx context.Context, token string) (*Session, error) {
	p.mu.Lock()
	e, ok := p.sessions[token]
	p.mu.Unlock()
	if !ok {
		return nil, nil
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		return nil, nil
	}
	return e.s, nil
}

// create runs in its own goroutine (owned by the pool): it dials, logs in,
// fetches the first summary and starts the session, or records the error
// and frees the slot.
func (p *Pool) create(token, customerID string, e *entry) {
	defer p.wg.Done()
	var (
		own *ownership
		s   *Session
		c   *chatio.Client
		err error
	)
	if p.cfg.Engine != nil {
		own, err = p.own(token, e)
	}
	if err == nil {
		s, c, err = p.open(token, customerID, own)
	}
	p.mu.Lock()
	if err == nil && p.draining {
		err = ErrDraining
	}
	if err == nil && own != nil && own.fenced() {
		err = fmt.Errorf("%w: the lease was lost while the session opened", ErrEngine)
	}
	if err != nil {
		if s != nil {
			s.cancel()
		}
		var release func()
		if own != nil {
			_ = own.sub.Drain()
			release = p.releaseLocked(token, own.sid)
		}
		if p.sessions[token] == e {
			delete(p.sessions, token)
		}
		e.err = err
		close(e.ready)
		p.mu.Unlock()
		if c != nil {
			_ = c.Close()
		}
		if release != nil {
			release() // the socket is closed: the ownership can go
		}
		return
	}
	e.s = s
	s.entry = e
	s.own = own
	p.m.sessions.Inc()
	p.wg.Add(1) // the session's, until its end
	if s.elog != nil {
		p.feedLocked(own.sid, s.elog) // before start: the mirror gets every event
		s.elog.start()                // what open logged goes to the engine now
	}
	close(e.ready)
	p.mu.Unlock()
	s.start(c) // not under p.mu: a session that ends at once takes it
}

// open builds a session and its first connection. customerID is the id
// the creating call was told (see AcquireAs).
func (p *Pool) open(token, customerID string, own *ownership) (*Session, *chatio.Client, error) {
	s := newSession(p, token)
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	prior := false
	if own != nil {
		// Cluster mode: the session's events go to the customer's log from
		// the first; what earlier owners logged tells what to read back
		// (nothing for the customer's first owner: own.eo.Empty).
		s.elog = newLogAppender(s, p.cfg.Engine, own.eo, s.seq) // not published yet: no lock needed
		if !own.eo.Empty {
			var err error
			if prior, err = s.priorLog(ctx, p.cfg.Engine, own.sid); err != nil {
				s.cancel()
				return nil, nil, fmt.Errorf("%w: reading the log: %w", ErrEngine, err)
			}
		}
	}
	c, login, err := s.dial(ctx)
	if err != nil {
		s.cancel()
		return nil, nil, err
	}
	payload, err := c.GetLatestChatsSummary(ctx) // no payload, as the SDK sends it
	if err != nil {
		s.cancel()
		p.m.dialFailures.WithLabelValues(dialReason(err)).Inc()
		return nil, c, fmt.Errorf("session: first get_chats_summary: %w", err)
	}
	if prior {
		// Cluster mode, the log holds an earlier session's events (another
		// replica's, which is gone, or this one's, which ended): to the
		// streams this is a dropped connection. What chat.io pushed
		// meanwhile is read back, as after a reconnect (restore).
		s.publish(sdk.Event{Name: sdk.EventConnectionLost})
		if err := s.fillGaps(ctx, c, payload); err != nil {
			s.cancel()
			return nil, c, fmt.Errorf("session: gap fill after a takeover: %w", err)
		}
	}
	// The SDK emits user_data and connected here. No subscriber exists yet
	// and each subscriber gets its own snapshot, so nothing is logged; the
	// summary is kept for the first subscriber's snapshot.
	s.tracker.seedFromSummary(payload)
	if cs, users, err := sdk.ParseChatsSummary(payload); err == nil {
		if snap, err := newSummarySnap(cs, users); err == nil {
			snap.seq = s.seq
			s.snap = snap
			if prior {
				s.publishWithSummary(snap, append(users, sdk.Event{Name: sdk.EventConnectionRestored, Data: cs})...)
			}
		}
	}
	// Not published yet: no lock needed. chat.io 0.5 answers login with
	// {} (the SDK takes the id from its auth package, as the client's
	// X-Customer-Id does); failing both, the customer is the one
	// customer-type user of the chats, when the customer has any.
	s.customerID = cmp.Or(login.CustomerID, customerID)
	if s.customerID == "" {
		s.customerID = customerInSummary(payload)
	}
	s.installClient(c)
	s.log.Info("session opened", zap.Bool("customer_id_known", s.customerID != ""))
	return s, c, nil
}

// acquireDialSlot takes one of the pool-wide dial slots.
func (p *Pool) acquireDialSlot(ctx context.Context) error {
	select {
	case p.dialSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) releaseDialSlot() { <-p.dialSem }

// dialReason is the label of a failed dial.
func dialReason(err error) string {
	var de *chatio.DisconnectedError
	var re *chatio.RequestError
	switch {
	case errors.Is(err, chatio.ErrAuthentication):
		return "authentication"
	case errors.As(err, &de):
		return "disconnected"
	case errors.As(err, &re):
		return "request"
	case errors.Is(err, chatio.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, chatio.ErrClosed):
		return "canceled"
	default:
		return "network"
	}
}

// Len is the number of sessions in the pool, those being created included.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// Shutdown stops the pool: new Acquires fail with ErrDraining, every
// session ends (its subscribers' C close with ErrDraining, its socket is
// closed with a normal close frame), creations in progress are abandoned,
// and Shutdown waits for every goroutine of the pool or for ctx.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	var list []*Session
	for _, e := range p.sessions {
		select {
		case <-e.ready:
			if e.s != nil {
				list = append(list, e.s)
			}
		default:
		}
	}
	var mirrors []*mirror
	for _, m := range p.mirrors {
		mirrors = append(mirrors, m)
	}
	p.mu.Unlock()

	for _, s := range list {
		s.stop(ErrDraining, nil, nil)
	}
	for _, m := range mirrors {
		m.teardown(ErrDraining)
	}
	p.cancel() // abandons creations in progress

	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		p.pollOnce.Do(func() {}) // none is made after this
		if p.poller != nil {
			_ = p.poller.Close() // every socket it watched has ended with its session
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("session: shutdown: %w", ctx.Err())
	}
}

// readPoller returns the poller that reads the pool's upstream sockets,
// starting it at the first call: Upstream.Poller when set, else one of the
// pool's own, or nil (ReadLoops < 0, or no epoll here: a goroutine reads
// each socket).
func (p *Pool) readPoller() *netpoll.Poller {
	if p.cfg.Upstream.Poller != nil {
		return p.cfg.Upstream.Poller
	}
	p.pollOnce.Do(func() {
		if p.cfg.ReadLoops < 0 {
			return
		}
		pl, err := netpoll.New(p.cfg.ReadLoops)
		if err != nil {
			p.log.Info("upstream sockets are read by a goroutine each", zap.Error(err))
			return
		}
		p.poller = pl
	})
	return p.poller
}

// remove takes s out of the map if it is still s's entry. p.mu held.
func (p *Pool) removeLocked(s *Session) {
	if e, ok := p.sessions[s.token]; ok && e == s.entry {
		delete(p.sessions, s.token)
	}
}

// customerInSummary returns the id of the customer-type user of a
// get_chats_summary answer, or "" when there is none.
func customerInSummary(payload json.RawMessage) string {
	var p struct {
		ChatsSummary []struct {
			Users []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"users"`
		} `json:"chats_summary"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	for _, c := range p.ChatsSummary {
		for _, u := range c.Users {
			if u.Type == "customer" && u.ID != "" {
				return u.ID
			}
		}
	}
	return ""
}
