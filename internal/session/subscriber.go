package session

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// subChanCap is how many events a subscriber's channel itself buffers.
// Beyond it, up to the subscriber's limit, events wait in a slice that a
// short-lived feeder goroutine moves into the channel: a subscriber that
// keeps up holds a few events' worth of memory instead of
// SubscriberBuffer's (56 bytes each), and the publisher still never blocks.
// Four: an idle stream holds 224 bytes of buffer; a stream that keeps up
// takes its events one or two at a time.
const subChanCap = 4

// Subscriber is one event stream of a session. Snapshot first, then C.
type Subscriber struct {
	s        *Session
	snapshot []Message    // set by Subscribe; cleared by ReleaseSnapshot, on the consumer's goroutine
	ch       chan Message // sent to under s.mu by the session, or by the feeder; closed once (see endLocked, feed)
	limit    int          // queue length at which a subscriber is too slow; immutable
	maxBytes int          // queued bytes beyond which a subscriber is too slow; immutable

	// guarded by s.mu
	ended      bool
	err        error
	spill      []Message     // queued events that did not fit in ch, oldest first
	spillBytes int           // bytes of spill's Data
	feeding    bool          // a feeder goroutine runs
	handing    bool          // the feeder holds an event it is sending into ch
	quit       chan struct{} // made with the first feeder; closed by Close: the feeder drops what is left
	quitted    bool          // quit is closed
	// sent holds the sizes of the last events sent (or being sent, see
	// handing) into ch, the newest at sentNext-1: ch holds the last len(ch)
	// of them (a FIFO with one sender at a time), so their bytes are known
	// without a word from the consumer.
	sent     [subChanCap + 1]int
	sentNext int

	// after: cluster mode: the last sequence of the log this subscriber had
	// when it joined its mirror; the mirror skips the events up to it.
	after uint64
}

// Snapshot is what comes before C: customer_id, user_data…, connected (only
// connected carries an ID). Empty when the subscriber resumed from a
// Last-Event-ID still in the replay buffer, or once ReleaseSnapshot has
// been called.
func (sub *Subscriber) Snapshot() []Message { return sub.snapshot }

// ReleaseSnapshot lets go of the snapshot once the stream has sent it: a
// stream lives for hours and its snapshot (the chats summary as JSON,
// ≈ 1 KiB) is not needed again. Call it from the stream's goroutine, after
// the last Snapshot.
func (sub *Subscriber) ReleaseSnapshot() { sub.snapshot = nil }

// C yields the events after the snapshot (or after the resumed id), in
// order, each once; it is closed when the subscriber ends (see Err).
func (sub *Subscriber) C() <-chan Message { return sub.ch }

// Err is why C was closed: ErrSlowSubscriber, ErrSessionClosed (possibly
// wrapping the upstream's reason), ErrDraining; nil after Close or while
// C is open.
func (sub *Subscriber) Err() error {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	return sub.err
}

// Close ends the subscriber and closes C (events still queued are
// dropped). Idempotent.
func (sub *Subscriber) Close() {
	s := sub.s
	s.mu.Lock()
	sub.endLocked(nil)
	if sub.quit != nil && !sub.quitted {
		sub.quitted = true
		close(sub.quit)
	}
	s.mu.Unlock()
}

// offerLocked queues m without blocking; false when the queue is full:
// it holds limit events, or m would take its bytes beyond maxBytes (an m
// larger than maxBytes is taken by an empty queue). Every queue keeps one
// slot for the session's final message, which is not held to maxBytes.
// The event a feeder is handing over is not counted in events (its send
// may complete at any moment: a queue with a feeder may take one event
// more), but is in bytes. s.mu held.
func (sub *Subscriber) offerLocked(m Message, final bool) bool {
	queued := len(sub.ch) + len(sub.spill)
	if queued >= sub.limit+1 || (!final && queued >= sub.limit) {
		return false
	}
	size := len(m.Data)
	if !final && (queued > 0 || sub.handing) && sub.queuedBytesLocked()+size > sub.maxBytes {
		return false
	}
	if !sub.feeding {
		select {
		case sub.ch <- m:
			sub.sentLocked(size)
			return true
		default:
		}
	}
	sub.spill = append(sub.spill, m)
	sub.spillBytes += size
	if !sub.feeding {
		sub.feeding = true
		if sub.quit == nil {
			sub.quit = make(chan struct{})
		}
		go sub.feed()
	}
	return true
}

