package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// The customer's event log in the engine (cluster mode): the owner appends
// each SDK event of its session, in the order the session logged it, with
// engine.AppendOwned (fenced: refused once another replica owns the
// customer, or once this replica's lease is lost).

// EncodeLogEvent is an SDK event as the engine's log keeps it: its name, a
// newline, its JSON data (a name has no newline).
func EncodeLogEvent(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+1+len(data))
	b = append(b, name...)
	b = append(b, '\n')
	return append(b, data...)
}

// DecodeLogEvent is EncodeLogEvent's inverse; false for what it did not
// write.
func DecodeLogEvent(b []byte) (name string, data []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// maxLogQueue bounds the events a session's appender holds while the
// engine does not take them; beyond, the session ends (the log would have
// a gap). The lease runs out long before at any plausible rate.
const maxLogQueue = 8192

// logAppender appends one owned session's events to the engine's log, on
// a goroutine of its own while it has some to append (run): the session
// logs them under Session.mu on the upstream read loop, which must not
// wait for the engine, and an idle session holds no goroutine for it.
type logAppender struct {
	s    *Session
	eng  *engine.Engine
	own  engine.Ownership
	done chan struct{} // closed once closed and nothing runs: end waits for it

	// Owned by the running run (one at a time: running).
	last uint64 // the log's sequence of the last append
	n    uint64 // events appended: their message ids

	mu         sync.Mutex
	queue      []logged     // guarded by mu: not appended yet, oldest first
	started    bool         // guarded by mu: create has published the session: run may start
	running    bool         // guarded by mu: a run goroutine is at work
	closed     bool         // guarded by mu: no more events; what is queued is appended, then done
	doneClosed bool         // guarded by mu
	overflow   bool         // guarded by mu: an event was refused (maxLogQueue)
	local      uint64       // guarded by mu: the session's sequence number of the last event appended
	seq        uint64       // guarded by mu: its sequence in the engine's log
	waiters    []waiter     // guarded by mu: seqAt's, by rising local
	failed     bool         // guarded by mu: run gave up: waiters get no sequence
	nextReady  *logAppender // guarded by Pool.readyMu: the next on the pool's ready list
	// mirror is the customer's streams on this replica, fed each appended
	// event straight from here (no live subscription: see feed); set by
	// Pool.mirrorOf under Pool.mu, guarded by mu.
	mirror *mirror
}

// logged is one event queued for the log, with its session sequence and
// when it was queued (gateway_cluster_append_duration_seconds).
type logged struct {
	local  uint64
	ev     encoded
	queued time.Time
}

// waiter waits for the log's sequence of the session's event local.
type waiter struct {
	local uint64
	ch    chan uint64 // capacity 1; closed without a value when run gave up
}

// newLogAppender starts at the session's current sequence number local
// (nothing logged yet) and the log's own.LastSeq (the owner marker).
func newLogAppender(s *Session, eng *engine.Engine, own engine.Ownership, local uint64) *logAppender {
	return &logAppender{s: s, eng: eng, own: own, done: make(chan struct{}),
		last: own.LastSeq, local: local, seq: own.LastSeq}
}

// push queues the session's event numbered local (Session.appendLocked,
// under Session.mu), and starts run when none is at work.
func (a *logAppender) push(local uint64, ev encoded) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if len(a.queue) >= maxLogQueue {
		a.overflow = true
	} else {
		a.queue = append(a.queue, logged{local, ev, time.Now()})
	}
	a.spawnLocked()
}

// start lets run start: create calls it once the session is published
// (what Pool.open logged waits till then).
func (a *logAppender) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = true
	a.spawnLocked()
}

// spawnLocked has run started when there is work and none runs: it puts
// the appender on the pool's ready list, which the append workers
// (appendWorker) take from, oldest first. A burst of sessions with events
// (an agent joining every chat at once) waits on the list for the
// workers, rather than making a goroutine each, with a stack an engine
// round trip deep, left to the collector. a.mu held.
func (a *logAppender) spawnLocked() {
	if !a.started || a.running || (len(a.queue) == 0 && !a.overflow) {
		return
	}
	a.running = true
	a.s.pool.ready(a)
}

// appendWorkers is how many goroutines a clustered pool keeps for its
// sessions' appenders (spawnLocked): enough for the appends in flight at
// once; the others wait on the ready list.
const appendWorkers = 16

