package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// Event streams in cluster mode: every stream, on any replica (the owner
// included), reads the customer's log in the engine, so that its ids are
// the log's sequences. A replica has one mirror per customer with streams
// here: one engine.Subscribe and one engine.Cursor, fanned out to the
// streams' Subscribers; a new stream gets its snapshot from the owner (as
// of the log's sequence N) and the log's events after N, or, resuming, the
// log's events after its Last-Event-ID.

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
	esub  *engine.Subscription

	// guarded by s.mu
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
	if !resumed {
		var n uint64
		var err error
		if snapshot, n, err = p.snapshot(ctx, token, customerID); err != nil {
			return nil, err
		}
		evs, at, _, err := p.readLog(ctx, sid, n, 0)
		if err != nil {
			return nil, err
		}
		replay, pos = evs, at
	}
	for {
		m, err := p.mirrorOf(sid, token)
		if err != nil {
			return nil, err
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

// mirrorOf returns the customer's mirror, made (and subscribed to the
// customer's live events) on first use. A mirror holds a count of Pool.wg
// until its teardown.
func (p *Pool) mirrorOf(sid engine.SID, token string) (*mirror, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return nil, ErrDraining
	}
	if m := p.mirrors[sid]; m != nil {
		return m, nil
	}
	m := &mirror{sid: sid, token: token, s: newSession(p, "")}
	esub, err := p.cfg.Engine.Subscribe(sid, m.onLive)
	if err != nil {
		m.s.cancel()
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	m.esub = esub
	m.s.mirror = m
	p.mirrors[sid] = m
	p.wg.Add(1) // the mirror's, until teardown
	return m, nil
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
		if m.cur == nil || pos >= m.cur.Last() {
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
		h := m.cur.Last()
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

// onLive is the mirror's engine subscription callback: it runs on the
// subscription's goroutine, one event at a time.
func (m *mirror) onLive(l engine.Live) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.gone {
		return
	}
	if m.cur == nil {
		if len(m.early) < maxEarly {
			m.early = append(m.early, l)
		}
		return
	}
	m.nextLocked(l)
}

// nextLocked passes a live event through the cursor (which fills gaps
// from the log) and delivers what it yields. When the log no longer holds
// a gap, the streams are cut off (they resume with Last-Event-ID, and get
// a snapshot). s.mu held.
func (m *mirror) nextLocked(l engine.Live) {
	s := m.s
	ctx, cancel := context.WithTimeout(s.pool.ctx, 5*time.Second)
	evs, err := m.cur.Next(ctx, l)
	cancel()
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

// keepWorkers bounds the mirrors keepMirrors looks after at once.
const keepWorkers = 16

// keepMirrors runs while the pool does (cluster mode): every keepInterval,
// for each mirror with streams, it asks the session's owner for the
// session's info, which keeps the session from idling out (its streams
// are here, not there) and has it taken over when nobody owns it (its
// events then reach the log again), then catches the mirror up with the
// log (catchUp). When the engine is not Ready at two rounds in a row, the
// streams end with a retry hint (ErrDraining), to come back with their
// Last-Event-ID, here or elsewhere. One goroutine for all the mirrors (a
// few more while a round runs): a mirror holds none.
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
		for _, m := range p.mirrors {
			list = append(list, m)
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
		sem := make(chan struct{}, keepWorkers)
		var round sync.WaitGroup
		for _, m := range list {
			if m.streams() == 0 {
				continue
			}
			sem <- struct{}{}
			round.Go(func() {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(p.ctx, iv)
				defer cancel()
				_, _ = p.SessionInfo(ctx, m.token, "")
				m.catchUp(ctx)
			})
		}
		round.Wait()
	}
}

// streams is how many streams the mirror has.
func (m *mirror) streams() int {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return len(m.s.subs)
}

// catchUp delivers what the live subscription missed and no later event
// showed (a lost last event: the engine reconnected, or a stream leader
// died between storing and republishing), reading up to the leader's last
// sequence: a live event is never later than keepInterval.
func (m *mirror) catchUp(ctx context.Context) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.gone || m.cur == nil {
		return
	}
	evs, err := m.cur.CatchUp(ctx)
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
	if p.mirrors[m.sid] == m {
		delete(p.mirrors, m.sid)
	}
	m.s.mu.Unlock()
	p.mu.Unlock()
	m.s.cancel()
	p.wg.Done() // the mirror's count
}
