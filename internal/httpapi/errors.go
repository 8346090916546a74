package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"go.uber.org/zap"
)

// Error codes of the contract (API.md, "Errors").
const (
	CodeInvalidArgs    = "INVALID_ARGS"
	CodeAuthentication = "AUTHENTICATION"
	CodeRequestFailed  = "REQUEST_FAILED"
	CodeConnectionLost = "CONNECTION_LOST"
	CodeTimeout        = "TIMEOUT"
	CodeOverloaded     = "OVERLOADED"
	CodeInternal       = "INTERNAL"
)

// errorBody is the JSON of every error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Type    string `json:"type,omitempty"`
}

// apiError is an error the gateway itself decides on (bad input, bad
// bearer, bad ticket, full stream table).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalidArgs(msg string) error { return &apiError{http.StatusBadRequest, CodeInvalidArgs, msg} }

func tooLarge(msg string) error {
	return &apiError{http.StatusRequestEntityTooLarge, CodeInvalidArgs, msg}
}

func unauthenticated(msg string) error {
	return &apiError{http.StatusUnauthorized, CodeAuthentication, msg}
}

func overloaded(msg string) error {
	return &apiError{http.StatusServiceUnavailable, CodeOverloaded, msg}
}

// acquireError marks an error of Pool.Acquire: one that no other family
// claims (a failed dial) means the upstream cannot be reached.
type acquireError struct{ err error }

func (e *acquireError) Error() string { return e.err.Error() }
func (e *acquireError) Unwrap() error { return e.err }

// fileTooBigMessage is the SDK's reason for a file over the limit.
const fileTooBigMessage = "The file is too big (max size is 10.00 MB)."

// classify maps err, the failure of r, to the status, body and Retry-After
// need of the contract. It is the one place error families become HTTP.
//
// A REST call whose body did not arrive whole is 408 TIMEOUT (not in time)
// or 400 INVALID_ARGS (cut short), whatever its handler made of the failed
// read (timedBody). A canceled context is 503 CONNECTION_LOST with
// Retry-After, never a status outside the contract: a REST call's context
// is not canceled with its request (bounded), so it is an event stream's
// client that left (no one reads the answer) or the gateway that ended the
// work.
func classify(r *http.Request, err error) (status int, body errorBody, retry bool) {
	switch bodyState(r) {
	case bodyTimedOut:
		return http.StatusRequestTimeout, errorBody{Code: CodeTimeout, Message: "the request body did not arrive in time"}, false
	case bodyBroken:
		return http.StatusBadRequest, errorBody{Code: CodeInvalidArgs, Message: "could not read the request body"}, false
	}
	var (
		rl  *session.RateLimitError
		ae  *apiError
		arg *op.ArgError
		au  *chatio.AuthError
		re  *chatio.RequestError
		mbe *http.MaxBytesError
		acq *acquireError
	)
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, errorBody{Code: CodeRequestFailed, Type: chatio.ErrTypeTooManyRequests,
			Message: "too many requests for this access token; retry later"}, true
	case errors.As(err, &ae):
		return ae.status, errorBody{Code: ae.code, Message: ae.message}, ae.status == http.StatusServiceUnavailable
	case errors.As(err, &arg):
		return http.StatusBadRequest, errorBody{Code: CodeInvalidArgs, Message: arg.Message}, false
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{Code: CodeInvalidArgs,
			Message: "request body too large (max " + strconv.FormatInt(mbe.Limit, 10) + " bytes)"}, false
	case errors.Is(err, chatio.ErrFileTooLarge):
		return http.StatusRequestEntityTooLarge, errorBody{Code: CodeInvalidArgs, Message: fileTooBigMessage}, false
	case errors.As(err, &au):
		msg := au.Message
		if msg == "" {
			msg = "authentication failed"
		}
		return http.StatusUnauthorized, errorBody{Code: CodeAuthentication, Message: msg}, false
	case errors.Is(err, chatio.ErrAuthentication):
		return http.StatusUnauthorized, errorBody{Code: CodeAuthentication, Message: "authentication failed"}, false
	case errors.As(err, &re):
		st := http.StatusBadGateway
		switch re.Type {
		case chatio.ErrTypeValidation:
			st = http.StatusBadRequest
		case chatio.ErrTypeNotFound:
			st = http.StatusNotFound
		case chatio.ErrTypeTooManyRequests:
			st = http.StatusTooManyRequests
		}
		msg := re.Message
		if msg == "" { // the upstream said nothing: still say what failed
			msg = "chat.io refused " + re.Action + " (" + re.Type + ")"
		}
		// chat.io's own rate limit gives no hint: the client gets the
		// gateway's, as with every 429 (the contract's Retry-After).
		return st, errorBody{Code: CodeRequestFailed, Message: msg, Type: re.Type}, st == http.StatusTooManyRequests
	case errors.Is(err, session.ErrBadCursor):
		return http.StatusBadRequest, errorBody{Code: CodeInvalidArgs, Message: "invalid history cursor"}, false
	case errors.Is(err, session.ErrOverloaded), errors.Is(err, session.ErrTooManySubscribers):
		return http.StatusServiceUnavailable, errorBody{Code: CodeOverloaded, Message: "too many requests or streams for this session or gateway; retry later"}, true
	case errors.Is(err, session.ErrEngine):
		return http.StatusServiceUnavailable, errorBody{Code: CodeOverloaded, Message: "the cluster engine is unavailable; retry later"}, true
	case errors.Is(err, session.ErrElsewhere):
		return http.StatusServiceUnavailable, errorBody{Code: CodeOverloaded, Message: "this customer's session is held by another replica; retry later"}, true
	case errors.Is(err, session.ErrDraining):
		return http.StatusServiceUnavailable, errorBody{Code: CodeOverloaded, Message: "the gateway is shutting down; retry later"}, true
	case errors.Is(err, chatio.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, errorBody{Code: CodeTimeout, Message: "no answer from chat.io in time"}, false
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, errorBody{Code: CodeConnectionLost, Message: "the request was canceled before it completed; retry later"}, true
	case errors.Is(err, chatio.ErrConnectionLost), errors.Is(err, chatio.ErrClosed),
		errors.Is(err, session.ErrSessionClosed), errors.As(err, &acq):
		return http.StatusServiceUnavailable, errorBody{Code: CodeConnectionLost, Message: "connection to chat.io lost; retry later"}, true
	}
	return http.StatusInternalServerError, errorBody{Code: CodeInternal, Message: "internal error"}, false
}

// writeError answers err as the contract says and logs it: our own failures
// (500) at error, upstream refusals (502) at warn, the rest at debug.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body, retry := classify(r, err)
	log := s.log.With(zap.String("request_id", requestID(r.Context())), zap.Int("status", status), zap.String("code", body.Code))
	switch {
	case status == http.StatusInternalServerError:
		log.Error("request failed", zap.Error(err))
	case status == http.StatusBadGateway:
		log.Warn("upstream refused the request", zap.Error(err))
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		log.Debug("client went away", zap.Error(err))
	default:
		log.Debug("request refused", zap.Error(err))
	}
	if retry {
		var rl *session.RateLimitError
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", rl.RetryAfter())
		} else {
			w.Header().Set("Retry-After", s.retryAfter)
		}
	}
	writeJSON(w, status, body)
}