// ready puts a on the ready list and wakes a waiting worker, if any. Once
// the workers are gone (the pool's context ended), a runs on a goroutine
// of its own.
func (p *Pool) ready(a *logAppender) {
	p.readyMu.Lock()
	if p.readyWorkers == 0 {
		p.readyMu.Unlock()
		p.wg.Add(1) // the session holds a count till end waits for done
		go func() {
			defer p.wg.Done()
			a.run()
		}()
		return
	}
	if p.readyTail == nil {
		p.readyHead = a
	} else {
		p.readyTail.nextReady = a
	}
	p.readyTail = a
	p.readyMu.Unlock()
	select {
	case p.readyWake <- struct{}{}:
	default: // every worker has a wake-up pending: one of them takes a
	}
}

// nextReady takes the oldest appender off the ready list; nil when it is
// empty. The last worker to leave (leaving) takes what is left.
func (p *Pool) nextReady(leaving bool) *logAppender {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	a := p.readyHead
	if a != nil {
		p.readyHead, a.nextReady = a.nextReady, nil
		if p.readyHead == nil {
			p.readyTail = nil
		}
		return a
	}
	if leaving {
		p.readyWorkers--
	}
	return nil
}

// appendWorker runs the appenders of the ready list until the pool's
// context ends, then what is left on it; one of Pool.wg's counts. A
// worker keeps its stack from run to run.
func (p *Pool) appendWorker() {
	defer p.wg.Done()
	for {
		for a := p.nextReady(false); a != nil; a = p.nextReady(false) {
			a.run()
		}
		select {
		case <-p.readyWake:
		case <-p.ctx.Done():
			for a := p.nextReady(true); a != nil; a = p.nextReady(true) {
				a.run()
			}
			return
		}
	}
}

// doneLocked closes done once closed and nothing runs. a.mu held.
func (a *logAppender) doneLocked() {
	if a.closed && !a.running && !a.doneClosed {
		a.doneClosed = true
		close(a.done)
	}
}

// seqAt returns a channel that yields the log's sequence of the session's
// event numbered local (of the last one before it, when local was not
// logged to the engine: the owner marker's for the session's first
// sequence) once it is appended. Called under Session.mu while local is
// the session's current sequence number; closed without a value when the
// appender gave up.
func (a *logAppender) seqAt(local uint64) <-chan uint64 {
	ch := make(chan uint64, 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.failed:
		close(ch)
	case a.local >= local:
		ch <- a.seq
	default:
		a.waiters = append(a.waiters, waiter{local, ch})
	}
	return ch
}

// appended records that the event numbered local is at seq in the log,
// and returns the mirror to feed it to (nil: none).
func (a *logAppender) appended(local, seq uint64) *mirror {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.local, a.seq = local, seq
	i := 0
	for ; i < len(a.waiters) && a.waiters[i].local <= local; i++ {
		a.waiters[i].ch <- seq
	}
	a.waiters = a.waiters[i:]
	return a.mirror
}

// unfeed stops feeding m (its teardown).
func (a *logAppender) unfeed(m *mirror) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mirror == m {
		a.mirror = nil
	}
}

// feed makes the appender hand every event it appends from now on to m,
// as the live subscription would (the owner's own streams need none), and
// returns the log's sequence of the last event appended before: the
// mirror's streams read the log up to it (join). Pool.mu held.
func (a *logAppender) feed(m *mirror) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mirror = m
	return a.seq
}

// close lets done close once what is queued is appended (or fenced).
func (a *logAppender) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.doneLocked()
}

