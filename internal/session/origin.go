package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// Origin tags the events of a call made by a client instance (a tab), so
// that each stream opened with an instance gets what that instance's SDK
// would emit (Admits). A call's result gives two sets of events: those the
// calling SDK emits (user_data and thread_summary of startChat or of a
// lookup such as getChatThreads or a history page), and those the
// customer's other tabs see of its result push (the new_event of a
// send_event, say, with the push's own user_data and thread_summary). The
// calling instance resolves its call and emits only the first; another
// instance emits only the second. A stream opened without an instance gets
// what it always got: the first set, and the second less its user_data and
// thread_summary (the first set has them). 0: no origin (a push, a call
// made without an instance): every stream gets the event.
//
// The low 62 bits are a hash of the instance id the client sent (OriginOf):
// bounded, and the same on every replica, so that it can travel with a
// forwarded call and live with the event in the engine's log; the top two
// bits say which of the streams get the event (originOwn, originOthers;
// neither: every stream but the instance's own).
type Origin uint64

const (
	// originOwn: the event is what the calling instance's SDK emits for
	// its own call: its own streams and the streams without an instance
	// get it, other instances' do not.
	originOwn Origin = 1 << 63
	// originOthers: the event is what the other instances' SDKs emit of
	// the call's result push and the calling instance's already has
	// (user_data, thread_summary): only streams of other instances get
	// it.
	originOthers Origin = 1 << 62
	originKind          = originOwn | originOthers
)

// Admits reports whether a stream opened by the instance of Origin stream
// (0: without an instance) gets an event tagged o.
func (o Origin) Admits(stream Origin) bool {
	id := o &^ originKind
	switch {
	case o == 0:
		return true
	case o&originOwn != 0:
		return stream == 0 || stream == id
	case o&originOthers != 0:
		return stream != 0 && stream != id
	default:
		return stream != id
	}
}

// MaxInstanceLen bounds a client instance id (X-Client-Instance).
const MaxInstanceLen = 128

// OriginOf is the Origin of the client instance id; 0 for "".
func OriginOf(instance string) Origin {
	if instance == "" {
		return 0
	}
	h := sha256.Sum256([]byte(instance))
	o := Origin(binary.BigEndian.Uint64(h[:8])) &^ originKind
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
