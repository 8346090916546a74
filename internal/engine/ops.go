package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Request is an operation sent to a session's owner.
type Request struct {
	Data []byte
	msg  *nats.Msg
}

// Respond answers the request (once).
func (r Request) Respond(data []byte) error { return r.msg.Respond(data) }

// Headers of a request to a session's owner (on its node's subject).
const (
	hdrSID   = "Cgw-Sid"   // the session the request is for
	hdrEpoch = "Cgw-Epoch" // the owner record's epoch
	// hdrNotOwner answers a request for a session the node does not serve
	// (under that epoch): the caller's ErrNoOwner, as "no responders".
	hdrNotOwner = "Cgw-Not-Owner"
	// hdrKeep marks a Keep: a batch of sessions, not one session's request.
	hdrKeep = "Cgw-Keep"
)

// MaxKeep bounds the sessions of one Keep (27 bytes each on the wire).
const MaxKeep = 1024

// Bounds of the node's operations subscription queue: requests wait there
// for the one goroutine that hands them to their session's handler.
const (
	opsPendingMsgs  = 64 << 10
	opsPendingBytes = 256 << 20
)

// opsTable is what a node serves: one operations subscription per node
// (cgw.op.<node>, made by Start), whose one nats.go goroutine hands each
// request to its session's handler (Serve), or answers "not the owner".
type opsTable struct {
	mu sync.RWMutex
	m  map[SID]*opsEntry
}

// opsEntry is one Serve registration.
type opsEntry struct {
	fn   func(Request)
	keep func() (uint64, bool) // nil: Keep answers "not served"
}

func nodeSubject(node string) string { return "cgw.op." + node }

// serveNode subscribes the node's operations subject (Start).
func (e *Engine) serveNode() error {
	e.ops.m = make(map[SID]*opsEntry)
	sub, err := e.nc.Subscribe(nodeSubject(e.cfg.NodeID), e.dispatchOp)
	if err != nil {
		return fmt.Errorf("engine: operations subscription: %w", err)
	}
	_ = sub.SetPendingLimits(opsPendingMsgs, opsPendingBytes)
	return nil
}

// dispatchOp runs on the operations subscription's goroutine: it hands a
// request to the handler of its session when this node serves it under
// the epoch the caller read in the owner record, and answers "not the
// owner" otherwise.
func (e *Engine) dispatchOp(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	if m.Header.Get(hdrKeep) != "" {
		e.keepBatch(m)
		return
	}
	sid := SID(m.Header.Get(hdrSID))
	var ent *opsEntry
	if m.Header.Get(hdrEpoch) == e.epoch() {
		e.ops.mu.RLock()
		ent = e.ops.m[sid]
		e.ops.mu.RUnlock()
	}
	if ent == nil {
		r := nats.NewMsg(m.Reply)
		r.Header.Set(hdrNotOwner, "1")
		_ = e.nc.PublishMsg(r)
		return
	}
	ent.fn(Request{Data: m.Data, msg: m})
}

// Serve makes this node answer the requests other replicas send to the
// session's owner (Request), once it holds the session's owner record
// (Own): they reach the node's operations subject cgw.op.<node> (core
// request/reply) and are handed to handler, which runs on the node's one
// operations goroutine, one request at a time for every session of the
// node: it must not block (it hands the Request to another goroutine and
// Responds from there). keep (nil: none) answers the session's part of a
// Keep, on the same goroutine, and must not block either: the log's last
// sequence as the owner knows it, and whether it serves the session. One
// handler per session: a second Serve of the same sid replaces the first.
// Stop or Drain ends it.
func (e *Engine) Serve(sid SID, handler func(Request), keep func() (uint64, bool)) (*Subscription, error) {
	if !sid.Valid() {
		return nil, fmt.Errorf("engine: invalid sid %q", sid)
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	ent := &opsEntry{fn: handler, keep: keep}
	e.ops.mu.Lock()
	e.ops.m[sid] = ent
	e.ops.mu.Unlock()
	return &Subscription{stop: func() {
		e.ops.mu.Lock()
		if e.ops.m[sid] == ent {
			delete(e.ops.m, sid)
		}
		e.ops.mu.Unlock()
	}}, nil
}

// Request sends payload to the session's owner and returns its answer,
// bounded by ctx (OpTimeout without a deadline): it reads the session's
// owner record and sends to that node's operations subject. ErrNoOwner:
// nobody serves the session (no record, no node there to answer, or the
// node does not serve it under the recorded epoch): the caller takes it
// over with Own.
func (e *Engine) Request(ctx context.Context, sid SID, payload []byte) ([]byte, error) {
	if !sid.Valid() {
		return nil, fmt.Errorf("engine: invalid sid %q", sid)
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	ent, err := e.owner.Get(ctx, string(sid))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNoOwner
	}
	if err != nil {
		return nil, fmt.Errorf("engine: request: owner record: %w", err)
	}
	rec := parseOwner(ent.Value())
	if !validToken(rec.node) {
		return nil, ErrNoOwner
	}
	return e.askNode(ctx, "request", rec, hdrSID, string(sid), payload)
}

// askNode sends payload to rec's node (its operations subject) under
// rec's epoch, with the header key: value, and returns the answer.
// ErrNoOwner: no node there ("no responders"), or it answered "not the
// owner" (another epoch, or no such session).
func (e *Engine) askNode(ctx context.Context, what string, rec ownerRec, key, value string, payload []byte) ([]byte, error) {
	msg := nats.NewMsg(nodeSubject(rec.node))
	msg.Header.Set(key, value)
	msg.Header.Set(hdrEpoch, rec.epoch)
	msg.Data = payload
	m, err := e.nc.RequestMsgWithContext(ctx, msg)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, ErrNoOwner
	}
	if err != nil {
		return nil, fmt.Errorf("engine: %s: %w", what, err)
	}
	if m.Header.Get(hdrNotOwner) != "" {
		return nil, ErrNoOwner
	}
	return m.Data, nil
}

