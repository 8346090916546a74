package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// Event streams in cluster mode: every stream, on any replica (the owner
// included), reads the customer's log in the engine, so that its ids are
// the log's sequences. A replica has one mirror per customer with streams
// here: one engine.Cursor, fanned out to the streams' Subscribers, fed the
// customer's live events either by the session's own log appender, when
// this replica owns the session (each event as its append returns, with
// its sequence: no engine subscription), or else by one engine.Subscribe.
// A new stream gets its snapshot from the owner (as of the log's sequence
// N) and the log's events after N, or, resuming, the log's events after
// its Last-Event-ID.

// logSnapshot is a snapshot as of the log's sequence Seq: what the owner
// answers a forwarded snapshot request with.
type logSnapshot struct {
	Seq    uint64      `json:"seq"`
	Events []snapEvent `json:"events"`
}

type snapEvent struct {
	Name string          `json:"name"`
	Data json.RawMessage `json:"data"`
}

// logSnapshot builds a snapshot as the owner: the session's summary (or a
// fresh one) and the log's sequence of the session's last event when it
// was taken, once that event is in the log.
func (s *Session) logSnapshot(ctx context.Context) (logSnapshot, error) {
	if s.elog == nil {
		return logSnapshot{}, errors.New("session: snapshot of a session without a log")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return logSnapshot{}, ErrSessionClosed
	}
	x := s.seq
	customerID := s.customerID
	snap := s.snap
	if snap != nil && (snap.seq != x || time.Since(snap.at) > summarySnapMaxAge) {
		snap = nil
	}
	wait := s.elog.seqAt(x)
	s.mu.Unlock()
	if snap == nil {
		var err error
		if snap, err = s.fetchSummary(ctx); err != nil {
			return logSnapshot{}, err
		}
		s.keepSummary(snap, x)
	}
	var n uint64
	select {
	case v, ok := <-wait:
		if !ok {
			return logSnapshot{}, ErrSessionClosed
		}
		n = v
	case <-ctx.Done():
		return logSnapshot{}, ctx.Err()
	}
	out := logSnapshot{Seq: n}
	for _, m := range snapshotMessages(customerID, snap, n) {
		out.Events = append(out.Events, snapEvent{m.Name, m.Data})
	}
	return out, nil
}

// snapshot is token's snapshot from the session's owner, wherever it is
// (taken over when nobody owns it), as the stream sends it.
func (p *Pool) snapshot(ctx context.Context, token, customerID string) ([]Message, uint64, error) {
	raw, err := p.route(ctx, token, customerID, fwdRequest{Snapshot: true}, true,
		func(ctx context.Context, s *Session) (json.RawMessage, error) {
			snap, err := s.logSnapshot(ctx)
			if err != nil {
				return nil, err
			}
			return json.Marshal(snap)
		})
	if err != nil {
		return nil, 0, err
	}
	var snap logSnapshot
	if err := json.Unmarshal(raw, &snap); err != nil || len(snap.Events) == 0 {
		return nil, 0, fmt.Errorf("session: snapshot: bad answer: %v", err)
	}
	out := make([]Message, len(snap.Events))
	for i, e := range snap.Events {
		out[i] = Message{Name: e.Name, Data: e.Data}
	}
	out[len(out)-1].ID = strconv.FormatUint(snap.Seq, 10)
	return out, snap.Seq, nil
}

// mirror is one customer's streams on this replica.
type mirror struct {
	sid   engine.SID
	token string   // to keep the owner's session alive (and take it over) while streams are open
	s     *Session // the container: mu, subs, cfg, pool; no client, not in the pool's map

	// Guarded by Pool.mu. Exactly one of them feeds the mirror while it
	// is in Pool.mirrors (both nil only while liveSub retries, or, with a
	// SingleNode engine, which has no live subjects, until the session is
	// owned here again: feedLocked; the keep round catches it up
	// meanwhile, and its SessionInfo takes the session over):
	esub   *engine.Subscription // the customer's live events, when this replica does not own the session
	feeder *logAppender         // the owned session's appender, which feeds the mirror (logAppender.feed)
	// fedFrom: the log's last sequence appended before feeder fed the
	// mirror: what the first join reads up to. Set before the mirror is
	// published; immutable.
	fedFrom uint64

	// guarded by s.mu
	owner   string         // the owner's engine.OwnerID, as a keep round last learnt it; "" unknown
	cur     *engine.Cursor // nil until the first join
	early   []engine.Live  // live events before the first join
	gone    bool           // torn down: join on a new mirror
	tearing bool           // a teardown goroutine is pending
}

