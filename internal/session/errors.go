package session

import (
	"errors"
	"math"
	"strconv"
	"time"

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
	// ErrEngine: cluster mode only: the cluster engine could not be
	// reached, or this replica's lease is not valid (fenced) while it would
	// have to take the session over. Retry later (503).
	ErrEngine = errors.New("session: cluster engine unavailable")
	// ErrElsewhere: cluster mode only: the session is held by another
	// replica, and what was asked (an event stream, for now) is served only
	// where the session is. Retry later (503).
	ErrElsewhere = errors.New("session: held by another replica")
	// ErrBadRating: SendRating's value is neither "good" nor "bad" (it is
	// op.ErrBadRating, an *op.ArgError).
	ErrBadRating = op.ErrBadRating
)

// RateLimitError is a request refused by the customer's rate limit: by the
// HTTP layer's limiter of the replica that received it, or, for a call
// forwarded to the session's owner, by the owner's (Pool.SetCallLimit).
// Wait is how long until the limit lets the next request through.
type RateLimitError struct {
	Wait time.Duration `json:"wait"`
}

func (e *RateLimitError) Error() string {
	return "rate limit: retry in " + e.Wait.String()
}

// RetryAfter is Wait as a Retry-After value: whole seconds, at least 1.
func (e *RateLimitError) RetryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.Wait.Seconds()))))
}
