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

// logAppender appends one owned session's events to the engine's log, one
// at a time, in order, without a goroutine: the session logs them under
// Session.mu on the upstream read loop, which must not wait for the
// engine, so push only publishes the next append (engine.AppendOwnedAsync)
// and its acknowledgement, handed over on the engine's acknowledgement
// goroutine, records it, feeds the mirror and publishes the one after. An
// append the engine did not acknowledge as stored at once (an error
// answer, no answer in time, the engine unreachable) is appended the
// waiting way (appendOne: the same message id, retried while the engine
// is unreachable, given up when fenced) on a goroutine of its own, which
// goes on with the rest the same way (slow).
type logAppender struct {
	s    *Session
	eng  *engine.Engine
	own  engine.Ownership
	done chan struct{} // closed once closed and nothing is in flight: end waits for it

	mu         sync.Mutex
	n          uint64   // guarded by mu: events sent: their message ids
	queue      []logged // guarded by mu: not sent yet, oldest first
	started    bool     // guarded by mu: create has published the session: appends may start
	running    bool     // guarded by mu: an append is in flight (or its slow goroutine at work)
	closed     bool     // guarded by mu: no more events; what is queued is appended, then done
	doneClosed bool     // guarded by mu
	overflow   bool     // guarded by mu: an event was refused (maxLogQueue)
	local      uint64   // guarded by mu: the session's sequence number of the last event appended
	seq        uint64   // guarded by mu: its sequence in the engine's log: the next append's expected last
	waiters    []waiter // guarded by mu: seqAt's, by rising local
	failed     bool     // guarded by mu: the appender gave up: waiters get no sequence
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
	ch    chan uint64 // capacity 1; closed without a value when the appender gave up
}

// newLogAppender starts at the session's current sequence number local
// (nothing logged yet) and the log's own.LastSeq (the owner marker).
func newLogAppender(s *Session, eng *engine.Engine, own engine.Ownership, local uint64) *logAppender {
	return &logAppender{s: s, eng: eng, own: own, done: make(chan struct{}),
		local: local, seq: own.LastSeq}
}

// push queues the session's event numbered local (Session.appendLocked,
// under Session.mu), and sends it when no append is in flight.
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
	a.sendLocked()
}

// lastSeq is the log's sequence of the last event appended (the owner
// marker before any); false once the appender gave up.
func (a *logAppender) lastSeq() (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq, !a.failed && a.seq != 0
}

// start lets the appends start: create calls it once the session is
// published (what Pool.open logged waits till then).
func (a *logAppender) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = true
	a.sendLocked()
}

// sendLocked sends the oldest queued event when none is in flight: to the
// engine without a wait (done: stored, or slow on anything else), or,
// when the engine takes none so (not connected, say), to slow. An
// overflow ends the session instead. a.mu held.
func (a *logAppender) sendLocked() {
	if !a.started || a.running || (len(a.queue) == 0 && !a.overflow) {
		return
	}
	a.running = true
	if a.overflow {
		a.spawn(func() {
			a.drop(fmt.Errorf("%w: the engine did not take the session's events in time", ErrSessionClosed))
			a.next()
		})
		return
	}
	l := a.queue[0]
	a.queue[0] = logged{}
	if a.queue = a.queue[1:]; len(a.queue) == 0 {
		a.queue = nil // an idle session holds no queue
	}
	a.n++
	var b [96]byte // one allocation for the id (the string), not three
	ev := &sent{
		logged: l,
		data:   EncodeLogEvent(l.ev.name, l.ev.data),
		id:     string(strconv.AppendUint(append(strconv.AppendUint(append(append(b[:0], a.own.Epoch...), '.'), a.own.Revision, 10), '.'), a.n, 10)),
		origin: l.ev.origin.String(),
	}
	err := a.eng.AppendOwnedAsync(a.own, a.seq, ev.id, ev.origin, ev.data, func(seq uint64, err error) {
		if err != nil {
			a.spawn(func() { a.slow(ev) }) // not here: this goroutine hands every append's answer
			return
		}
		a.stored(ev, seq, true)
	})
	if err != nil {
		a.spawn(func() { a.slow(ev) })
	}
}

// sent is an event sent to the log: its queue entry, and what the engine
// is given for it (its log encoding, message id and origin).
type sent struct {
	logged
	data       []byte
	id, origin string
}

// spawn runs f on a goroutine of its own, counted in Pool.wg; called
// while an append is in flight (running), so that the session's own count,
// held until end has waited for done, is held too.
func (a *logAppender) spawn(f func()) {
	p := a.s.pool
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// slow appends ev the waiting way (appendOne, the same message id), then
// goes on with the queue; a refusal ends the session.
func (a *logAppender) slow(ev *sent) {
	a.mu.Lock()
	last := a.seq
	a.mu.Unlock()
	seq, err := a.appendOne(last, ev)
	stored := err == nil
	if errors.Is(err, errUnstorable) {
		seq, err = last, nil // the event is left out: its successor follows last
	}
	if err != nil {
		a.drop(fmt.Errorf("%w: appending to the log: %w", errFenced, err))
		a.next()
		return
	}
	a.stored(ev, seq, stored)
}

// stored records that ev is at seq in the log (stored: false when it was
// left out, seq then its predecessor's), hands it to the mirror, and
// sends the next event.
func (a *logAppender) stored(ev *sent, seq uint64, stored bool) {
	prev, m := a.appended(ev.local, seq)
	a.s.pool.m.appendS.Observe(time.Since(ev.queued).Seconds())
	if stored && m != nil {
		live := engine.Live{Event: engine.Event{Seq: seq, Data: ev.data, Origin: ev.origin}, Prev: prev, HasPrev: true}
		if !m.live(live, false) {
			// The mirror's cursor is behind (it was fed by another before):
			// its read of the log must not hold up the acknowledgement
			// goroutine, which hands every session's appends back. The
			// session's next event waits for it, in order.
			a.spawn(func() {
				m.onLive(live)
				a.next()
			})
			return
		}
	}
	a.next()
}

// next ends the append in flight and sends the next event, if any; done
// closes once closed and nothing is left in flight.
func (a *logAppender) next() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running = false
	a.sendLocked()
	a.doneLocked()
}

// doneLocked closes done once closed and nothing is in flight. a.mu held.
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
// and returns the sequence before it and the mirror to feed it to (nil:
// none).
func (a *logAppender) appended(local, seq uint64) (prev uint64, m *mirror) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev = a.seq
	a.local, a.seq = local, seq
	i := 0
	for ; i < len(a.waiters) && a.waiters[i].local <= local; i++ {
		a.waiters[i].ch <- seq
	}
	a.waiters = a.waiters[i:]
	return prev, a.mirror
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

// errUnstorable: the engine, reachable and with this replica's lease
// valid, refuses one event time and again (larger than its
// MaxEventBytes, say): the event is left out of the log.
var errUnstorable = errors.New("session: the log refuses this event")

// unstorableAfter is how many refusals of one event, while the engine is
// Ready, make it unstorable.
const unstorableAfter = 3

// appendOne appends ev after last, retrying while the engine is
// unreachable: until it answers, or the lease runs out (ErrFenced).
func (a *logAppender) appendOne(last uint64, ev *sent) (uint64, error) {
	back := 20 * time.Millisecond
	refused := 0
	for {
		seq, err := a.eng.AppendOwnedFrom(context.Background(), a.own, last, ev.id, ev.origin, ev.data)
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
				a.s.log.Warn("the log refuses an event: left out", zap.String("event", ev.ev.name), zap.Int("bytes", len(ev.data)), zap.Error(err))
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
