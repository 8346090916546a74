package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
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

// invoke carries out one SDK method upstream: the action's request with
// payload (its result also goes to the session's stream, as the SDK emits
// it), and returns what the SDK method resolves to.
func (s *Server) invoke(ctx context.Context, token, action string, payload any) (any, error) {
	var result any
	err := s.withSession(ctx, token, func(sess *session.Session) error {
		return sess.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
			start := time.Now()
			raw, err := c.Call(ctx, action, payload, chatio.Emit())
			s.m.observeCall(action, start, err)
			if err != nil {
				return err
			}
			result, err = sdk.ParseResult(action, raw)
			if err != nil {
				return &chatio.RequestError{Action: action, Type: "invalid_answer", Message: "chat.io sent an answer the gateway cannot read"}
			}
			return nil
		})
	})
	return result, err
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
	// stored (tickets.go).
	if _, err := s.acquire(r.Context(), token); err != nil {
		return 0, nil, err
	}
	s.m.tickets.WithLabelValues("issued").Inc()
	return http.StatusOK, struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expiresIn"`
	}{s.tickets.seal(token, customerIDOf(r.Context()), s.cfg.TicketTTL), int(s.cfg.TicketTTL / time.Second)}, nil
}

func (s *Server) getSession(r *http.Request, token string) (int, any, error) {
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
	sess, err := s.pool.Lookup(r.Context(), token)
	if err != nil {
		return 0, nil, err
	}
	if sess != nil {
		start := time.Now()
		sess.Disconnect()
		s.m.observeCall("disconnect", start, nil)
	}
	return http.StatusNoContent, nil, nil
}

// updateCustomer: updateCustomer({name?, email?, fields?}) → update_customer
// {customer: <the object as given>}.
func (s *Server) updateCustomer(r *http.Request, token string) (int, any, error) {
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	for _, k := range []string{"name", "email"} {
		if _, _, err := b.optString(k); err != nil {
			return 0, nil, err
		}
	}
	fields, err := b.optKind("fields", 'o')
	if err != nil {
		return 0, nil, err
	}
	if fields != nil {
		f, err := jsonobj.ParseObject(fields)
		if err != nil {
			return 0, nil, invalidArgs("fields must be an object")
		}
		for _, m := range f {
			if jsonKind(m.Value.(json.RawMessage)) != 's' {
				return 0, nil, invalidArgs("fields." + m.Key + " must be a string")
			}
		}
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionUpdateCustomer, jsonobj.Object{{Key: "customer", Value: b.obj}})
	return http.StatusOK, res, err
}

// ---- chats ----

// startChat: parseStartChatData: {routing_scope: scope or {"type":"license"},
// events?, properties?}.
func (s *Server) startChat(r *http.Request, token string) (int, any, error) {
	b, err := objectBody(r, true)
	if err != nil {
		return 0, nil, err
	}
	events, err := b.optKind("events", 'a')
	if err != nil {
		return 0, nil, err
	}
	if events != nil && string(events) != "null" {
		if err := arrayOfObjects("events", events); err != nil {
			return 0, nil, err
		}
	}
	properties, err := b.optKind("properties", 'o')
	if err != nil {
		return 0, nil, err
	}
	scope, err := b.optKind("scope", 'o')
	if err != nil {
		return 0, nil, err
	}
	switch {
	case scope == nil:
		scope = json.RawMessage(`{"type":"license"}`)
	case string(scope) == "null":
		// The SDK would send routing_scope: null; no routing works without
		// a scope, so the gateway refuses it rather than forwarding it.
		return 0, nil, invalidArgs("scope must be an object")
	}
	payload := jsonobj.Object{{Key: "routing_scope", Value: scope}}
	if events != nil {
		payload = append(payload, jsonobj.Member{Key: "events", Value: events})
	}
	if properties != nil {
		payload = append(payload, jsonobj.Member{Key: "properties", Value: properties})
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionStartChat, payload)
	return http.StatusCreated, res, err
}

func (s *Server) getChatsSummary(r *http.Request, token string) (int, any, error) {
	q := r.URL.Query()
	offset, err := queryInt(q, "offset", 0, 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(q, "limit", 10, chatsMaxLimit)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionGetChatsSummary,
		jsonobj.Object{{Key: "offset", Value: offset}, {Key: "limit", Value: limit}})
	return http.StatusOK, res, err
}