// maxEarly bounds the live events a mirror keeps before its first join.
const maxEarly = 1024

// errMirrorGone: the mirror was torn down under a join; join a new one.
var errMirrorGone = errors.New("session: mirror gone")

// Subscribe opens an event stream of token's customer (cluster mode):
// as Session.Subscribe, with the log's sequences as ids, on any replica.
// Without an engine it is Acquire and Session.Subscribe.
func (p *Pool) Subscribe(ctx context.Context, token, customerID, lastEventID string) (*Subscriber, error) {
	if p.cfg.Engine == nil {
		var sub *Subscriber
		err := p.withSession(ctx, token, customerID, func(s *Session) error {
			var err error
			sub, err = s.Subscribe(ctx, lastEventID)
			return err
		})
		return sub, err
	}
	// The opening (engine round trips, a forwarded snapshot) runs on a
	// goroutine of its own, which the caller waits for: its stack grows
	// deep and goes with it, while the caller's, which then serves the
	// stream for as long as it lasts, stays small.
	type opened struct {
		sub *Subscriber
		err error
	}
	done := make(chan opened, 1)
	go func() {
		sub, err := p.subscribeCluster(ctx, token, customerID, lastEventID)
		done <- opened{sub, err}
	}()
	o := <-done
	return o.sub, o.err
}

// subscribeCluster is Subscribe in cluster mode.
func (p *Pool) subscribeCluster(ctx context.Context, token, customerID, lastEventID string) (*Subscriber, error) {
	sid := p.sid(token)
	var (
		snapshot []Message
		replay   []Message
		pos      uint64
		resumed  bool
	)
	if id, ok := parseEventID(lastEventID); ok {
		// Someone must hold the socket for the log to go on: the session
		// is looked at (taken over when its owner is gone, as after a
		// crash of the replica this stream was on).
		if _, err := p.SessionInfo(ctx, token, customerID); err != nil {
			return nil, err
		}
		last, err := p.cfg.Engine.LastSeq(ctx, sid)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEngine, err)
		}
		if id <= last { // else not this log's: a snapshot
			evs, at, tooOld, err := p.readLog(ctx, sid, id, 0)
			if err != nil {
				return nil, err
			}
			if !tooOld {
				replay, pos, resumed = evs, at, true
			}
		}
	}
	read := resumed // the log after the snapshot has been read
	if !resumed {
		var err error
		if snapshot, pos, err = p.snapshot(ctx, token, customerID); err != nil {
			return nil, err
		}
	}
	for {
		m, fed, err := p.mirrorOf(sid, token)
		if err != nil {
			return nil, err
		}
		if !read && !fed {
			// What the log got after the snapshot. A mirror fed by this
			// replica's appender needs no read here: join reads up to
			// where its feed began, and the feed has the rest.
			evs, at, _, err := p.readLog(ctx, sid, pos, 0)
			if err != nil {
				return nil, err
			}
			replay, pos, read = evs, at, true
		}
		sub, err := m.join(ctx, snapshot, replay, pos)
		if errors.Is(err, errMirrorGone) {
			continue
		}
		return sub, err
	}
}

