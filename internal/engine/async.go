package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Appends without a wait (AppendOwnedAsync): the append is published with
// a reply subject of the engine's own, under one subscription made by
// Start (acks), and its acknowledgement is handed to the caller's done on
// that subscription's goroutine. No goroutine waits for it, no context or
// timer is made for it, and the acknowledgement reaches done one hand-off
// sooner than a request's would (nats.go hands a reply from its response
// subscription's goroutine to the waiting one). Only the plain outcome is
// handled here, a stored event's sequence; anything else (an error
// answer, no answer within the attempt's time, a publish that failed) is
// ErrRetry to done, and the caller appends again the waiting way, with the
// same message id (Append's retry: the duplicate window and the look at
// the customer's last event tell an append that was stored).

// ErrRetry: an AppendOwnedAsync attempt was not acknowledged as stored;
// the caller appends again with AppendOwnedFrom, with the same arguments.
var ErrRetry = errors.New("engine: append not acknowledged: append again")

// ackPendingMsgs and ackPendingBytes bound the acknowledgements the acks
// subscription holds for its goroutine; one dropped (a slow consumer) is
// an attempt without an answer: ErrRetry after its time.
const (
	ackPendingMsgs  = 1 << 16
	ackPendingBytes = 16 << 20
)

// ackSweep is how often attempts past their time are failed (ErrRetry).
const ackSweep = 250 * time.Millisecond

// acks is the engine's table of appends waiting for their
// acknowledgement. Its lock is taken alone.
type acks struct {
	prefix string // the reply subjects' prefix: <inbox>.
	sub    *nats.Subscription

	mu      sync.Mutex
	next    uint64                 // guarded by mu: the last token given
	pending map[uint64]*pendingAck // guarded by mu: by token
	closed  bool                   // guarded by mu: the engine is closing: nothing more is taken
}

// pendingAck is one append waiting for its acknowledgement.
type pendingAck struct {
	done     func(seq uint64, err error)
	deadline time.Time // when the attempt is given up (ErrRetry)
}

// startAcks subscribes the engine's reply subjects (Start).
func (e *Engine) startAcks() error {
	e.acks.prefix = e.nc.NewRespInbox() + "."
	e.acks.pending = make(map[uint64]*pendingAck)
	sub, err := e.nc.Subscribe(e.acks.prefix+"*", e.onAck)
	if err != nil {
		return fmt.Errorf("engine: acknowledgements subscription: %w", err)
	}
	_ = sub.SetPendingLimits(ackPendingMsgs, ackPendingBytes)
	e.acks.sub = sub
	return nil
}

// AppendOwnedAsync is AppendOwnedFrom without a wait: it publishes the
// append and returns; done is called once, on another goroutine (never
// the caller's: it may hold the locks done takes): with the event's sequence, or
// with ErrRetry (the caller then calls AppendOwnedFrom with the same
// arguments, which tells a stored append by its msgID). done must not
// block: it runs on the goroutine that hands every append's answer. An
// error returned (the engine closed or not connected, the lease or the
// ownership not valid, an argument refused) means nothing was published
// and done will not be called: the caller goes the waiting way at once.
func (e *Engine) AppendOwnedAsync(own Ownership, expectedLastSeq uint64, msgID, origin string, data []byte, done func(seq uint64, err error)) error {
	if err := e.checkOwned(own); err != nil {
		return err
	}
	if err := e.checkEvent(data, origin); err != nil {
		return err
	}
	switch {
	case msgID == "" || !validMsgID(msgID):
		return errors.New("engine: msgID empty, too long or not one line")
	case e.closed.Load():
		return ErrClosed
	case !e.LeaseValid():
		return fmt.Errorf("%w (node lease not valid)", ErrFenced)
	case e.nc.Status() != nats.CONNECTED:
		return fmt.Errorf("engine: not connected (%s)", e.nc.Status())
	}
	sn, err := e.names(own.SID)
	if err != nil {
		return err
	}
	m := asyncMsg(sn, own.SID, expectedLastSeq, msgID, data, origin)
	defer releaseAsyncMsg(m)
	e.acks.mu.Lock()
	if e.acks.closed {
		e.acks.mu.Unlock()
		return ErrClosed
	}
	e.acks.next++
	tok := e.acks.next
	e.acks.pending[tok] = &pendingAck{done: done, deadline: time.Now().Add(min(e.cfg.OpTimeout, attemptTimeout))}
	e.acks.mu.Unlock()
	m.Reply = e.acks.prefix + strconv.FormatUint(tok, 36)
	if err := e.nc.PublishMsg(m); err != nil {
		if e.takeAck(tok) == nil {
			// The sweep or Close failed it already: done was called.
			return nil
		}
		return fmt.Errorf("engine: append: %w", err)
	}
	return nil
}

