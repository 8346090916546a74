package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// customerIDHeader names the customer id that came with the token from
// chat.io's customer auth (getToken().entityId). chat.io 0.5 answers login
// with {}, so without it the gateway cannot know the id the SDK emits as
// customer_id. It is only ever echoed back (customer_id, GET /v1/session),
// never used to authorise anything; session.Pool.AcquireAs says which id
// a session keeps when several sources tell one.
const customerIDHeader = "X-Customer-Id"

// customerIDKey is the request context key of a well-formed X-Customer-Id.
type customerIDKey struct{}

// customerIDOf returns the X-Customer-Id that withCustomerID put in ctx
// ("" when the request had none).
func customerIDOf(ctx context.Context) string {
	id, _ := ctx.Value(customerIDKey{}).(string)
	return id
}

// contextWithCustomerID is ctx carrying id for acquire; ctx itself when id
// is "".
func contextWithCustomerID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, customerIDKey{}, id)
}

// withCustomerID checks the request's X-Customer-Id and returns r with it
// in its context, for acquire; r itself when there is none. Malformed → 400
// INVALID_ARGS.
func withCustomerID(r *http.Request) (*http.Request, error) {
	id, err := customerIDFromHeader(r.Header)
	if err != nil || id == "" {
		return r, err
	}
	return r.WithContext(contextWithCustomerID(r.Context(), id)), nil
}

// customerIDFromHeader returns the X-Customer-Id of h: "" when it is
// absent or empty; an INVALID_ARGS error when it is given more than once,
// is over session.MaxCustomerIDLen bytes, is not UTF-8 or holds a control
// character.
func customerIDFromHeader(h http.Header) (string, error) {
	vs := h.Values(customerIDHeader)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidArgs("X-Customer-Id must be given once")
	}
	id := vs[0]
	if len(id) > session.MaxCustomerIDLen {
		return "", invalidArgs("X-Customer-Id must be at most " + strconv.Itoa(session.MaxCustomerIDLen) + " bytes")
	}
	if !validCustomerID(id) {
		return "", invalidArgs("X-Customer-Id must be UTF-8 text without control characters")
	}
	return id, nil
}

// validCustomerID: valid UTF-8 without control characters (C0, DEL, C1).
func validCustomerID(id string) bool {
	for i := 0; i < len(id); {
		c := id[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(id[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsControl(r) {
			return false
		}
		i += n
	}
	return true
}
