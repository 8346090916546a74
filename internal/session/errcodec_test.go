package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// TestErrorCodec: an SDK call's error that crossed JSON answers errors.Is
// for every known sentinel and errors.As for every known error type as
// the original does, with the same message: what the HTTP layer maps
// (request errors with their type and message, authentication, timeout,
// connection lost, overloaded, bad input) is mapped the same on the
// receiving side.
func TestErrorCodec(t *testing.T) {
	errs := []error{
		&chatio.RequestError{Action: chatio.ActionSendEvent, Type: chatio.ErrTypeValidation, Message: "text too long"},
		fmt.Errorf("wrapped: %w", &chatio.RequestError{Action: chatio.ActionStartChat, Type: chatio.ErrTypeNotFound}),
		&chatio.AuthError{Message: "token expired"},
		chatio.ErrAuthentication,
		fmt.Errorf("%w: %s: %w", chatio.ErrTimeout, chatio.ActionSendEvent, context.DeadlineExceeded),
		fmt.Errorf("%w: %w: %v", chatio.ErrTimeout, chatio.ErrConnectionLost, "no pong"),
		fmt.Errorf("chatio: %s: %w", chatio.ActionCloseThread, context.Canceled),
		&chatio.DisconnectedError{Reason: "too_many_connections", Retry: false},
		chatio.ErrConnectionLost,
		chatio.ErrClosed,
		chatio.ErrFileTooLarge,
		ErrOverloaded, ErrDraining, ErrSessionClosed, ErrTooManySubscribers, ErrBadCursor, ErrBadRating,
		&op.ArgError{Message: "type is required"},
		&RateLimitError{Wait: 1500 * time.Millisecond},
		errors.New("something else"),
	}
	for _, err := range errs {
		b, e := EncodeError(err)
		if e != nil {
			t.Fatalf("%v: %v", err, e)
		}
		got := DecodeError(b)
		if got == nil || got.Error() != err.Error() {
			t.Errorf("%s: decoded %v, want message %q", b, got, err.Error())
			continue
		}
		for _, s := range knownSentinels {
			if errors.Is(got, s.err) != errors.Is(err, s.err) {
				t.Errorf("%s: errors.Is(%s) = %v, want %v", b, s.name, errors.Is(got, s.err), errors.Is(err, s.err))
			}
		}
		checkAs[*chatio.RequestError](t, b, err, got)
		checkAs[*chatio.AuthError](t, b, err, got)
		checkAs[*chatio.DisconnectedError](t, b, err, got)
		checkAs[*op.ArgError](t, b, err, got)
		checkAs[*RateLimitError](t, b, err, got)
		// it survives being encoded again
		b2, _ := EncodeError(got)
		if string(b2) != string(b) {
			t.Errorf("second encoding %s, want %s", b2, b)
		}
	}
	if b, _ := EncodeError(nil); DecodeError(b) != nil {
		t.Errorf("nil → %s → %v", b, DecodeError(b))
	}
	if err := DecodeError([]byte(`{`)); err == nil {
		t.Error("undecodable error → nil")
	}
}

func checkAs[T error](t *testing.T, b json.RawMessage, want, got error) {
	t.Helper()
	var w, g T
	wok, gok := errors.As(want, &w), errors.As(got, &g)
	if wok != gok || wok && !reflect.DeepEqual(w, g) {
		t.Errorf("%s: errors.As(%T) = %v %+v, want %v %+v", b, w, gok, g, wok, w)
	}
}