// takeAck removes and returns the append waiting under tok; nil when
// there is none (answered, or failed by the sweep).
func (e *Engine) takeAck(tok uint64) *pendingAck {
	e.acks.mu.Lock()
	defer e.acks.mu.Unlock()
	p := e.acks.pending[tok]
	delete(e.acks.pending, tok)
	return p
}

// onAck runs on the acks subscription's goroutine: it hands an
// acknowledgement to its append's done.
func (e *Engine) onAck(m *nats.Msg) {
	tok, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, e.acks.prefix), 36, 64)
	if err != nil {
		return
	}
	p := e.takeAck(tok)
	if p == nil {
		return // late: the sweep failed it
	}
	// A duplicate (stored before, within the window) also has its
	// sequence; any other answer is for the waiting way to read.
	if seq, err := decodeAck(m.Data); err == nil {
		p.done(seq, nil)
		return
	}
	p.done(0, ErrRetry)
}

// sweepAcks fails the appends past their time with ErrRetry, every
// ackSweep until stop is closed, and then every append still waiting
// (with ErrRetry: the caller's own append then finds the engine closed).
// Owned by the engine (Start, Close).
func (e *Engine) sweepAcks(stop <-chan struct{}) {
	t := time.NewTicker(ackSweep)
	defer t.Stop()
	var late []*pendingAck
	for {
		closing := false
		select {
		case <-t.C:
		case <-stop:
			closing = true
		}
		now := time.Now()
		e.acks.mu.Lock()
		for tok, p := range e.acks.pending {
			if closing || now.After(p.deadline) {
				late = append(late, p)
				delete(e.acks.pending, tok)
			}
		}
		e.acks.closed = closing
		e.acks.mu.Unlock()
		for i, p := range late {
			p.done(0, ErrRetry)
			late[i] = nil
		}
		late = late[:0]
		if closing {
			return
		}
	}
}

// asyncMsgs recycles AppendOwnedAsync's messages, headers included:
// nats.go copies a message into its write buffer before PublishMsg
// returns and keeps nothing of it (a retry, the waiting way, builds its
// own with appendMsg). Each append made a message, a header map and its
// value slices (≈ 600 bytes, a fifth of an embedded append's).
var asyncMsgs = sync.Pool{New: func() any { return &nats.Msg{Header: make(nats.Header, 4)} }}

// asyncMsg is appendMsg (with no owner marker) on a recycled message; the
// caller gives it back with releaseAsyncMsg once published.
func asyncMsg(sn streamNames, sid SID, expected uint64, msgID string, data []byte, origin string) *nats.Msg {
	return fillAppendMsg(asyncMsgs.Get().(*nats.Msg), sn, sid, expected, msgID, data, "", origin)
}

// releaseAsyncMsg gives m back to asyncMsgs, holding on to no caller's
// bytes.
func releaseAsyncMsg(m *nats.Msg) {
	m.Subject, m.Reply, m.Data = "", "", nil
	asyncMsgs.Put(m)
}