// sentLocked records that an event of size bytes went (or is going) into
// ch. s.mu held.
func (sub *Subscriber) sentLocked(size int) {
	sub.sent[sub.sentNext] = size
	sub.sentNext++
	if sub.sentNext == len(sub.sent) {
		sub.sentNext = 0
	}
}

// queuedBytesLocked is the bytes of the events queued: in ch, in spill, and
// the one the feeder is handing over. Between the feeder's send and its
// next turn it counts one event more than is queued. s.mu held.
func (sub *Subscriber) queuedBytesLocked() int {
	n := len(sub.ch)
	if sub.handing {
		n++
	}
	b := sub.spillBytes
	for i := sub.sentNext; n > 0; n-- {
		if i == 0 {
			i = len(sub.sent)
		}
		i--
		b += sub.sent[i]
	}
	return b
}

// feed moves spilled events into the channel, oldest first. It ends when
// none are left (closing the channel if the subscriber has ended
// meanwhile), and drops the rest when the consumer has gone (Close).
func (sub *Subscriber) feed() {
	s := sub.s
	for {
		s.mu.Lock()
		sub.handing = false
		if len(sub.spill) == 0 {
			sub.feeding = false
			sub.spill = nil
			sub.spillBytes = 0
			if sub.ended {
				close(sub.ch)
			}
			s.mu.Unlock()
			return
		}
		m := sub.spill[0]
		sub.spill[0] = Message{}
		sub.spill = sub.spill[1:]
		sub.spillBytes -= len(m.Data)
		sub.sentLocked(len(m.Data))
		sub.handing = true
		quit := sub.quit
		s.mu.Unlock()
		select {
		case sub.ch <- m:
		case <-quit:
			s.mu.Lock()
			sub.spill = sub.spill[:0]
			s.mu.Unlock()
		}
	}
}

// endLocked removes the subscriber and closes its channel, once: now, or
// after the feeder has delivered what is queued. s.mu held.
func (sub *Subscriber) endLocked(err error) {
	if sub.ended {
		return
	}
	s := sub.s
	sub.ended = true
	sub.err = err
	if !sub.feeding {
		close(sub.ch)
	}
	delete(s.subs, sub)
	s.pool.m.subscribers.Dec()
	s.lastActive.Store(time.Now().UnixNano())
	if s.mirror != nil && len(s.subs) == 0 {
		s.mirror.idleLocked()
	}
}

// admitLocked checks that one more subscriber may join. s.mu held.
func (s *Session) admitLocked() error {
	if s.closing {
		return ErrSessionClosed
	}
	if len(s.subs) >= s.cfg.MaxSubscribers {
		return ErrTooManySubscribers
	}
	return nil
}

// addLocked registers a subscriber whose queue also holds extra replayed
// events of extraBytes. s.mu held, admitLocked passed.
func (s *Session) addLocked(extra, extraBytes int) *Subscriber {
	limit := s.cfg.SubscriberBuffer + extra
	sub := &Subscriber{
		s:        s,
		ch:       make(chan Message, min(limit+1, subChanCap)),
		limit:    limit,
		maxBytes: s.cfg.SubscriberBufferBytes + extraBytes,
	}
	s.subs[sub] = struct{}{}
	s.pool.m.subscribers.Inc()
	return sub
}

