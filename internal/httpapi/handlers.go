package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// ---- sessions ----

// acquire returns the session of token, telling the pool the request's
// X-Customer-Id (in ctx: withCustomerID); its errors are marked as
// Acquire's (an unreachable upstream is CONNECTION_LOST).
func (s *Server) acquire(ctx context.Context, token string) (*session.Session, error) {
	sess, err := s.pool.AcquireAs(ctx, token, customerIDOf(ctx))
	if err != nil {
		return nil, &acquireError{err}
	}
	return sess, nil
}

// withSession runs fn with the token's session. A session that ended
// between Acquire and its use (ErrSessionClosed: nothing was sent) is
// acquired once more.
func (s *Server) withSession(ctx context.Context, token string, fn func(*session.Session) error) error {
	for attempt := 0; ; attempt++ {
		sess, err := s.acquire(ctx, token)
		if err != nil {
			return err
		}
		err = fn(sess)
		if attempt == 0 && errors.Is(err, session.ErrSessionClosed) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// call carries out one SDK method on the token's session with fn (the
// session's method for it, with arguments that passed their Validate), as
// withSession does, and records its upstream part (session.CallTrace)
// under the method's name (op.Method*): its outcome (what outcome makes of
// its error, when outcome is not nil) and duration.
func (s *Server) call(ctx context.Context, token, method string, fn func(context.Context, *session.Session) error, outcome func(error) error) error {
	traced := session.WithCallTrace(ctx, &session.CallTrace{Done: func(start time.Time, err error) {
		if outcome != nil {
			err = outcome(err)
		}
		s.m.observeCall(method, start, err)
	}})
	return s.withSession(ctx, token, func(sess *session.Session) error { return fn(traced, sess) })
}

// sdkCall validates a (an *op.ArgError, 400, before any session is
// acquired) and carries it out with fn, as call does: what the SDK method
// resolves to.
func sdkCall[A op.Args, R any](s *Server, r *http.Request, token string, a A, fn func(*session.Session, context.Context, A) (R, error)) (any, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if s.pool.Clustered() {
		return s.exec(r.Context(), token, a)
	}
	var res any
	err := s.call(r.Context(), token, a.Method(), func(ctx context.Context, sess *session.Session) error {
		v, err := fn(sess, ctx, a)
		res = v
		return err
	}, nil)
	return res, err
}

// exec carries out a (valid) in cluster mode: on the session's owner,
// wherever it is (session.Pool.Exec), recorded as call records it. The
// value is the JSON the SDK method resolves to.
func (s *Server) exec(ctx context.Context, token string, a op.Args) (any, error) {
	traced := session.WithCallTrace(ctx, &session.CallTrace{Done: func(start time.Time, err error) {
		s.m.observeCall(a.Method(), start, err)
	}})
	res, err := s.pool.Exec(traced, token, customerIDOf(ctx), op.Call{Args: a})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// restFunc is the shape of every REST handler: parse and check the input
// (errors here never reach upstream), then do the call. rest turns one into
// an http.HandlerFunc: bearer check first, then the rate limit and
// X-Customer-Id (put in the request's context for acquire), one error
// path, JSON answer.
type restFunc func(r *http.Request, token string) (status int, result any, err error)

func (s *Server) rest(fn restFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, err := bearer(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !s.limitRate(w, r, token) {
			return
		}
		if r, err = withCustomerID(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if r, err = withInstance(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		status, result, err := fn(r, token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, result)
	}
}

// ---- /v1/tickets, /v1/session, /v1/customer ----

func (s *Server) postTicket(r *http.Request, token string) (int, any, error) {
	// The token is checked (and its session opened) now, so that a bad
	// token fails here and not on the stream. The ticket is sealed, not
	// stored (tickets.go). In cluster mode the session may be another
	// replica's: it is checked (or opened) wherever it is.
	if s.pool.Clustered() {
		if _, err := s.pool.SessionInfo(r.Context(), token, customerIDOf(r.Context())); err != nil {
			return 0, nil, &acquireError{err}
		}
	} else if _, err := s.acquire(r.Context(), token); err != nil {
		return 0, nil, err
	}
	s.m.tickets.WithLabelValues("issued").Inc()
	return http.StatusOK, struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expiresIn"`
	}{s.tickets.seal(token, customerIDOf(r.Context()), s.cfg.TicketTTL), int(s.cfg.TicketTTL / time.Second)}, nil
}

func (s *Server) getSession(r *http.Request, token string) (int, any, error) {
	if s.pool.Clustered() {
		in, err := s.pool.SessionInfo(r.Context(), token, customerIDOf(r.Context()))
		if err != nil {
			return 0, nil, &acquireError{err}
		}
		return http.StatusOK, in, nil
	}
	sess, err := s.acquire(r.Context(), token)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		CustomerID string `json:"customerId"`
		Status     string `json:"status"`
	}{sess.CustomerID(), sess.Status()}, nil
}

// deleteSession ends the token's session, if it has one (one being
// opened is waited for); without one it answers 204 at once and dials
// nothing. Idempotent.
func (s *Server) deleteSession(r *http.Request, token string) (int, any, error) {
	if s.pool.Clustered() {
		start := time.Now()
		if err := s.pool.Disconnect(r.Context(), token); err != nil {
			return 0, nil, err
		}
		s.m.observeCall(op.MethodDisconnect, start, nil)
		return http.StatusNoContent, nil, nil
	}
	sess, err := s.pool.Lookup(r.Context(), token)
	if err != nil {
		return 0, nil, err
	}
	if sess != nil {
		start := time.Now()
		sess.Disconnect()
		s.m.observeCall(op.MethodDisconnect, start, nil)
	}
	return http.StatusNoContent, nil, nil
}

// updateCustomer: updateCustomer({name?, email?, fields?}), the object
// as given.
func (s *Server) updateCustomer(r *http.Request, token string) (int, any, error) {
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	res, err := sdkCall(s, r, token, op.UpdateCustomer{Customer: b.raw}, (*session.Session).UpdateCustomer)
	return http.StatusOK, res, err
}

// ---- chats ----

// startChat: startChat({scope?, events?, properties?}).
func (s *Server) startChat(r *http.Request, token string) (int, any, error) {
	b, err := objectBody(r, true)
	if err != nil {
		return 0, nil, err
	}
	a := op.StartChat{Scope: b.get("scope"), Events: b.get("events"), Properties: b.get("properties")}
	res, err := sdkCall(s, r, token, a, (*session.Session).StartChat)
	return http.StatusCreated, res, err
}

func (s *Server) getChatsSummary(r *http.Request, token string) (int, any, error) {
	q := r.URL.Query()
	offset, err := queryInt(q, "offset", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(q, "limit", op.DefaultChatsLimit)
	if err != nil {
		return 0, nil, err
	}
	res, err := sdkCall(s, r, token, op.GetChatsSummary{Offset: offset, Limit: limit}, (*session.Session).GetChatsSummary)
	return http.StatusOK, res, err
}

// getChatThreads: the ids query parameter holds thread ids, comma-separated
// (and may be given more than once).
func (s *Server) getChatThreads(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	a := op.GetChatThreads{ChatID: chat}
	for _, v := range r.URL.Query()["ids"] {
		for id := range strings.SplitSeq(v, ",") {
			a.ThreadIDs = append(a.ThreadIDs, id)
		}
	}
	res, err := sdkCall(s, r, token, a, (*session.Session).GetChatThreads)
	return http.StatusOK, res, err
}

func (s *Server) getChatThreadsSummary(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	offset, err := queryInt(q, "offset", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(q, "limit", op.DefaultThreadsLimit)
	if err != nil {
		return 0, nil, err
	}
	a := op.GetChatThreadsSummary{ChatID: chat, Offset: offset, Limit: limit}
	res, err := sdkCall(s, r, token, a, (*session.Session).GetChatThreadsSummary)
	return http.StatusOK, res, err
}

func (s *Server) getChatHistory(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	a := op.GetChatHistory{ChatID: chat, Cursor: r.URL.Query().Get("cursor")}
	res, err := sdkCall(s, r, token, a, (*session.Session).GetChatHistory)
	return http.StatusOK, res, err
}

// ---- events ----

func (s *Server) sendEvent(r *http.Request, token string) (int, any, error) {
	return s.postEvent(r, token, false)
}

// sendMessage is sendEvent(chat, {...message, type: "message"}).
func (s *Server) sendMessage(r *http.Request, token string) (int, any, error) {
	return s.postEvent(r, token, true)
}

// postEvent sends the body as the event of sendEvent; a message's type is
// "message" whatever the body says.
func (s *Server) postEvent(r *http.Request, token string, message bool) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	event := b.raw
	if message {
		b.obj.Set("type", json.RawMessage(`"message"`))
		if event, err = json.Marshal(b.obj); err != nil {
			return 0, nil, err
		}
	}
	res, err := sdkCall(s, r, token, op.SendEvent{ChatID: chat, Event: event}, (*session.Session).SendEvent)
	return http.StatusCreated, res, err
}

func (s *Server) sendRating(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	value, err := b.reqString("value")
	if err != nil {
		return 0, nil, err
	}
	comment, _, err := b.optString("comment")
	if err != nil {
		return 0, nil, err
	}
	a := op.SendRating{ChatID: chat, Value: value, Comment: comment}
	res, err := sdkCall(s, r, token, a, (*session.Session).SendRating)
	return http.StatusOK, res, err
}

// setSneakPeek answers 202 at once: the session throttles the upstream
// send_sneak_peek (at most one per chat per interval, the latest text wins).
func (s *Server) setSneakPeek(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	text, err := b.reqString("text")
	if err != nil {
		return 0, nil, err
	}
	a := op.SetSneakPeek{ChatID: chat, Text: text}
	if err := a.Validate(); err != nil {
		return 0, nil, err
	}
	if s.pool.Clustered() {
		if _, err := s.pool.Exec(r.Context(), token, customerIDOf(r.Context()), op.Call{Args: a}); err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, struct{}{}, nil
	}
	sess, err := s.acquire(r.Context(), token)
	if err != nil {
		return 0, nil, err
	}
	sess.SetSneakPeek(a.ChatID, a.Text)
	return http.StatusAccepted, struct{}{}, nil
}

func (s *Server) closeThread(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	res, err := sdkCall(s, r, token, op.CloseThread{ChatID: chat}, (*session.Session).CloseThread)
	return http.StatusOK, res, err
}

// propertiesBody is a body that is the properties object itself.
func propertiesBody(r *http.Request) (json.RawMessage, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if raw == nil || jsonobj.Kind(raw) != 'o' {
		return nil, invalidArgs("request body must be the properties object")
	}
	return raw, nil
}

func (s *Server) updateChatProperties(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	props, err := propertiesBody(r)
	if err != nil {
		return 0, nil, err
	}
	a := op.UpdateChatProperties{ChatID: chat, Properties: props}
	res, err := sdkCall(s, r, token, a, (*session.Session).UpdateChatProperties)
	return http.StatusOK, res, err
}

func (s *Server) updateChatThreadProperties(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	thread, err := pathParam(r, "thread")
	if err != nil {
		return 0, nil, err
	}
	props, err := propertiesBody(r)
	if err != nil {
		return 0, nil, err
	}
	a := op.UpdateChatThreadProperties{ChatID: chat, ThreadID: thread, Properties: props}
	res, err := sdkCall(s, r, token, a, (*session.Session).UpdateChatThreadProperties)
	return http.StatusOK, res, err
}

// updateLastSeenTimestamp: the body's timestamp (a number, in ms) is
// checked but, as with the SDK 0.9.1, never sent (op.UpdateLastSeenTimestamp).
func (s *Server) updateLastSeenTimestamp(r *http.Request, token string) (int, any, error) {
	chat, err := pathParam(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, true)
	if err != nil {
		return 0, nil, err
	}
	a := op.UpdateLastSeenTimestamp{ChatID: chat, Timestamp: b.get("timestamp")}
	res, err := sdkCall(s, r, token, a, (*session.Session).UpdateLastSeenTimestamp)
	return http.StatusOK, res, err
}
