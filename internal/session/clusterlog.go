package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
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
// a goroutine of its own (run): the session logs them under Session.mu on
// the upstream read loop, which must not wait for the engine.
type logAppender struct {
	s    *Session
	eng  *engine.Engine
	own  engine.Ownership
	wake chan struct{} // capacity 1: something was queued, or close
	done chan struct{} // closed when run returns

	mu       sync.Mutex
	queue    []encoded // guarded by mu: not appended yet, oldest first
	closed   bool      // guarded by mu: no more events; run appends what is queued and returns
	overflow bool      // guarded by mu: an event was refused (maxLogQueue)
}

func newLogAppender(s *Session, eng *engine.Engine, own engine.Ownership) *logAppender {
	return &logAppender{s: s, eng: eng, own: own, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues one event (Session.appendLocked, under Session.mu).
func (a *logAppender) push(name string, data []byte) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	if len(a.queue) >= maxLogQueue {
		a.overflow = true
	} else {
		a.queue = append(a.queue, encoded{name, data})
	}
	a.mu.Unlock()
	a.signal()
}

func (a *logAppender) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// close lets run return once what is queued is appended (or fenced).
func (a *logAppender) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.signal()
}

// run appends the queued events in order until close, or until the log
// refuses them (fenced: the session ends and what is left is dropped).
// Run on a goroutine counted in Pool.wg; done is closed at its end.
func (a *logAppender) run() {
	defer close(a.done)
	last := a.own.LastSeq
	var n uint64 // events appended: their message ids
	for {
		a.mu.Lock()
		batch, closed, overflow := a.queue, a.closed, a.overflow
		a.queue = nil
		a.mu.Unlock()
		if overflow {
			a.drop(fmt.Errorf("%w: the engine did not take the session's events in time", ErrSessionClosed))
			return
		}
		for _, ev := range batch {
			n++
			seq, err := a.appendOne(last, n, ev)
			if err != nil {
				a.drop(fmt.Errorf("%w: appending to the log: %w", errFenced, err))
				return
			}
			last = seq
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			<-a.wake
		}
	}
}

// appendOne appends ev after last, retrying while the engine is
// unreachable: until it answers, or the lease runs out (ErrFenced).
func (a *logAppender) appendOne(last, n uint64, ev encoded) (uint64, error) {
	id := a.own.Epoch + "." + strconv.FormatUint(a.own.Revision, 10) + "." + strconv.FormatUint(n, 10)
	data := EncodeLogEvent(ev.name, ev.data)
	back := 20 * time.Millisecond
	for {
		seq, err := a.eng.AppendOwned(context.Background(), a.own, last, id, data)
		if err == nil {
			return seq, nil
		}
		if errors.Is(err, engine.ErrFenced) || errors.Is(err, engine.ErrClosed) {
			return 0, err
		}
		a.s.log.Info("log append failed; retrying", zap.Error(err))
		time.Sleep(back)
		back = min(2*back, 500*time.Millisecond)
	}
}

// drop ends the session (its socket closes) and forgets what is queued.
func (a *logAppender) drop(err error) {
	a.mu.Lock()
	a.closed = true
	a.queue = nil
	a.mu.Unlock()
	a.s.log.Warn("the session's log refused its events: session ends", zap.Error(err))
	a.s.stop(err, nil, nil)
}
