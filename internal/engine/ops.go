package engine

import (
	"context"
	"errors"
	"fmt"
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

// Serve subscribes the owner to the session's operations subject
// cgw.op.<sid> (core request/reply, no queue group: one owner). handler
// runs on the subscription's goroutine, one request at a time; it may hand
// the Request to another goroutine and Respond from there.
func (e *Engine) Serve(sid SID, handler func(Request)) (*Subscription, error) {
	if !sid.Valid() {
		return nil, fmt.Errorf("engine: invalid sid %q", sid)
	}
	sub, err := e.nc.Subscribe(opSubject(sid), func(m *nats.Msg) {
		handler(Request{Data: m.Data, msg: m})
	})
	if err != nil {
		return nil, fmt.Errorf("engine: serve: %w", err)
	}
	_ = sub.SetPendingLimits(1024, 64<<20)
	return &Subscription{sub: sub}, nil
}

func opSubject(sid SID) string { return "cgw.op." + string(sid) }

// Request sends payload to the session's owner and returns its answer,
// bounded by ctx (OpTimeout without a deadline). ErrNoOwner: nobody serves
// the session (the caller takes it over with Own).
func (e *Engine) Request(ctx context.Context, sid SID, payload []byte) ([]byte, error) {
	if !sid.Valid() {
		return nil, fmt.Errorf("engine: invalid sid %q", sid)
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	m, err := e.nc.RequestWithContext(ctx, opSubject(sid), payload)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, ErrNoOwner
	}
	if err != nil {
		return nil, fmt.Errorf("engine: request: %w", err)
	}
	return m.Data, nil
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