// readLog reads the customer's log after after, up to upTo (0: to its
// end), as messages.
func (p *Pool) readLog(ctx context.Context, sid engine.SID, after, upTo uint64) (msgs []Message, last uint64, tooOld bool, err error) {
	last = after
	for first := true; ; first = false {
		pg, err := p.cfg.Engine.Read(ctx, sid, last, 0)
		if err != nil {
			return nil, 0, false, fmt.Errorf("%w: %w", ErrEngine, err)
		}
		if first && pg.TooOld {
			return nil, 0, true, nil
		}
		for _, ev := range pg.Events {
			if upTo != 0 && ev.Seq > upTo {
				return msgs, upTo, false, nil
			}
			if name, data, ok := DecodeLogEvent(ev.Data); ok {
				msgs = append(msgs, Message{ID: strconv.FormatUint(ev.Seq, 10), Name: name, Data: data, Origin: parseOrigin(ev.Origin)})
			}
		}
		last = pg.Last
		if upTo != 0 && last >= upTo {
			return msgs, upTo, false, nil
		}
		if !pg.More {
			return msgs, last, false, nil
		}
	}
}

// mirrorOf returns the customer's mirror, made on first use: fed by the
// session's appender when this replica owns the session (fed), else
// subscribed to the customer's live events. A mirror holds a count of
// Pool.wg until its teardown.
func (p *Pool) mirrorOf(sid engine.SID, token string) (m *mirror, fed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return nil, false, ErrDraining
	}
	if m := p.mirrors[sid]; m != nil {
		return m, m.feeder != nil, nil
	}
	m = &mirror{sid: sid, token: token, s: newMirrorSession(p)}
	if s := p.ownedLocked(token); s != nil {
		// This replica owns the session: its appender feeds the mirror
		// (until the session ends: Session.stop subscribes the mirror).
		m.feeder = s.elog
		m.fedFrom = s.elog.feed(m)
	} else if !p.cfg.Engine.SingleNode() {
		esub, err := p.cfg.Engine.Subscribe(sid, m.onLive)
		if err != nil {
			m.s.cancel()
			return nil, false, fmt.Errorf("%w: %w", ErrEngine, err)
		}
		m.esub = esub
	}
	m.s.mirror = m
	p.mirrors[sid] = m
	p.wg.Add(1) // the mirror's, until teardown
	return m, m.feeder != nil, nil
}

// newMirrorSession is a mirror's container: only what a container uses
// (Pool, Config, mu, subs; the pool's context, nothing of its own to
// cancel), lighter than newSession's (no logger, tracker, channels or
// context of its own): there is one per customer with streams here.
func newMirrorSession(p *Pool) *Session {
	return &Session{
		pool:   p,
		cfg:    &p.cfg,
		log:    p.log,
		ctx:    p.ctx,
		cancel: func() {},
		status: StatusConnecting,
		subs:   make(map[*Subscriber]struct{}, 1),
	}
}

// ownedLocked returns token's session when this replica owns it and it is
// open (not being created, not fenced); else nil. Pool.mu held.
func (p *Pool) ownedLocked(token string) *Session {
	e := p.sessions[token]
	if e == nil {
		return nil
	}
	select {
	case <-e.ready:
	default:
		return nil
	}
	if e.s == nil || e.s.own == nil || e.s.elog == nil || e.s.own.fenced() {
		return nil
	}
	return e.s
}

// unfeedLocked is told by Session.stop that the owned session whose
// appender a fed the customer's mirror ends: the mirror needs the
// engine's live events from now on (liveSub). It returns the mirror to
// subscribe, or nil. Pool.mu held.
func (p *Pool) unfeedLocked(sid engine.SID, a *logAppender) *mirror {
	m := p.mirrors[sid]
	if m == nil || m.feeder != a {
		return nil
	}
	m.feeder = nil
	return m
}

// feedLocked is told by create that a session this replica now owns
// (its appender a, not started yet) is published: a mirror of its
// customer that no session here feeds (its session ended here, or
// another replica owned it) is fed by a from now on, and needs no live
// subscription. Every event a appends is handed to it; what others
// appended before, its cursor reads from the log at the first event a
// feeds (or the keep round's catch-up). Pool.mu held.
func (p *Pool) feedLocked(sid engine.SID, a *logAppender) {
	m := p.mirrors[sid]
	if m == nil || m.feeder != nil {
		return
	}
	m.feeder = a
	a.feed(m)
	if m.esub != nil {
		_ = m.esub.Stop()
		m.esub = nil
	}
}

