package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Live is an event as the stream republished it, on the core subject.
type Live struct {
	Event
	// Prev is the customer's previous sequence when the event was stored
	// (the republish header Nats-Last-Sequence, which nats-server computes
	// per subject); HasPrev says the header was there.
	Prev    uint64
	HasPrev bool
	// Marker: an owner marker (no data); a Cursor consumes it.
	Marker bool
}

// Subscription is a live subscription (Subscribe) or a session's
// registration on the node's operations subscription (Serve).
type Subscription struct {
	sub  *nats.Subscription // Subscribe's
	stop func()             // Serve's: takes the registration out
}

// Stop ends the subscription. For Serve, requests not yet handed to the
// handler are answered "not the owner" (the caller's ErrNoOwner).
func (s *Subscription) Stop() error { return s.end((*nats.Subscription).Unsubscribe) }

// Drain ends the subscription once the messages it has received are
// handled: for Subscribe, its callback still runs for them
// (asynchronously, after Drain returns), and none arrives after. For
// Serve it is Stop: a request the handler was given is its to answer
// (an owner's handler answers each on a goroutine of its own), and the
// next ones are answered "not the owner".
func (s *Subscription) Drain() error { return s.end((*nats.Subscription).Drain) }

// end is Stop and Drain: Serve's registration taken out, or a
// Subscribe's subscription ended by how.
func (s *Subscription) end(how func(*nats.Subscription) error) error {
	switch {
	case s == nil:
		return nil
	case s.stop != nil:
		s.stop()
		return nil
	case s.sub == nil:
		return nil
	}
	return how(s.sub)
}

// Dropped is how many messages the subscription dropped because fn fell
// behind (a Cursor fills them in from the log); 0 for Serve's.
func (s *Subscription) Dropped() int {
	if s == nil || s.sub == nil {
		return 0
	}
	n, _ := s.sub.Dropped()
	return n
}

// Live queue bounds of one subscription.
const (
	livePendingMsgs  = 4096
	livePendingBytes = 16 << 20
)

// Subscribe delivers the customer's events as the stream republishes them,
// through one core subscription (no JetStream consumer). fn runs on the
// subscription's own goroutine, one event at a time, in the order the
// stream stored them; it must not block for long: beyond the subscription's
// bounds, events are dropped (and show as a gap at the next one). Pass
// every Live to a Cursor, which fills gaps from the log and drops
// duplicates. Live events can also be lost while the connection
// reconnects: after Config.OnState reports StateConnected, CatchUp.
func (e *Engine) Subscribe(sid SID, fn func(Live)) (*Subscription, error) {
	sn, err := e.names(sid)
	if err != nil {
		return nil, err
	}
	sub, err := e.nc.Subscribe(sn.livPfx+string(sid), func(m *nats.Msg) {
		seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
		if err != nil || seq == 0 {
			return
		}
		l := Live{Event: Event{Seq: seq, Data: m.Data, Origin: m.Header.Get(hdrOrigin)}}
		if v := m.Header.Get(hdrLastSeq); v != "" {
			l.Prev, err = strconv.ParseUint(v, 10, 64)
			l.HasPrev = err == nil
		}
		l.Marker = m.Header.Get(hdrOwner) != ""
		fn(l)
	})
	if err != nil {
		return nil, fmt.Errorf("engine: subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(livePendingMsgs, livePendingBytes)
	return &Subscription{sub: sub}, nil
}

// Cursor follows one customer's log for a reader: it remembers the last
// sequence delivered and turns live events into the exact continuation of
// what was delivered, filling gaps from the log and dropping duplicates.
// A Cursor is not safe for concurrent use: one goroutine per Cursor (for
// example the one that runs a Subscribe callback).
type Cursor struct {
	e    *Engine
	sid  SID
	last uint64
}

// NewCursor starts a cursor after sequence last (0: the beginning).
func (e *Engine) NewCursor(sid SID, last uint64) *Cursor {
	return &Cursor{e: e, sid: sid, last: last}
}

// Last is the last sequence delivered (or consumed: owner markers).
func (c *Cursor) Last() uint64 { return c.last }

// Reset moves the cursor, after the caller sent a snapshot as of seq.
func (c *Cursor) Reset(seq uint64) { c.last = seq }

// maxFillPages bounds one fill: past it, the log itself is beyond the ring.
const maxFillPages = 64

// Next takes a live event and returns the events to deliver, in order:
// none for a duplicate (or an owner marker), the event alone when it
// follows the last one, or the missing events read from the log and then
// the event. ErrTooOld: the log no longer holds the missing events; the
// caller sends a snapshot and Resets the cursor.
func (c *Cursor) Next(ctx context.Context, l Live) ([]Event, error) {
	if l.Seq <= c.last {
		return nil, nil
	}
	if l.HasPrev && l.Prev == c.last {
		c.last = l.Seq
		if l.Marker {
			return nil, nil
		}
		return []Event{l.Event}, nil
	}
	return c.fill(ctx, l.Seq)
}

// InOrder reports whether Next takes l without a read of the log (a
// duplicate, or the event right after the last one delivered), so that a
// caller may make Next's context only when a read may follow.
func (c *Cursor) InOrder(l Live) bool {
	return l.Seq <= c.last || l.HasPrev && l.Prev == c.last
}

// CatchUp returns the events after the last one delivered, up to the
// customer's last sequence as the stream leader knows it: after a replay
// from a follower, or after a reconnect.
func (c *Cursor) CatchUp(ctx context.Context) ([]Event, error) {
	target, err := c.e.LastSeq(ctx, c.sid)
	if err != nil {
		return nil, err
	}
	return c.CatchUpTo(ctx, target)
}

// CatchUpTo is CatchUp up to target, a last sequence the caller learnt
// otherwise (the owner's, from Keep): no read when the cursor has it.
func (c *Cursor) CatchUpTo(ctx context.Context, target uint64) ([]Event, error) {
	if target <= c.last {
		return nil, nil
	}
	return c.fill(ctx, target)
}

// fill reads the log after c.last until it has read upTo, delivering the
// events up to it. A read that falls short (a follower lagging behind the
// leader) is repeated with a short pause, until ctx ends.
func (c *Cursor) fill(ctx context.Context, upTo uint64) ([]Event, error) {
	var out []Event
	back := 2 * time.Millisecond
	for pages := 0; c.last < upTo; pages++ {
		if pages >= maxFillPages {
			return out, fmt.Errorf("engine: gap of more than %d pages", maxFillPages)
		}
		p, err := c.e.Read(ctx, c.sid, c.last, maxReadEvents)
		if err != nil {
			return out, err
		}
		if p.TooOld {
			return out, ErrTooOld
		}
		if p.Last == c.last {
			select {
			case <-ctx.Done():
				return out, fmt.Errorf("engine: gap not filled up to %d: %w", upTo, ctx.Err())
			case <-time.After(back):
			}
			back = min(back*2, 100*time.Millisecond)
			continue
		}
		for _, ev := range p.Events {
			if ev.Seq > upTo {
				break
			}
			out = append(out, ev)
		}
		c.last = min(p.Last, upTo)
	}
	return out, nil
}
