package chatio

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// Frame is one JSON object on the socket, in either direction.
//
// Client → server: RequestID, Action, Payload.
// Server → client: Type is "response" (with Success) or "push"; a push that
// carries a string RequestID is the result of that request.
//
// RequestID is kept raw so that a push whose request_id is present but not a
// string (the SDK drops those) can be told apart from one without any.
type Frame struct {
	RequestID json.RawMessage `json:"request_id,omitempty"`
	Action    string          `json:"action"`
	Type      string          `json:"type,omitempty"`
	Success   *bool           `json:"success,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`

	// Checked is set by DecodeFrame (the read loop's decoder) when the
	// whole frame passed jsonobj.CheckCompact as compact: RequestID and
	// Payload are then valid, compact JSON of valid UTF-8, which the
	// conversion neither validates nor compacts again. Never encoded;
	// whoever sets it by hand vouches for the same.
	Checked bool `json:"-"`
}

// Frame types.
const (
	TypeResponse = "response"
	TypePush     = "push"
)

// Actions (requests) of protocol v0.5, plus the successor API's ping.
const (
	ActionLogin                      = "login"
	ActionGetChatsSummary            = "get_chats_summary"
	ActionGetChatThreads             = "get_chat_threads"
	ActionGetChatThreadsSummary      = "get_chat_threads_summary"
	ActionSendSneakPeek              = "send_sneak_peek"
	ActionUpdateCustomer             = "update_customer"
	ActionStartChat                  = "start_chat"
	ActionSendEvent                  = "send_event"
	ActionCloseThread                = "close_thread"
	ActionUpdateChatProperties       = "update_chat_properties"
	ActionUpdateChatThreadProperties = "update_chat_thread_properties"
	ActionUpdateLastSeenTimestamp    = "update_last_seen_timestamp"
	ActionPing                       = "ping"
)

// Push actions of protocol v0.5.
const (
	PushIncomingEvent               = "incoming_event"
	PushIncomingChatThread          = "incoming_chat_thread"
	PushIncomingTypingIndicator     = "incoming_typing_indicator"
	PushChatUsersUpdated            = "chat_users_updated"
	PushChatPropertiesUpdated       = "chat_properties_updated"
	PushChatThreadPropertiesUpdated = "chat_thread_properties_updated"
	PushLastSeenTimestampUpdated    = "last_seen_timestamp_updated"
	PushThreadClosed                = "thread_closed"
	PushCustomerDisconnected        = "customer_disconnected"
	PushCustomerUpdated             = "customer_updated"
)

// DirectActions are the actions whose "response" frame carries the result;
// every other action is indirect: its response only acknowledges and the
// result arrives as a push carrying the request id. (socketListener.js,
// METHODS_WITH_DIRECT_RESPONSE, plus ping.)
var DirectActions = map[string]bool{
	ActionLogin:                 true,
	ActionSendSneakPeek:         true,
	ActionGetChatsSummary:       true,
	ActionGetChatThreads:        true,
	ActionGetChatThreadsSummary: true,
	ActionUpdateCustomer:        true,
	ActionPing:                  true,
}

// IsDirect reports whether action's result is carried by its response frame.
func IsDirect(action string) bool { return DirectActions[action] }

// ErrorPayload is the payload of a failed response.
type ErrorPayload struct {
	Error WireError `json:"error"`
}

// WireError is the upstream's error object.
type WireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Upstream error types.
const (
	ErrTypeAuthentication       = "authentication"
	ErrTypeValidation           = "validation"
	ErrTypeNotFound             = "not_found"
	ErrTypeTooManyRequests      = "too_many_requests"
	ErrTypePendingRequestsLimit = "pending_requests_limit_reached"
	ErrTypeRequestTimeout       = "request_timeout"
	ErrTypeInternal             = "internal"
)

// --- Request payloads (client → server) ---

// LoginPayload is the payload of login.
type LoginPayload struct {
	Token    string       `json:"token"` // "Bearer <access token>"
	Customer CustomerData `json:"customer"`
}

// CustomerData is the customer's own data as the SDK sends it at login and in
// update_customer: name and email only when non-empty, fields always at login.
type CustomerData struct {
	Name   string          `json:"name,omitempty"`
	Email  string          `json:"email,omitempty"`
	Fields json.RawMessage `json:"fields,omitempty"`
}

// LoginResult is what a successful login answers. chat.io 0.5 answers an empty
// payload; the successor API (and the simulator) add the customer's id.
type LoginResult struct {
	CustomerID string `json:"customer_id,omitempty"`
}

// --- Wire objects (server → client) ---

// WireUser is a chat user as the upstream sends it (agent or customer).
// Fields stay raw so that absent and null can be told apart, as the SDK does.
type WireUser struct {
	ID                json.RawMessage `json:"id,omitempty"`
	Type              json.RawMessage `json:"type,omitempty"`
	Name              json.RawMessage `json:"name,omitempty"`
	Email             json.RawMessage `json:"email,omitempty"`
	Avatar            json.RawMessage `json:"avatar,omitempty"`
	Fields            json.RawMessage `json:"fields,omitempty"`
	LastSeenTimestamp json.RawMessage `json:"last_seen_timestamp,omitempty"`
}

// WireThread is a thread as the upstream sends it.
type WireThread struct {
	ID         json.RawMessage   `json:"id,omitempty"`
	Active     json.RawMessage   `json:"active,omitempty"`
	Order      json.RawMessage   `json:"order,omitempty"`
	UserIDs    json.RawMessage   `json:"user_ids,omitempty"`
	Events     []json.RawMessage `json:"events"`
	Properties json.RawMessage   `json:"properties,omitempty"`
}