// liveSub subscribes m to the customer's live events, unless it is gone,
// fed, or subscribed already. An engine error leaves it to keepMirrors,
// which tries again at its next round and catches the mirror up.
func (p *Pool) liveSub(m *mirror) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mirrors[m.sid] != m || m.esub != nil || m.feeder != nil || p.cfg.Engine.SingleNode() {
		return
	}
	esub, err := p.cfg.Engine.Subscribe(m.sid, m.onLive)
	if err != nil {
		p.log.Warn("mirror: live subscription failed; retried at the next keep round", zap.Error(err))
		return
	}
	m.esub = esub
}

// join registers a subscriber that has snapshot (nil when resuming) and
// the log's events up to pos (replay), then every event after pos.
func (m *mirror) join(ctx context.Context, snapshot, replay []Message, pos uint64) (*Subscriber, error) {
	s := m.s
	for {
		s.mu.Lock()
		if m.gone {
			s.mu.Unlock()
			return nil, errMirrorGone
		}
		h := m.fedFrom // a new mirror: what its feeder appended before it fed it
		if m.cur != nil {
			h = m.cur.Last()
		}
		if pos >= h {
			if err := s.admitLocked(); err != nil {
				s.mu.Unlock()
				m.maybeTeardown()
				return nil, err
			}
			size := 0
			for _, msg := range replay {
				size += len(msg.Data)
			}
			sub := s.addLocked(len(replay), size)
			sub.after = pos
			sub.snapshot = snapshot
			for _, msg := range replay {
				sub.offerLocked(msg, false) // room for them was made
			}
			if m.cur == nil {
				m.cur = s.pool.cfg.Engine.NewCursor(m.sid, pos)
				early := m.early
				m.early = nil
				for _, l := range early {
					m.nextLocked(l)
				}
			}
			s.mu.Unlock()
			return sub, nil
		}
		s.mu.Unlock()
		// The mirror is ahead: read what it delivered since pos.
		evs, at, tooOld, err := s.pool.readLog(ctx, m.sid, pos, h)
		if err == nil && tooOld {
			err = fmt.Errorf("%w: the log moved past this stream while it opened", ErrSlowSubscriber)
		}
		if err != nil {
			m.maybeTeardown()
			return nil, err
		}
		replay = append(replay, evs...)
		pos = at
	}
}

// onLive takes one live event: the engine subscription's callback (on
// its goroutine), or from the owned session's appender (logAppender.stored),
// one event at a time each; the cursor drops what both gave.
func (m *mirror) onLive(l engine.Live) { m.live(l, true) }

// live is onLive; without mayRead, for a caller that must not wait for
// the engine (the appender, on the engine's acknowledgement goroutine),
// it does nothing and returns false when the event needs a read of the
// log first (the cursor is behind it): the caller then calls onLive
// elsewhere.
func (m *mirror) live(l engine.Live, mayRead bool) bool {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.gone {
		return true
	}
	if m.cur == nil {
		if len(m.early) < maxEarly {
			m.early = append(m.early, l)
		}
		return true
	}
	if !mayRead && !m.cur.InOrder(l) {
		return false
	}
	m.nextLocked(l)
	return true
}

// nextLocked passes a live event through the cursor (which fills gaps
// from the log) and delivers what it yields. When the log no longer holds
// a gap, the streams are cut off (they resume with Last-Event-ID, and get
// a snapshot). s.mu held.
func (m *mirror) nextLocked(l engine.Live) {
	s := m.s
	var (
		evs []engine.Event
		err error
	)
	if m.cur.InOrder(l) {
		// The usual case: no read, and no context (with its timer) to
		// make for every live event.
		evs, err = m.cur.Next(s.pool.ctx, l)
	} else {
		ctx, cancel := context.WithTimeout(s.pool.ctx, 5*time.Second)
		evs, err = m.cur.Next(ctx, l)
		cancel()
	}
	m.deliverLocked(evs)
	if err != nil {
		for sub := range s.subs {
			sub.endLocked(ErrSlowSubscriber)
		}
		m.cur = nil
	}
}

