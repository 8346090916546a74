package chatio

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// One method per protocol action the gateway sends: each writes its
// action's payload (the member names and their order are the SDK's) and
// is Call for it. Pass Emit when the request is an SDK method's, so that
// its result also reaches the stream (OnItem); the gateway's own look-ups
// (gap filling, history paging, rating) leave it out. Raw JSON arguments
// are sent as given (nil: the member is left out); they must be valid
// JSON.

// defaultRoutingScope is what start_chat routes by when the caller gives
// no scope: parseStartChatData's default.
var defaultRoutingScope = json.RawMessage(`{"type":"license"}`)

// GetChatsSummary asks for one page of the customer's chats: payload
// {offset, limit}.
func (c *Client) GetChatsSummary(ctx context.Context, offset, limit int, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionGetChatsSummary,
		jsonobj.Object{{Key: "offset", Value: offset}, {Key: "limit", Value: limit}}, opts...)
}

// GetLatestChatsSummary is get_chats_summary without a payload (the
// upstream's first page), as the SDK sends it after each login.
func (c *Client) GetLatestChatsSummary(ctx context.Context, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionGetChatsSummary, nil, opts...)
}

// StartChat starts a chat: payload {routing_scope, events?, properties?};
// a nil routingScope routes by license, as the SDK does. events and
// properties are left out when nil (a JSON null is sent as null, as the
// SDK forwards it).
func (c *Client) StartChat(ctx context.Context, routingScope, events, properties json.RawMessage, opts ...CallOption) (json.RawMessage, error) {
	if routingScope == nil {
		routingScope = defaultRoutingScope
	}
	payload := jsonobj.Object{{Key: "routing_scope", Value: routingScope}}
	if events != nil {
		payload = append(payload, jsonobj.Member{Key: "events", Value: events})
	}
	if properties != nil {
		payload = append(payload, jsonobj.Member{Key: "properties", Value: properties})
	}
	return c.Call(ctx, ActionStartChat, payload, opts...)
}

// GetChatThreads reads whole threads of a chat: payload {chat_id,
// thread_ids}.
func (c *Client) GetChatThreads(ctx context.Context, chatID string, threadIDs []string, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionGetChatThreads,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "thread_ids", Value: threadIDs}}, opts...)
}

// GetChatThreadsSummary reads one page of a chat's thread summaries,
// newest first: payload {chat_id, offset, limit}.
func (c *Client) GetChatThreadsSummary(ctx context.Context, chatID string, offset, limit int, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionGetChatThreadsSummary,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "offset", Value: offset}, {Key: "limit", Value: limit}}, opts...)
}

// SendEvent sends an event, in its wire form (see WireEvent), to a chat:
// payload {chat_id, event}.
func (c *Client) SendEvent(ctx context.Context, chatID string, event jsonobj.Object, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionSendEvent,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "event", Value: event}}, opts...)
}

// SendSneakPeek tells the agents what the customer is typing: payload
// {chat_id, sneak_peek_text}.
func (c *Client) SendSneakPeek(ctx context.Context, chatID, text string, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionSendSneakPeek,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "sneak_peek_text", Value: text}}, opts...)
}

// CloseThread closes a chat's active thread: payload {chat_id}.
func (c *Client) CloseThread(ctx context.Context, chatID string, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionCloseThread, jsonobj.Object{{Key: "chat_id", Value: chatID}}, opts...)
}

// UpdateChatProperties sets properties of a chat: payload {chat_id,
// properties}.
func (c *Client) UpdateChatProperties(ctx context.Context, chatID string, properties json.RawMessage, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionUpdateChatProperties,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "properties", Value: properties}}, opts...)
}

// UpdateChatThreadProperties sets properties of one thread: payload
// {chat_id, thread_id, properties}. properties is any JSON object value
// (json.RawMessage, jsonobj.Object).
func (c *Client) UpdateChatThreadProperties(ctx context.Context, chatID, threadID string, properties any, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionUpdateChatThreadProperties,
		jsonobj.Object{{Key: "chat_id", Value: chatID}, {Key: "thread_id", Value: threadID}, {Key: "properties", Value: properties}}, opts...)
}