// run appends the queued events in order until none is left, or until
// the log refuses them (fenced: the session ends and what is left is
// dropped).
func (a *logAppender) run() {
	for {
		a.mu.Lock()
		batch, overflow := a.queue, a.overflow
		a.queue = nil
		if len(batch) == 0 && !overflow {
			a.running = false
			a.doneLocked()
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if overflow {
			a.drop(fmt.Errorf("%w: the engine did not take the session's events in time", ErrSessionClosed))
			continue
		}
		for _, l := range batch {
			a.n++
			data := EncodeLogEvent(l.ev.name, l.ev.data)
			seq, err := a.appendOne(a.last, a.n, l.ev.name, l.ev.origin, data)
			stored := err == nil
			if errors.Is(err, errUnstorable) {
				seq, err = a.last, nil // the event is left out: its successor follows last
			}
			if err != nil {
				a.drop(fmt.Errorf("%w: appending to the log: %w", errFenced, err))
				break
			}
			a.s.pool.m.appendS.Observe(time.Since(l.queued).Seconds())
			prev := a.last
			a.last = seq
			m := a.appended(l.local, seq)
			if stored && m != nil {
				m.onLive(engine.Live{Event: engine.Event{Seq: seq, Data: data, Origin: l.ev.origin.String()}, Prev: prev, HasPrev: true})
			}
		}
	}
}

// errUnstorable: the engine, reachable and with this replica's lease
// valid, refuses one event time and again (larger than its
// MaxEventBytes, say): the event is left out of the log.
var errUnstorable = errors.New("session: the log refuses this event")

// unstorableAfter is how many refusals of one event, while the engine is
// Ready, make it unstorable.
const unstorableAfter = 3

// appendOne appends ev after last, retrying while the engine is
// unreachable: until it answers, or the lease runs out (ErrFenced).
func (a *logAppender) appendOne(last, n uint64, name string, origin Origin, data []byte) (uint64, error) {
	var b [96]byte // one allocation for the id (the string), not three
	id := string(strconv.AppendUint(append(strconv.AppendUint(append(append(b[:0], a.own.Epoch...), '.'), a.own.Revision, 10), '.'), n, 10))
	back := 20 * time.Millisecond
	refused := 0
	for {
		seq, err := a.eng.AppendOwnedFrom(context.Background(), a.own, last, id, origin.String(), data)
		if err == nil {
			return seq, nil
		}
		if errors.Is(err, engine.ErrFenced) {
			a.s.pool.m.fencedAppends.Inc()
			return 0, err
		}
		if errors.Is(err, engine.ErrClosed) {
			return 0, err
		}
		if a.eng.Ready() {
			if refused++; refused >= unstorableAfter {
				a.s.log.Warn("the log refuses an event: left out", zap.String("event", name), zap.Int("bytes", len(data)), zap.Error(err))
				a.s.pool.m.dropped.WithLabelValues(reasonEncode).Inc()
				return 0, errUnstorable
			}
		}
		a.s.log.Info("log append failed; retrying", zap.Error(err))
		time.Sleep(back)
		back = min(2*back, 500*time.Millisecond)
	}
}

// drop ends the session (its socket closes), forgets what is queued and
// takes no more: the waiters for a sequence get none.
func (a *logAppender) drop(err error) {
	a.mu.Lock()
	a.closed = true
	a.overflow = false
	a.queue = nil
	a.failed = true
	for _, w := range a.waiters {
		close(w.ch)
	}
	a.waiters = nil
	a.mu.Unlock()
	a.s.log.Warn("the session's log refused its events: session ends", zap.Error(err))
	if errors.Is(err, engine.ErrFenced) {
		a.s.pool.stopFenced(a.s, err)
		return
	}
	a.s.stop(err, nil, nil)
}

// maxPriorEvents bounds the events of the log a new owner reads to learn
// what the previous owner delivered.
const maxPriorEvents = 4096

// priorLog reads what the customer's log holds from earlier owners (or
// earlier sessions here): false when it holds nothing, or when its last
// event ended the session (logged out): the new session then starts
// afresh. Otherwise the session's tracker is seeded, per chat, with the
// last new_event the log has, so that the gap fill after the first summary
// reads back what chat.io pushed while nobody held the socket.
func (s *Session) priorLog(ctx context.Context, eng *engine.Engine, sid engine.SID) (bool, error) {
	var (
		after    uint64
		n        int
		lastName string
		lastData []byte
	)
	for n < maxPriorEvents {
		pg, err := eng.Read(ctx, sid, after, 0)
		if err != nil {
			return false, err
		}
		for _, ev := range pg.Events {
			name, data, ok := DecodeLogEvent(ev.Data)
			if !ok {
				continue
			}
			n++
			lastName, lastData = name, data
			if name == sdk.EventNewEvent {
				s.tracker.seedFromLog(data)
			}
		}
		after = pg.Last
		if !pg.More {
			break
		}
	}
	if n == 0 || (lastName == sdk.EventDisconnected && endsSession(lastData)) {
		s.tracker = newChatTracker() // a fresh start: the first summary seeds it
		return false, nil
	}
	return true, nil
}

// seedFromLog records a new_event of the log ({chat, event: {id, thread}})
// as the chat's last delivered event.
func (tr *chatTracker) seedFromLog(data []byte) {
	var d struct {
		Chat  string `json:"chat"`
		Event struct {
			ID     string `json:"id"`
			Thread string `json:"thread"`
		} `json:"event"`
	}
	if json.Unmarshal(data, &d) != nil || d.Chat == "" || d.Event.ID == "" || d.Event.Thread == "" {
		return
	}
	t := tr.get(d.Chat, true)
	t.see(d.Event.ID)
	t.thread, t.eventID, t.eventOrder, t.hasEvOrder = d.Event.Thread, d.Event.ID, 0, false
}