// deliverLocked offers the log's events to every subscriber that has not
// had them. A "disconnected" that ends the session ends the streams after
// it. s.mu held.
func (m *mirror) deliverLocked(evs []engine.Event) {
	s := m.s
	for _, ev := range evs {
		name, data, ok := DecodeLogEvent(ev.Data)
		if !ok {
			continue
		}
		msg := Message{ID: strconv.FormatUint(ev.Seq, 10), Name: name, Data: data, Origin: parseOrigin(ev.Origin)}
		final := name == sdk.EventDisconnected && endsSession(data)
		delivered := 0
		for sub := range s.subs {
			if ev.Seq <= sub.after {
				continue
			}
			if sub.offerLocked(msg, final) {
				delivered++
				continue
			}
			s.pool.m.dropped.WithLabelValues(reasonSlow).Inc()
			s.pool.m.subscribersCut.WithLabelValues(reasonSlow).Inc()
			sub.endLocked(ErrSlowSubscriber)
		}
		s.pool.m.delivered.Add(float64(delivered))
		if final {
			for sub := range s.subs {
				sub.endLocked(ErrSessionClosed)
			}
		}
	}
}

// endsSession reports whether a "disconnected" event's reason ends the
// session (the gateway's own, or one chat.io forbids reconnecting after).
func endsSession(data []byte) bool {
	var d struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(data, &d) != nil {
		return false
	}
	return d.Reason == DisconnectReasonLoggedOut || d.Reason == DisconnectReasonAuthentication || !chatio.ShouldReconnect(d.Reason)
}

// keepInterval is how often the pool keeps the owners' sessions of its
// mirrors with streams alive (keepMirrors).
func (p *Pool) keepInterval() time.Duration {
	return min(p.cfg.IdleTimeout/3, 2*time.Second)
}

// keepWorkers bounds the Keeps a keep round has in flight at once, and
// slowWorkers its requests one by one (keepOne): after an owner's lease
// lapsed those are the takeovers of its sessions with streams here, which
// wait mostly on the engine and chat.io (the dials are bounded by
// MaxConcurrentDials): 16 at a time took ≈ 2.5 s for 550 sessions where
// the streams that came back by themselves took 0.5 s; with ≈ 1,700
// sessions of a killed owner on two survivors the last stream on a
// survivor came 0.6–2.3 s after the last stream that came back by itself
// at 128 at a time, 0.4–1.0 s at 384 (bench/RESULTS.md, "Reaped
// leases"); counted from the reap, each survivor's ≈ 850 took 2.0–3.2 s
// at 384, and 1,024 at a time was no sooner ("A killed owner").
const (
	keepWorkers = 16
	slowWorkers = 384
)

// keepMirrors runs while the pool does (cluster mode): every keepInterval,
// for each mirror fed by this replica's own session it touches the
// session (no engine round trip: streams here keep it from idling out,
// and its appender fed them every event). Every other mirror with streams
// has its session kept alive at its owner (its streams are here, not
// there), taken over when nobody owns it (its events then reach the log
// again), and is caught up with the log (what its live subscription
// missed): one Keep per owner for all its sessions whose owner an earlier
// round learnt (keepBatch), and one by one (keepOne: a forwarded keep
// request, which takes the session over when nobody has it, and whose
// answer names the owner and the log's last sequence) for the others and
// for those the owner no longer serves. When the engine is not Ready at
// two rounds in a row, the streams end with a retry hint (ErrDraining),
// to come back with their Last-Event-ID, here or elsewhere. When an owner
// answers no Keep, the round waits for its lapse (keepBatch). One
// goroutine for all the mirrors
// (and a round's workers while it runs: at most keepWorkers, then
// slowWorkers): a mirror holds none.
func (p *Pool) keepMirrors() {
	defer p.wg.Done()
	iv := p.keepInterval()
	t := time.NewTicker(iv)
	defer t.Stop()
	unready := 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		list := make([]*mirror, 0, len(p.mirrors))
		fed := make([]*Session, 0, len(p.mirrors)) // by list's index: the owned session whose appender feeds the mirror, or nil
		for _, m := range p.mirrors {
			list = append(list, m)
			var s *Session
			if m.feeder != nil {
				s = m.feeder.s
			}
			fed = append(fed, s)
		}
		p.mu.Unlock()
		if len(list) == 0 {
			continue
		}
		if !p.cfg.Engine.Ready() {
			if unready++; unready >= 2 {
				for _, m := range list {
					m.endAll(fmt.Errorf("%w: %w", ErrDraining, ErrEngine))
				}
			}
			continue
		}
		unready = 0
		byOwner := make(map[string][]*mirror)
		var slow []*mirror
		for i, m := range list {
			if s := fed[i]; s != nil {
				// Streams here keep the session here from idling out;
				// nothing can have been missed (the appender feeds every
				// event): no engine round trip.
				s.touch()
				continue
			}
			owner, n := m.keepState()
			if n == 0 {
				continue
			}
			p.liveSub(m) // when an engine error left it without one
			if owner == "" {
				slow = append(slow, m)
			} else {
				byOwner[owner] = append(byOwner[owner], m)
			}
		}
		p.keepRound(iv, byOwner, slow)
	}
}

