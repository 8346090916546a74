package session

import (
	"errors"

	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// Errors for the HTTP layer to branch on with errors.Is.
var (
	// ErrOverloaded: the pool is full (MaxSessions) or the session has
	// MaxInFlight calls running. Retry later (503).
	ErrOverloaded = errors.New("session: overloaded")
	// ErrDraining: the pool is shutting down; no new sessions, and open
	// streams end with it.
	ErrDraining = errors.New("session: draining")
	// ErrSessionClosed: the session ended (Disconnect, idle eviction, the
	// upstream refused to take it back). Acquire again for a fresh one.
	ErrSessionClosed = errors.New("session: closed")
	// ErrTooManySubscribers: the session has MaxSubscribers streams open.
	ErrTooManySubscribers = errors.New("session: too many subscribers")
	// ErrBadCursor: a history cursor that this gateway did not issue for
	// this chat (malformed, forged, or of another chat).
	ErrBadCursor = errors.New("session: bad history cursor")
	// ErrSlowSubscriber: a subscriber fell SubscriberBuffer events behind
	// and was cut off; it can resume with its last event id.
	ErrSlowSubscriber = errors.New("session: subscriber too slow")
	// ErrBadRating: SendRating's value is neither "good" nor "bad" (it is
	// op.ErrBadRating, an *op.ArgError).
	ErrBadRating = op.ErrBadRating
)
