package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// One method per SDK call: typed arguments in (op's, valid: the caller
// has run their Validate, as Run does), the value the SDK method resolves
// to out. Each is one upstream request (history pages and ratings: a few)
// run by Do, so each has Do's errors besides the upstream's; the request
// of an SDK method proper is made with chatio.EmitFrom, so that its result
// reaches the session's subscribers as the SDK emits it, the events for the
// other tabs tagged with the calling instance (WithOrigin).

// CallTrace hears how an SDK call's upstream part went, for metrics (as
// net/http/httptrace, it rides on the call's context: WithCallTrace).
type CallTrace struct {
	// Done is called at most once per call, with when its upstream part
	// began and its error: for most methods the one request, once Do has
	// a live upstream (a call refused before that is not reported); for
	// GetChatHistory and SendRating, which make several, the whole method,
	// Do's wait included.
	Done func(start time.Time, err error)
}

type callTraceKey struct{}

// WithCallTrace returns ctx carrying t for the SDK calls made with it.
func WithCallTrace(ctx context.Context, t *CallTrace) context.Context {
	return context.WithValue(ctx, callTraceKey{}, t)
}

// traceDone reports to ctx's CallTrace, if any.
func traceDone(ctx context.Context, start time.Time, err error) {
	if t, _ := ctx.Value(callTraceKey{}).(*CallTrace); t != nil && t.Done != nil {
		t.Done(start, err)
	}
}

// sdkCall carries out one SDK method whose result comes from one request
// of action: send (with Emit), then what the SDK resolves (sdk.ParseResult).
func (s *Session) sdkCall(ctx context.Context, action string, send func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error)) (any, error) {
	var result any
	emit := chatio.EmitFrom(uint64(OriginFrom(ctx)))
	err := s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		start := time.Now()
		raw, err := send(ctx, c, emit)
		traceDone(ctx, start, err)
		if err != nil {
			return err
		}
		result, err = sdk.ParseResult(action, raw)
		if err != nil {
			return &chatio.RequestError{Action: action, Type: chatio.ErrTypeInvalidAnswer, Message: "chat.io sent an answer the gateway cannot read"}
		}
		return nil
	})
	return result, err
}

// StartChat is startChat: start_chat, resolving {chat}.
func (s *Session) StartChat(ctx context.Context, a op.StartChat) (any, error) {
	return s.sdkCall(ctx, chatio.ActionStartChat, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.StartChat(ctx, a.Scope, a.Events, a.Properties, emit)
	})
}

// GetChatsSummary is getChatsSummary: one page of the customer's chats.
func (s *Session) GetChatsSummary(ctx context.Context, a op.GetChatsSummary) (any, error) {
	return s.sdkCall(ctx, chatio.ActionGetChatsSummary, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.GetChatsSummary(ctx, a.Offset, a.Limit, emit)
	})
}

// GetChatThreads is getChatThreads: whole threads of a chat.
func (s *Session) GetChatThreads(ctx context.Context, a op.GetChatThreads) (any, error) {
	return s.sdkCall(ctx, chatio.ActionGetChatThreads, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.GetChatThreads(ctx, a.ChatID, a.ThreadIDs, emit)
	})
}

// GetChatThreadsSummary is getChatThreadsSummary: one page of a chat's
// thread summaries.
func (s *Session) GetChatThreadsSummary(ctx context.Context, a op.GetChatThreadsSummary) (any, error) {
	return s.sdkCall(ctx, chatio.ActionGetChatThreadsSummary, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.GetChatThreadsSummary(ctx, a.ChatID, a.Offset, a.Limit, emit)
	})
}

// SendEvent is sendEvent: the event in its wire form (parseEvent) to the
// chat, resolving the event as sent.
func (s *Session) SendEvent(ctx context.Context, a op.SendEvent) (any, error) {
	ev, err := jsonobj.ParseObject(a.Event)
	if err != nil {
		return nil, &op.ArgError{Message: "event must be an object"}
	}
	wire := chatio.WireEvent(ev)
	return s.sdkCall(ctx, chatio.ActionSendEvent, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.SendEvent(ctx, a.ChatID, wire, emit)
	})
}

// CloseThread is closeThread.
func (s *Session) CloseThread(ctx context.Context, a op.CloseThread) (any, error) {
	return s.sdkCall(ctx, chatio.ActionCloseThread, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.CloseThread(ctx, a.ChatID, emit)
	})
}