// keepRound runs one round of keepMirrors for the mirrors that no session
// here feeds: the batches first, then, one by one, the mirrors of no
// known owner and the batches' misses; at most keepWorkers Keeps and then
// slowWorkers requests at a time, each bounded by iv. It returns when all
// are done.
func (p *Pool) keepRound(iv time.Duration, byOwner map[string][]*mirror, slow []*mirror) {
	sem := make(chan struct{}, keepWorkers)
	var (
		round  sync.WaitGroup
		missMu sync.Mutex
	)
	for owner, ms := range byOwner {
		for len(ms) > 0 {
			batch := ms[:min(len(ms), engine.MaxKeep)]
			ms = ms[len(batch):]
			sem <- struct{}{}
			round.Go(func() {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(p.ctx, iv)
				defer cancel()
				miss := p.keepBatch(ctx, owner, batch)
				missMu.Lock()
				slow = append(slow, miss...)
				missMu.Unlock()
			})
		}
	}
	round.Wait()
	slowSem := make(chan struct{}, slowWorkers)
	for _, m := range slow {
		slowSem <- struct{}{}
		round.Go(func() {
			defer func() { <-slowSem }()
			ctx, cancel := context.WithTimeout(p.ctx, iv)
			defer cancel()
			p.keepOne(ctx, m)
		})
	}
	round.Wait()
}

// keepBatch keeps ms's sessions alive at owner, one engine.Keep, and
// catches each mirror up to the log's last sequence as the owner answers
// it (no read when the mirror has it: the usual case). It returns the
// mirrors it could not keep so (the owner no longer serves them, or did
// not answer), their owner forgotten: keepOne's.
func (p *Pool) keepBatch(ctx context.Context, owner string, ms []*mirror) []*mirror {
	sids := make([]engine.SID, len(ms))
	for i, m := range ms {
		sids[i] = m.sid
	}
	p.m.forwarded.WithLabelValues(kindKeep).Inc()
	seqs, err := p.cfg.Engine.Keep(ctx, owner, sids)
	if err != nil {
		// The owner is gone, paused or cut off. Asked one by one now,
		// its sessions would wait in takeovers the engine refuses until
		// its lease lapses, keepWorkers at a time, each for a whole
		// round: what was tried just before the lapse would wait for the
		// round's end and the next one. So the lapse is waited for first,
		// once for all of them, and they are taken over right after it,
		// slowWorkers at a time. Not when this replica's own engine
		// connection is down: that is an answer at once (keepMirrors ends
		// the streams at its second round).
		p.awaitLapse(owner)
		for _, m := range ms {
			m.setOwner("")
		}
		return ms
	}
	var miss []*mirror
	for i, m := range ms {
		if seqs[i] == 0 {
			m.setOwner("")
			miss = append(miss, m)
			continue
		}
		m.catchUp(ctx, seqs[i])
	}
	return miss
}