// UpdateCustomer updates the customer's own data with the object as the
// SDK was given it: payload {customer}.
func (c *Client) UpdateCustomer(ctx context.Context, customer jsonobj.Object, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionUpdateCustomer, jsonobj.Object{{Key: "customer", Value: customer}}, opts...)
}

// UpdateLastSeenTimestamp marks a chat seen now: payload {chat_id}. The
// SDK 0.9.1 never sends a timestamp (its parseUpdateLastSeenTimestampData
// tests `data.timestamp === 'number'`, always false), so the upstream
// uses its own clock.
func (c *Client) UpdateLastSeenTimestamp(ctx context.Context, chatID string, opts ...CallOption) (json.RawMessage, error) {
	return c.Call(ctx, ActionUpdateLastSeenTimestamp, jsonobj.Object{{Key: "chat_id", Value: chatID}}, opts...)
}

// WireEvent is clientDataParsers.parseEvent: the wire form of an event as
// the SDK's sendEvent takes it (a valid one: type a non-empty string, and
// for a message text a string). A message becomes {text, type,
// custom_id?}; any other type is passed as given (customId included) with
// custom_id added. customId is used only when it is a string (the SDK's
// typeof event.customId === 'string'). sdkEvent is not modified.
func WireEvent(sdkEvent jsonobj.Object) jsonobj.Object {
	var customID string
	hasCustomID := false
	if v := sdkEvent.Raw("customId"); len(v) > 0 && v[0] == '"' {
		hasCustomID = json.Unmarshal(v, &customID) == nil
	}
	var typ, text string
	_ = json.Unmarshal(sdkEvent.Raw("type"), &typ)
	var ev jsonobj.Object
	if typ == "message" {
		_ = json.Unmarshal(sdkEvent.Raw("text"), &text)
		ev = jsonobj.Object{{Key: "text", Value: text}, {Key: "type", Value: "message"}}
	} else {
		ev = append(jsonobj.Object{}, sdkEvent...)
	}
	if hasCustomID {
		ev.Set("custom_id", customID)
	}
	return ev
}

// RatingProperties are the thread properties a rating is stored as, as
// later LiveChat SDKs store it: {rating: {score, comment?}}, comment only
// when non-empty.
func RatingProperties(score int, comment string) jsonobj.Object {
	rating := jsonobj.Object{{Key: "score", Value: score}}
	if comment != "" {
		rating = append(rating, jsonobj.Member{Key: "comment", Value: comment})
	}
	return jsonobj.Object{{Key: "rating", Value: rating}}
}

// ThreadsSummary is the answer of get_chat_threads_summary as the gateway
// reads it: the entries in the order sent, numbers kept raw.
type ThreadsSummary struct {
	Threads []ThreadSummaryEntry `json:"threads_summary"`
	Total   json.RawMessage      `json:"total_threads"`
}

// ThreadSummaryEntry is one thread of a ThreadsSummary.
type ThreadSummaryEntry struct {
	ID          string          `json:"id"`
	Order       json.RawMessage `json:"order"`
	EventsCount json.RawMessage `json:"events_count"`
}

// ParseThreadsSummary reads an answer of get_chat_threads_summary; an
// answer of another shape is a *RequestError of type invalid_answer.
func ParseThreadsSummary(raw json.RawMessage) (ThreadsSummary, error) {
	var p ThreadsSummary
	if err := json.Unmarshal(raw, &p); err != nil {
		return ThreadsSummary{}, &RequestError{Action: ActionGetChatThreadsSummary, Type: ErrTypeInvalidAnswer, Message: err.Error()}
	}
	return p, nil
}

// ThreadOrder is the order of a thread object of the wire (its "order"
// member); false when it has none that is a number.
func ThreadOrder(thread jsonobj.Object) (float64, bool) {
	r := thread.Raw("order")
	if len(r) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	return f, err == nil
}

// ErrTypeInvalidAnswer is the *RequestError type of an answer the gateway
// cannot read (not one the upstream sends).
const ErrTypeInvalidAnswer = "invalid_answer"