// UpdateChatProperties is updateChatProperties.
func (s *Session) UpdateChatProperties(ctx context.Context, a op.UpdateChatProperties) (any, error) {
	return s.sdkCall(ctx, chatio.ActionUpdateChatProperties, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.UpdateChatProperties(ctx, a.ChatID, a.Properties, emit)
	})
}

// UpdateChatThreadProperties is updateChatThreadProperties.
func (s *Session) UpdateChatThreadProperties(ctx context.Context, a op.UpdateChatThreadProperties) (any, error) {
	return s.sdkCall(ctx, chatio.ActionUpdateChatThreadProperties, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.UpdateChatThreadProperties(ctx, a.ChatID, a.ThreadID, a.Properties, emit)
	})
}

// UpdateCustomer is updateCustomer: the customer object as given.
func (s *Session) UpdateCustomer(ctx context.Context, a op.UpdateCustomer) (any, error) {
	customer, err := jsonobj.ParseObject(a.Customer)
	if err != nil {
		return nil, &op.ArgError{Message: "customer must be an object"}
	}
	if customer == nil {
		customer = jsonobj.Object{}
	}
	return s.sdkCall(ctx, chatio.ActionUpdateCustomer, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.UpdateCustomer(ctx, customer, emit)
	})
}

// UpdateLastSeenTimestamp is updateLastSeenTimestamp; as with the SDK
// 0.9.1, a.Timestamp is not sent.
func (s *Session) UpdateLastSeenTimestamp(ctx context.Context, a op.UpdateLastSeenTimestamp) (any, error) {
	return s.sdkCall(ctx, chatio.ActionUpdateLastSeenTimestamp, func(ctx context.Context, c *chatio.Client, emit chatio.CallOption) (json.RawMessage, error) {
		return c.UpdateLastSeenTimestamp(ctx, a.ChatID, emit)
	})
}

// SendFile is sendFile, the one SDK call that is not an op.Call: the form
// streams upstream (an HTTP upload with the session's token) as it is
// read, from whichever replica received it. It resolves the upload's
// answer ({url}; null when the upstream sent none).
func (s *Session) SendFile(ctx context.Context, chatID string, form chatio.FileForm) (json.RawMessage, error) {
	var res json.RawMessage
	err := s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		start := time.Now()
		raw, err := c.SendFileForm(ctx, chatID, form)
		traceDone(ctx, start, err)
		if err != nil {
			return err
		}
		res = raw
		if len(raw) == 0 {
			res = json.RawMessage("null")
		}
		return nil
	})
	return res, err
}

// Run carries out one SDK call given as a value (another replica's, say):
// it validates the arguments (an *op.ArgError when refused), calls the
// session's method for it and returns what the SDK method resolves to as
// JSON (as the HTTP API answers it: <, > and & not escaped), with that
// method's errors. Disconnect and SetSneakPeek resolve {}.
func (s *Session) Run(ctx context.Context, call op.Call) (json.RawMessage, error) {
	if err := call.Validate(); err != nil {
		return nil, err
	}
	var (
		res any
		err error
	)
	switch a := call.Args.(type) {
	case op.StartChat:
		res, err = s.StartChat(ctx, a)
	case op.GetChatsSummary:
		res, err = s.GetChatsSummary(ctx, a)
	case op.GetChatThreads:
		res, err = s.GetChatThreads(ctx, a)
	case op.GetChatThreadsSummary:
		res, err = s.GetChatThreadsSummary(ctx, a)
	case op.GetChatHistory:
		res, err = s.GetChatHistory(ctx, a)
	case op.SendEvent:
		res, err = s.SendEvent(ctx, a)
	case op.SendRating:
		res, err = s.SendRating(ctx, a)
	case op.SetSneakPeek:
		s.SetSneakPeek(a.ChatID, a.Text)
		res = struct{}{}
	case op.CloseThread:
		res, err = s.CloseThread(ctx, a)
	case op.UpdateChatProperties:
		res, err = s.UpdateChatProperties(ctx, a)
	case op.UpdateChatThreadProperties:
		res, err = s.UpdateChatThreadProperties(ctx, a)
	case op.UpdateCustomer:
		res, err = s.UpdateCustomer(ctx, a)
	case op.UpdateLastSeenTimestamp:
		res, err = s.UpdateLastSeenTimestamp(ctx, a)
	case op.Disconnect:
		s.Disconnect()
		res = struct{}{}
	default:
		return nil, fmt.Errorf("session: Run: no method for %T", call.Args)
	}
	if err != nil {
		return nil, err
	}
	return EncodeResult(res)
}

// EncodeResult is the JSON of an SDK method's value as the HTTP API
// answers it: compact, <, > and & not escaped.
func EncodeResult(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