// keepOne keeps m's session alive the slow way: one request routed as a
// call is (forwarded to the owner; the session taken over when nobody
// owns it), whose answer (keepReply) names the owner, for the next rounds'
// batches, and the log's last sequence, which the mirror catches up to.
// It is an info request too: an owner of an earlier version (a rolling
// update) answers it as one, which keeps the session alive all the same
// and names no owner (the mirror catches up to the leader's sequence).
func (p *Pool) keepOne(ctx context.Context, m *mirror) {
	raw, err := p.route(ctx, m.token, "", fwdRequest{Info: true, Keep: true}, true,
		func(ctx context.Context, s *Session) (json.RawMessage, error) { return p.keepReply(s) })
	if err != nil {
		return
	}
	var k keepReply
	if err := json.Unmarshal(raw, &k); err != nil {
		p.log.Warn("mirror: undecodable keep answer", zap.Error(err))
		return
	}
	m.setOwner(k.Owner)
	m.catchUp(ctx, k.Seq)
}

// keepState is the owner of m's session as a keep round last learnt it
// ("": unknown), and how many streams m has.
func (m *mirror) keepState() (owner string, streams int) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.owner, len(m.s.subs)
}

// setOwner records the owner of m's session for the next keep round.
func (m *mirror) setOwner(owner string) {
	m.s.mu.Lock()
	m.owner = owner
	m.s.mu.Unlock()
}

// catchUp delivers what the live subscription missed and no later event
// showed (a lost last event: the engine reconnected, or a stream leader
// died between storing and republishing), reading up to last, the log's
// last sequence as the owner knows it, or (0) as the stream leader does:
// a live event is never later than keepInterval.
func (m *mirror) catchUp(ctx context.Context, last uint64) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.gone || m.cur == nil {
		return
	}
	var (
		evs []engine.Event
		err error
	)
	if last == 0 {
		evs, err = m.cur.CatchUp(ctx)
	} else {
		evs, err = m.cur.CatchUpTo(ctx, last)
	}
	m.deliverLocked(evs)
	if errors.Is(err, engine.ErrTooOld) {
		for sub := range s.subs {
			sub.endLocked(ErrSlowSubscriber)
		}
		m.cur = nil
	}
}

// endAll ends every stream of the mirror with err.
func (m *mirror) endAll(err error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for sub := range m.s.subs {
		sub.endLocked(err)
	}
}

// idleLocked is told that the mirror's last subscriber ended: it tears the
// mirror down, on a goroutine of its own (it takes Pool.mu). s.mu held.
func (m *mirror) idleLocked() {
	if m.gone || m.tearing {
		return
	}
	m.tearing = true
	m.s.pool.wg.Add(1) // the mirror's count is held
	go func() {
		defer m.s.pool.wg.Done()
		m.teardown(nil)
	}()
}

// maybeTeardown tears the mirror down when it has no subscriber.
func (m *mirror) maybeTeardown() {
	m.s.mu.Lock()
	if len(m.s.subs) == 0 {
		m.idleLocked()
	}
	m.s.mu.Unlock()
}

// teardown ends the mirror when it has no subscriber (err nil), or ends
// its subscribers with err and the mirror (Shutdown).
func (m *mirror) teardown(err error) {
	p := m.s.pool
	p.mu.Lock()
	m.s.mu.Lock()
	m.tearing = false
	if m.gone || (err == nil && len(m.s.subs) > 0) {
		m.s.mu.Unlock()
		p.mu.Unlock()
		return
	}
	m.gone = true
	for sub := range m.s.subs {
		sub.endLocked(err)
	}
	m.early = nil
	m.cur = nil
	_ = m.esub.Stop()
	if m.feeder != nil {
		m.feeder.unfeed(m)
		m.feeder = nil
	}
	if p.mirrors[m.sid] == m {
		delete(p.mirrors, m.sid)
	}
	m.s.mu.Unlock()
	p.mu.Unlock()
	m.s.cancel()
	p.wg.Done() // the mirror's count
}

// StreamsFed reports whether token's customer has streams on this
// replica (a mirror), and whether this replica's own session of it feeds
// them (no live subscription). Cluster mode; false, false otherwise.
func (p *Pool) StreamsFed(token string) (mirrored, fed bool) {
	if p.cfg.Engine == nil {
		return false, false
	}
	sid := p.sid(token)
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.mirrors[sid]
	return m != nil, m != nil && m.feeder != nil
}