func (s *Server) getChatThreads(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	var ids []string
	for _, v := range r.URL.Query()["ids"] {
		for id := range strings.SplitSeq(v, ",") {
			if err := checkID("thread", id); err != nil {
				return 0, nil, err
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, nil, invalidArgs("ids is required: thread ids, comma-separated")
	}
	if len(ids) > maxThreadIDs {
		return 0, nil, invalidArgs("too many thread ids")
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionGetChatThreads,
		jsonobj.Object{{Key: "chat_id", Value: chat}, {Key: "thread_ids", Value: ids}})
	return http.StatusOK, res, err
}

func (s *Server) getChatThreadsSummary(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	offset, err := queryInt(q, "offset", 0, 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(q, "limit", 25, threadsMaxLimit)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionGetChatThreadsSummary,
		jsonobj.Object{{Key: "chat_id", Value: chat}, {Key: "offset", Value: offset}, {Key: "limit", Value: limit}})
	return http.StatusOK, res, err
}

func (s *Server) getChatHistory(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > maxCursorLen || !printableASCII(cursor) && cursor != "" {
		return 0, nil, invalidArgs("invalid history cursor")
	}
	var page session.HistoryPage
	err = s.withSession(r.Context(), token, func(sess *session.Session) error {
		start := time.Now()
		var err error
		page, err = sess.History(r.Context(), chat, cursor)
		s.m.observeCall("get_chat_history", start, err)
		return err
	})
	return http.StatusOK, page, err
}

// ---- events ----

// sdkEvent is parseEvent (clientDataParsers.js): a message becomes
// {text, type, custom_id?}; any other type is passed as given (customId
// included) with custom_id added when customId is a string.
func sdkEvent(b body) (jsonobj.Object, error) {
	typ, err := b.reqString("type")
	if err != nil {
		return nil, err
	}
	if typ == "" {
		return nil, invalidArgs("type must not be empty")
	}
	// customId is used only when it is a string; any other value is left
	// out of custom_id, as clientDataParsers.parseEvent does (typeof
	// event.customId === 'string').
	var customID string
	hasCustomID := false
	if v := b.get("customId"); jsonKind(v) == 's' {
		hasCustomID = json.Unmarshal(v, &customID) == nil
	}
	var ev jsonobj.Object
	if typ == "message" {
		text, err := b.reqString("text")
		if err != nil {
			return nil, err
		}
		// An empty text is the upstream's to refuse (validation), as with
		// the SDK, which forwards it.
		ev = jsonobj.Object{{Key: "text", Value: text}, {Key: "type", Value: "message"}}
	} else {
		ev = append(jsonobj.Object{}, b.obj...)
	}
	if hasCustomID {
		ev.Set("custom_id", customID)
	}
	return ev, nil
}

func (s *Server) sendEvent(r *http.Request, token string) (int, any, error) {
	return s.postEvent(r, token, nil)
}

// sendMessage is sendEvent(chat, {...message, type: "message"}).
func (s *Server) sendMessage(r *http.Request, token string) (int, any, error) {
	return s.postEvent(r, token, func(b *body) { b.obj.Set("type", json.RawMessage(`"message"`)) })
}

// postEvent sends the body as the event of send_event, after adjust (if
// any) has had its say on the body.
func (s *Server) postEvent(r *http.Request, token string, adjust func(*body)) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, false)
	if err != nil {
		return 0, nil, err
	}
	if adjust != nil {
		adjust(&b)
	}
	ev, err := sdkEvent(b)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionSendEvent,
		jsonobj.Object{{Key: "chat_id", Value: chat}, {Key: "event", Value: ev}})
	return http.StatusCreated, res, err
}

func (s *Server) sendRating(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
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
	if value != "good" && value != "bad" {
		return 0, nil, invalidArgs(`value must be "good" or "bad"`)
	}
	comment, _, err := b.optString("comment")
	if err != nil {
		return 0, nil, err
	}
	var res any
	err = s.withSession(r.Context(), token, func(sess *session.Session) error {
		start := time.Now()
		var err error
		res, err = sess.SendRating(r.Context(), chat, value, comment)
		s.m.observeCall("send_rating", start, err)
		return err
	})
	return http.StatusOK, res, err
}

// setSneakPeek answers 202 at once: the session throttles the upstream
// send_sneak_peek (at most one per chat per interval, the latest text wins).
func (s *Server) setSneakPeek(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
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
	sess, err := s.acquire(r.Context(), token)
	if err != nil {
		return 0, nil, err
	}
	sess.SetSneakPeek(chat, text)
	return http.StatusAccepted, struct{}{}, nil
}

func (s *Server) closeThread(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionCloseThread, jsonobj.Object{{Key: "chat_id", Value: chat}})
	return http.StatusOK, res, err
}

// propertiesBody is a body that is the properties object itself.
func propertiesBody(r *http.Request) (json.RawMessage, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if raw == nil || jsonKind(raw) != 'o' {
		return nil, invalidArgs("request body must be the properties object")
	}
	return raw, nil
}

func (s *Server) updateChatProperties(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	props, err := propertiesBody(r)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionUpdateChatProperties,
		jsonobj.Object{{Key: "chat_id", Value: chat}, {Key: "properties", Value: props}})
	return http.StatusOK, res, err
}

func (s *Server) updateChatThreadProperties(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	thread, err := pathID(r, "thread")
	if err != nil {
		return 0, nil, err
	}
	props, err := propertiesBody(r)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionUpdateChatThreadProperties,
		jsonobj.Object{{Key: "chat_id", Value: chat}, {Key: "thread_id", Value: thread}, {Key: "properties", Value: props}})
	return http.StatusOK, res, err
}

// updateLastSeenTimestamp follows the SDK 0.9.1 output exactly: its
// parseUpdateLastSeenTimestampData tests `data.timestamp === 'number'`
// (always false), so the timestamp is never sent and the payload is only
// {chat_id}; the upstream then uses its current time. The body's timestamp
// is still checked (a number, in ms) so that bad input is refused.
func (s *Server) updateLastSeenTimestamp(r *http.Request, token string) (int, any, error) {
	chat, err := pathID(r, "chat")
	if err != nil {
		return 0, nil, err
	}
	b, err := objectBody(r, true)
	if err != nil {
		return 0, nil, err
	}
	if _, err := b.optKind("timestamp", 'd'); err != nil {
		return 0, nil, err
	}
	res, err := s.invoke(r.Context(), token, chatio.ActionUpdateLastSeenTimestamp, jsonobj.Object{{Key: "chat_id", Value: chat}})
	return http.StatusOK, res, err
}
