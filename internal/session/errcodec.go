package session

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// An SDK call's error crosses JSON (Run's caller on another replica) as
// what the receiving side branches on: the message, every known sentinel
// the error matches with errors.Is, and the fields of each known error
// type it holds (errors.As). DecodeError gives back an error that answers
// errors.Is and errors.As for those exactly as the original did; anything
// else about the original (its wrapping, an unknown type) is not kept.

// knownSentinels are the errors, by name, that an SDK call's error may
// match and that callers branch on.
var knownSentinels = []struct {
	name string
	err  error
}{
	{"chatio.authentication", chatio.ErrAuthentication},
	{"chatio.connection_lost", chatio.ErrConnectionLost},
	{"chatio.timeout", chatio.ErrTimeout},
	{"chatio.closed", chatio.ErrClosed},
	{"chatio.file_too_large", chatio.ErrFileTooLarge},
	{"chatio.stream_overflow", chatio.ErrStreamOverflow},
	{"session.overloaded", ErrOverloaded},
	{"session.draining", ErrDraining},
	{"session.closed", ErrSessionClosed},
	{"session.too_many_subscribers", ErrTooManySubscribers},
	{"session.bad_cursor", ErrBadCursor},
	{"session.slow_subscriber", ErrSlowSubscriber},
	{"session.engine", ErrEngine},
	{"session.elsewhere", ErrElsewhere},
	{"op.bad_rating", op.ErrBadRating},
	{"context.canceled", context.Canceled},
	{"context.deadline_exceeded", context.DeadlineExceeded},
}

// errorJSON is an error's JSON form.
type errorJSON struct {
	Message      string                    `json:"message"`
	Is           []string                  `json:"is,omitempty"`
	Request      *chatio.RequestError      `json:"request,omitempty"`
	Auth         *chatio.AuthError         `json:"auth,omitempty"`
	Disconnected *chatio.DisconnectedError `json:"disconnected,omitempty"`
	Arg          *op.ArgError              `json:"arg,omitempty"`
	Limit        *RateLimitError           `json:"limit,omitempty"`
}

// EncodeError is err as JSON (null for nil), for DecodeError on the other
// side.
func EncodeError(err error) (json.RawMessage, error) {
	if err == nil {
		return json.RawMessage("null"), nil
	}
	j := errorJSON{Message: err.Error()}
	for _, s := range knownSentinels {
		if errors.Is(err, s.err) {
			j.Is = append(j.Is, s.name)
		}
	}
	var (
		re *chatio.RequestError
		ae *chatio.AuthError
		de *chatio.DisconnectedError
		ar *op.ArgError
		rl *RateLimitError
	)
	if errors.As(err, &re) {
		j.Request = re
	}
	if errors.As(err, &ae) {
		j.Auth = ae
	}
	if errors.As(err, &de) {
		j.Disconnected = de
	}
	if errors.As(err, &ar) {
		j.Arg = ar
	}
	if errors.As(err, &rl) {
		j.Limit = rl
	}
	return json.Marshal(j)
}

// DecodeError is the error EncodeError wrote (nil for null): its Error is
// the original's message; errors.Is matches the same known sentinels and
// errors.As finds the same known error types, with the same fields.
func DecodeError(b []byte) error {
	var j *errorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return &RemoteError{Message: "session: undecodable error: " + err.Error()}
	}
	if j == nil {
		return nil
	}
	r := &RemoteError{Message: j.Message}
	for _, name := range j.Is {
		for _, s := range knownSentinels {
			if s.name == name {
				r.causes = append(r.causes, s.err)
			}
		}
	}
	if j.Request != nil {
		r.causes = append(r.causes, j.Request)
	}
	if j.Auth != nil {
		r.causes = append(r.causes, j.Auth)
	}
	if j.Disconnected != nil {
		r.causes = append(r.causes, j.Disconnected)
	}
	if j.Arg != nil {
		r.causes = append(r.causes, j.Arg)
	}
	if j.Limit != nil {
		r.causes = append(r.causes, j.Limit)
	}
	return r
}

// RemoteError is an error DecodeError gave back.
type RemoteError struct {
	Message string
	causes  []error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap is the known sentinels and typed errors the original matched.
func (e *RemoteError) Unwrap() []error { return e.causes }
