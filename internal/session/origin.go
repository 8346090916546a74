package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// Origin tags the events that a call's result adds to the log for the
// customer's other tabs (sdk.ResultPushEvents: the new_event of a
// send_event, say) with the client instance that made the call. An SDK
// instance resolves its own calls and does not emit those events, so a
// stream opened by the same instance leaves them out (httpapi); every other
// stream gets them. 0: no origin (a push, the events an SDK instance emits
// for its own call, a call made without an instance).
//
// It is a hash of the instance id the client sent (OriginOf): bounded, and
// the same on every replica, so that it can travel with a forwarded call
// and live with the event in the engine's log.
type Origin uint64

// MaxInstanceLen bounds a client instance id (X-Client-Instance).
const MaxInstanceLen = 128

// OriginOf is the Origin of the client instance id; 0 for "".
func OriginOf(instance string) Origin {
	if instance == "" {
		return 0
	}
	h := sha256.Sum256([]byte(instance))
	o := Origin(binary.BigEndian.Uint64(h[:8]))
	if o == 0 {
		o = 1
	}
	return o
}

// String is o in hex, as the engine's log keeps it ("" for 0).
func (o Origin) String() string {
	if o == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(o), 16)
}

// parseOrigin is String's inverse; 0 for anything else.
func parseOrigin(v string) Origin {
	if v == "" || len(v) > 16 {
		return 0
	}
	n, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return 0
	}
	return Origin(n)
}

type originKey struct{}

// WithOrigin returns ctx carrying o for the SDK calls made with it: their
// results' events for the other tabs are tagged with o. ctx itself for 0.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	if o == 0 {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom is the Origin WithOrigin put in ctx (0 without one).
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}