// Keep asks the node of owner (an OwnerID of sessions that node owned) about
// sids (at most MaxKeep) in one request: for each, in order, the log's
// last sequence as that node knows it, or 0 when it does not serve the
// session under that incarnation. The node's keep functions (Serve) run,
// which keep the sessions alive there. ErrNoOwner: nobody answers for that
// incarnation (the node is gone, restarted, or not connected).
func (e *Engine) Keep(ctx context.Context, owner string, sids []SID) ([]uint64, error) {
	rec := parseOwner([]byte(owner))
	if !validToken(rec.node) || rec.epoch == "" {
		return nil, fmt.Errorf("engine: keep: invalid owner %q", owner)
	}
	if len(sids) == 0 || len(sids) > MaxKeep {
		return nil, fmt.Errorf("engine: keep: %d sessions (1 to %d)", len(sids), MaxKeep)
	}
	b := make([]byte, 0, len(sids)*(sidLen+1))
	for _, sid := range sids {
		if !sid.Valid() {
			return nil, fmt.Errorf("engine: invalid sid %q", sid)
		}
		b = append(append(b, sid...), '\n')
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	answer, err := e.askNode(ctx, "keep", rec, hdrKeep, "1", b)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, 0, len(sids))
	for f := range strings.FieldsSeq(string(answer)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("engine: keep: bad answer %q", f)
		}
		out = append(out, n)
	}
	if len(out) != len(sids) {
		return nil, fmt.Errorf("engine: keep: %d answers for %d sessions", len(out), len(sids))
	}
	return out, nil
}

// keepBatch answers a Keep on the operations goroutine: each session's
// keep function, or 0 for one this node does not serve (under the
// caller's epoch: another one answers "not the owner").
func (e *Engine) keepBatch(m *nats.Msg) {
	r := nats.NewMsg(m.Reply)
	if m.Header.Get(hdrEpoch) != e.epoch() {
		r.Header.Set(hdrNotOwner, "1")
		_ = e.nc.PublishMsg(r)
		return
	}
	var b []byte
	n := 0
	for f := range strings.FieldsSeq(string(m.Data)) {
		if n++; n > MaxKeep {
			break
		}
		var seq uint64
		e.ops.mu.RLock()
		ent := e.ops.m[SID(f)]
		e.ops.mu.RUnlock()
		if ent != nil && ent.keep != nil {
			if v, ok := ent.keep(); ok {
				seq = v
			}
		}
		b = append(strconv.AppendUint(b, seq, 10), '\n')
	}
	r.Data = b
	_ = e.nc.PublishMsg(r)
}

// Once bounds on ttl.
const (
	onceMinTTL = time.Second
)

// Once records id (a stream ticket, say) for ttl (at least 1s, at most
// 24h) and reports whether this call was the first to do so on any
// replica. The id is keyed with the cluster key before it reaches the
// engine.
func (e *Engine) Once(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ttl = min(max(ttl, onceMinTTL), onceMaxTTL)
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	key := e.keyed("once", id)
	// The value is a nonce: when a retried create finds the key, the
	// nonce tells whether the earlier attempt (its answer lost) made it.
	nonce := []byte(randomID())
	var first bool
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		_, err := e.once.Create(ctx, key, nonce, jetstream.KeyTTL(ttl))
		switch {
		case err == nil:
			first = true
			return nil
		case errors.Is(err, jetstream.ErrKeyExists):
			ent, gerr := e.once.Get(ctx, key)
			first = gerr == nil && string(ent.Value()) == string(nonce)
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("engine: once: %w", err)
	}
	return first, nil
}