// Subscribe opens an event stream (GET /v1/events).
//
// lastEventID names the last event the client has seen. When it is a
// sequence number still covered by the replay buffer (or the current one),
// Snapshot is empty and C yields every later event, in order, then the live
// ones. Otherwise ("" included: unparsable, too old, from the future) the
// subscriber starts with a fresh snapshot: customer_id, user_data per user
// of a fresh get_chats_summary, then connected {chatsSummary, totalChats}
// whose ID is the sequence number N the subscriber was registered at; C
// then yields every event after N. Events between N and the summary's
// answer are queued, never lost.
//
// Errors: ErrSessionClosed, ErrTooManySubscribers, and for a snapshot the
// errors of Do (ErrOverloaded, chatio.ErrConnectionLost, ...).
func (s *Session) Subscribe(ctx context.Context, lastEventID string) (*Subscriber, error) {
	if id, ok := parseEventID(lastEventID); ok {
		sub, err := s.resume(id)
		if sub != nil || err != nil {
			return sub, err
		}
	}
	return s.subscribeFresh(ctx)
}

func parseEventID(v string) (uint64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	id, err := strconv.ParseUint(v, 10, 64)
	return id, err == nil
}

// resume registers a subscriber that replays the buffered events after id,
// atomically with registration; (nil, nil) when id is not resumable.
func (s *Session) resume(id uint64) (*Subscriber, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admitLocked(); err != nil {
		return nil, err
	}
	// The ring holds seq-ringLen+1 … seq; id may be anything from the one
	// just before the oldest kept event up to the current one.
	if id > s.seq || id < s.seq-uint64(s.ringLen) {
		return nil, nil
	}
	n := int(s.seq - id)
	size := 0
	for i := s.ringLen - n; i < s.ringLen; i++ {
		size += len(s.ring[(s.ringHead+i)%len(s.ring)].msg.Data)
	}
	sub := s.addLocked(n, size)
	for i := s.ringLen - n; i < s.ringLen; i++ {
		sub.offerLocked(s.ring[(s.ringHead+i)%len(s.ring)].msg, false) // within limit: room for n events of size bytes is made
	}
	s.pool.m.delivered.Add(float64(n))
	return sub, nil
}

// subscribeFresh registers a subscriber at the current sequence number N,
// then builds its snapshot: from the session's summary when it is current
// as of N, else from a fresh get_chats_summary.
func (s *Session) subscribeFresh(ctx context.Context) (*Subscriber, error) {
	s.mu.Lock()
	if err := s.admitLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	sub := s.addLocked(0, 0)
	n := s.seq
	customerID := s.customerID // as of n: a later adoption is an event after n
	snap := s.snap
	if snap != nil && (snap.seq != n || time.Since(snap.at) > summarySnapMaxAge) {
		snap = nil
	}
	s.mu.Unlock()

	if snap == nil {
		var err error
		if snap, err = s.fetchSummary(ctx); err != nil {
			sub.Close()
			return nil, err
		}
		s.keepSummary(snap, n)
	}
	sub.snapshot = snapshotMessages(customerID, snap, n)
	return sub, nil
}

// fetchSummary reads a fresh get_chats_summary for a snapshot.
func (s *Session) fetchSummary(ctx context.Context) (*summarySnap, error) {
	var payload json.RawMessage
	err := s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		var err error
		payload, err = c.GetLatestChatsSummary(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	cs, users, err := sdk.ParseChatsSummary(payload)
	if err != nil {
		return nil, err
	}
	return newSummarySnap(cs, users)
}

// snapshotMessages is a snapshot as of event n: customer_id, user_data…,
// connected (with n as its id).
func snapshotMessages(customerID string, snap *summarySnap, n uint64) []Message {
	idData, _ := encodeJSON(customerID)
	out := make([]Message, 0, len(snap.users)+2)
	out = append(out, Message{Name: sdk.EventCustomerID, Data: idData})
	out = append(out, snap.users...)
	out = append(out, Message{ID: strconv.FormatUint(n, 10), Name: sdk.EventConnected, Data: snap.connected})
	return out
}