// WireChat is the chat object of incoming_chat_thread, start_chat and the
// new-thread result of send_event.
type WireChat struct {
	ID         json.RawMessage `json:"id,omitempty"`
	Thread     WireThread      `json:"thread"`
	Users      []WireUser      `json:"users"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// UnmarshalFrame is json.Unmarshal(data, &f) for a Frame: the result and
// the error are always the decoder's (FuzzUnmarshalFrame), and the Frame's
// raw members are copies. It is several times cheaper on the frames the
// protocol sends (an object with the five lower-case members, strings
// without escapes): those are split by jsonobj's scanner; anything else
// (other types, escapes, keys that only match case-insensitively, not an
// object) goes to encoding/json.
func UnmarshalFrame(data []byte) (Frame, error) {
	if json.Valid(data) {
		if f, ok := scanFrame(bytes.Clone(data)); ok {
			return f, nil
		}
	}
	var f Frame
	err := json.Unmarshal(data, &f)
	return f, err
}

// frameLimits: what DecodeFrame's one pass accepts is what json.Valid
// does (its own depth limit), of valid UTF-8.
var frameLimits = jsonobj.Limits{MaxDepth: 10000}

// DecodeFrame is what the client's read loop decodes each frame with:
// UnmarshalFrame's result and error (FuzzDecodeFrameBytes), in one pass that
// validates data (jsonobj.CheckCompact) and copies nothing. The Frame's
// raw members are slices of data, which must stay unchanged while the
// Frame is in use: the read loop's data is the message wsconn read, a
// buffer of its own that nothing reuses, so a Frame (and every item and
// call result cut from it) may outlive the read. A compact frame comes
// back Checked. A frame the pass refuses (not JSON, or not UTF-8, which
// the decoder tolerates), or one the scan cannot tell, is UnmarshalFrame's.
func DecodeFrame(data []byte) (Frame, error) {
	compact, err := jsonobj.CheckCompact(data, frameLimits)
	if err != nil {
		return UnmarshalFrame(data)
	}
	if f, ok := scanFrame(data); ok {
		f.Checked = compact
		return f, nil
	}
	var f Frame
	err = json.Unmarshal(data, &f)
	return f, err
}

// scanFrame is the scanner's decoding of data, a valid JSON document;
// false when it is not an object, or when the scan cannot tell what the
// decoder would make of it. The raw members are slices of data.
func scanFrame(data []byte) (Frame, bool) {
	var f Frame
	ok := true
	isObject := jsonobj.EachValidMember(data, func(k string, raw json.RawMessage) {
		if !ok {
			return
		}
		switch k {
		case "request_id":
			f.RequestID = raw
		case "payload":
			f.Payload = raw
		case "action":
			ok = scanString(raw, &f.Action)
		case "type":
			ok = scanString(raw, &f.Type)
		case "success":
			switch string(raw) {
			case "true", "false":
				b := raw[0] == 't'
				f.Success = &b
			case "null":
				f.Success = nil
			default:
				ok = false
			}
		default:
			// A key the decoder would match case-insensitively.
			ok = !isFrameKeyFold(k)
		}
	})
	if !isObject || !ok {
		return Frame{}, false
	}
	return f, true
}

// scanString stores a JSON string without escapes; false for anything
// else (null too: the decoder leaves the field as an earlier duplicate
// key set it, which the scan does not track).
func scanString(raw json.RawMessage, dst *string) bool {
	s, ok := jsonobj.PlainString(raw)
	if ok {
		*dst = internWire(s)
	}
	return ok
}

// internWire returns the protocol's own action and type names without an
// allocation.
func internWire(b []byte) string {
	if s, ok := wireNames[string(b)]; ok {
		return s
	}
	return string(b)
}

var wireNames = func() map[string]string {
	m := map[string]string{}
	for _, a := range []string{TypePush, TypeResponse,
		ActionLogin, ActionGetChatsSummary, ActionGetChatThreads, ActionGetChatThreadsSummary,
		ActionSendSneakPeek, ActionUpdateCustomer, ActionStartChat, ActionSendEvent, ActionCloseThread,
		ActionUpdateChatProperties, ActionUpdateChatThreadProperties, ActionUpdateLastSeenTimestamp, ActionPing,
		PushIncomingEvent, PushIncomingChatThread, PushIncomingTypingIndicator, PushChatUsersUpdated,
		PushChatPropertiesUpdated, PushChatThreadPropertiesUpdated, PushLastSeenTimestampUpdated,
		PushThreadClosed, PushCustomerDisconnected, PushCustomerUpdated} {
		m[a] = a
	}
	return m
}()

// memberNames are the member names of the protocol's objects: the JSON
// scanner shares one string per name (jsonobj.InternKeys) instead of
// copying each key it reads.
var memberNames = []string{
	"action", "active", "added", "agent", "author_id", "avatar", "chat", "chat_id", "chats_summary",
	"content_type", "custom_id", "customer", "email", "event", "events", "events_count", "fields",
	"height", "id", "is_typing", "last_event_per_type", "last_seen_timestamp", "name", "order",
	"payload", "present", "properties", "reason", "recipients", "removed_ids", "request_id",
	"routing_scope", "success", "text", "thread", "thread_id", "thread_order", "threads",
	"threads_summary", "timestamp", "total_chats", "total_threads", "type", "typing_indicator",
	"updated_users", "url", "user_id", "user_ids", "users", "width",
}

func init() { jsonobj.InternKeys(memberNames...) }

func isFrameKeyFold(k string) bool {
	for _, f := range [...]string{"request_id", "action", "type", "success", "payload"} {
		if strings.EqualFold(k, f) {
			return true
		}
	}
	return false
}
