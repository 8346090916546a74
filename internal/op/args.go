package op

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// Method names: one per SDK call (MethodSendFile names the upload, which
// is not a Call: its bytes stream upstream from whichever replica received
// them).
const (
	MethodStartChat                  = "start_chat"
	MethodGetChatsSummary            = "get_chats_summary"
	MethodGetChatThreads             = "get_chat_threads"
	MethodGetChatThreadsSummary      = "get_chat_threads_summary"
	MethodGetChatHistory             = "get_chat_history"
	MethodSendEvent                  = "send_event"
	MethodSendFile                   = "send_file"
	MethodSendRating                 = "send_rating"
	MethodSetSneakPeek               = "set_sneak_peek"
	MethodCloseThread                = "close_thread"
	MethodUpdateChatProperties       = "update_chat_properties"
	MethodUpdateChatThreadProperties = "update_chat_thread_properties"
	MethodUpdateCustomer             = "update_customer"
	MethodUpdateLastSeenTimestamp    = "update_last_seen_timestamp"
	MethodDisconnect                 = "disconnect"
)

// The SDK's defaults and limits for the arguments (index.js), and the
// gateway's bounds on ids and cursors.
const (
	DefaultChatsLimit   = 10
	MaxChatsLimit       = 25
	DefaultThreadsLimit = 25
	MaxThreadsLimit     = 1000
	MaxIDLen            = 128
	MaxThreadIDs        = 1000
	MaxCursorLen        = 1024
)

// ArgError is an argument Validate refuses: bad input, never sent
// upstream. Message says which argument and why.
type ArgError struct{ Message string }

func (e *ArgError) Error() string { return e.Message }

func argError(msg string) error { return &ArgError{Message: msg} }

// ErrBadRating: SendRating's value is neither "good" nor "bad".
var ErrBadRating error = &ArgError{Message: `value must be "good" or "bad"`}

// Args is the arguments of one SDK method: one of this package's types,
// by value.
type Args interface {
	// Method is the SDK method's name (Method*).
	Method() string
	// Validate is the one check of the arguments: nil, or an *ArgError
	// for the first one that is refused.
	Validate() error
	isArgs()
}

// StartChat is startChat({scope?, events?, properties?}). Each member is
// raw JSON as given; nil: absent (the scope then defaults to the license,
// as the SDK's does), a JSON null is forwarded as null, as the SDK does,
// except for the scope, which no routing works without.
type StartChat struct {
	Scope      json.RawMessage `json:"scope,omitempty"`
	Events     json.RawMessage `json:"events,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// GetChatsSummary is getChatsSummary({offset, limit}).
type GetChatsSummary struct {
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// GetChatThreads is getChatThreads(chatId, threadIds).
type GetChatThreads struct {
	ChatID    string   `json:"chatId"`
	ThreadIDs []string `json:"threadIds"`
}

// GetChatThreadsSummary is getChatThreadsSummary(chatId, {offset, limit}).
type GetChatThreadsSummary struct {
	ChatID string `json:"chatId"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
}

// GetChatHistory is one next() of getChatHistory(chatId): the page after
// Cursor ("" for the newest page).
type GetChatHistory struct {
	ChatID string `json:"chatId"`
	Cursor string `json:"cursor,omitempty"`
}

// SendEvent is sendEvent(chatId, event): Event is the event object as the
// SDK takes it (type, text for a message, customId, ...), raw.
type SendEvent struct {
	ChatID string          `json:"chatId"`
	Event  json.RawMessage `json:"event"`
}

// SendRating rates a chat: Value "good" or "bad", Comment optional.
type SendRating struct {
	ChatID  string `json:"chatId"`
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

// SetSneakPeek is setSneakPeek({chatId, sneakPeekText}).
type SetSneakPeek struct {
	ChatID string `json:"chatId"`
	Text   string `json:"text"`
}

// CloseThread is closeThread(chatId).
type CloseThread struct {
	ChatID string `json:"chatId"`
}

// UpdateChatProperties is updateChatProperties(chatId, properties).
type UpdateChatProperties struct {
	ChatID     string          `json:"chatId"`
	Properties json.RawMessage `json:"properties"`
}

// UpdateChatThreadProperties is updateChatThreadProperties(chatId,
// threadId, properties).
type UpdateChatThreadProperties struct {
	ChatID     string          `json:"chatId"`
	ThreadID   string          `json:"threadId"`
	Properties json.RawMessage `json:"properties"`
}

// UpdateCustomer is updateCustomer(customer): the object as given ({name?,
// email?, fields?}, other members passed on).
type UpdateCustomer struct {
	Customer json.RawMessage `json:"customer"`
}

// UpdateLastSeenTimestamp is updateLastSeenTimestamp(chatId, timestamp?).
// The timestamp (ms, raw) is checked but, as with the SDK 0.9.1, never
// sent: the upstream uses its own clock.
type UpdateLastSeenTimestamp struct {
	ChatID    string          `json:"chatId"`
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
}

// Disconnect is disconnect(): the session ends.
type Disconnect struct{}

func (StartChat) Method() string                  { return MethodStartChat }
func (GetChatsSummary) Method() string            { return MethodGetChatsSummary }
func (GetChatThreads) Method() string             { return MethodGetChatThreads }
func (GetChatThreadsSummary) Method() string      { return MethodGetChatThreadsSummary }
func (GetChatHistory) Method() string             { return MethodGetChatHistory }
func (SendEvent) Method() string                  { return MethodSendEvent }
func (SendRating) Method() string                 { return MethodSendRating }
func (SetSneakPeek) Method() string               { return MethodSetSneakPeek }
func (CloseThread) Method() string                { return MethodCloseThread }
func (UpdateChatProperties) Method() string       { return MethodUpdateChatProperties }
func (UpdateChatThreadProperties) Method() string { return MethodUpdateChatThreadProperties }
func (UpdateCustomer) Method() string             { return MethodUpdateCustomer }
func (UpdateLastSeenTimestamp) Method() string    { return MethodUpdateLastSeenTimestamp }
func (Disconnect) Method() string                 { return MethodDisconnect }

func (StartChat) isArgs()                  {}
func (GetChatsSummary) isArgs()            {}
func (GetChatThreads) isArgs()             {}
func (GetChatThreadsSummary) isArgs()      {}
func (GetChatHistory) isArgs()             {}
func (SendEvent) isArgs()                  {}
func (SendRating) isArgs()                 {}
func (SetSneakPeek) isArgs()               {}
func (CloseThread) isArgs()                {}
func (UpdateChatProperties) isArgs()       {}
func (UpdateChatThreadProperties) isArgs() {}
func (UpdateCustomer) isArgs()             {}
func (UpdateLastSeenTimestamp) isArgs()    {}
func (Disconnect) isArgs()                 {}

// ---- Validate ----

// Validate: events an array of objects or null, properties an object or
// null, scope an object (null refused: the SDK would send routing_scope
// null, and no routing works without a scope).
func (a StartChat) Validate() error {
	if err := optKind("events", a.Events, 'a'); err != nil {
		return err
	}
	if a.Events != nil && string(a.Events) != "null" {
		if err := arrayOfObjects("events", a.Events); err != nil {
			return err
		}
	}
	if err := optKind("properties", a.Properties, 'o'); err != nil {
		return err
	}
	if err := optKind("scope", a.Scope, 'o'); err != nil {
		return err
	}
	if string(a.Scope) == "null" {
		return argError("scope must be an object")
	}
	return nil
}

func (a GetChatsSummary) Validate() error {
	if err := count("offset", a.Offset, 0); err != nil {
		return err
	}
	return count("limit", a.Limit, MaxChatsLimit)
}

func (a GetChatThreads) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	for _, id := range a.ThreadIDs {
		if err := CheckID("thread", id); err != nil {
			return err
		}
	}
	if len(a.ThreadIDs) == 0 {
		return argError("ids is required: thread ids, comma-separated")
	}
	if len(a.ThreadIDs) > MaxThreadIDs {
		return argError("too many thread ids")
	}
	return nil
}

func (a GetChatThreadsSummary) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	if err := count("offset", a.Offset, 0); err != nil {
		return err
	}
	return count("limit", a.Limit, MaxThreadsLimit)
}

// Validate: the cursor is "" or printable ASCII of at most MaxCursorLen
// bytes (whether this gateway issued it is the session's to tell).
func (a GetChatHistory) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	if len(a.Cursor) > MaxCursorLen || !printableASCII(a.Cursor) {
		return argError("invalid history cursor")
	}
	return nil
}

// Validate is parseEvent's input: an object whose type is a non-empty
// string; a message's text a string (an empty one is the upstream's to
// refuse, as with the SDK, which forwards it).
func (a SendEvent) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	ev, err := object("event", a.Event)
	if err != nil {
		return err
	}
	typ, err := reqString(ev, "type")
	if err != nil {
		return err
	}
	if typ == "" {
		return argError("type must not be empty")
	}
	if typ == "message" {
		if _, err := reqString(ev, "text"); err != nil {
			return err
		}
	}
	return nil
}

func (a SendRating) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	_, err := a.Score()
	return err
}

// Score is the rating's score: 1 for "good", 0 for "bad", else
// ErrBadRating.
func (a SendRating) Score() (int, error) {
	switch a.Value {
	case "good":
		return 1, nil
	case "bad":
		return 0, nil
	}
	return 0, ErrBadRating
}

func (a SetSneakPeek) Validate() error { return CheckID("chat", a.ChatID) }

func (a CloseThread) Validate() error { return CheckID("chat", a.ChatID) }

func (a UpdateChatProperties) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	_, err := object("properties", a.Properties)
	return err
}

func (a UpdateChatThreadProperties) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	if err := CheckID("thread", a.ThreadID); err != nil {
		return err
	}
	_, err := object("properties", a.Properties)
	return err
}

// Validate: name and email strings when present, fields an object of
// strings when present (null counts as absent).
func (a UpdateCustomer) Validate() error {
	c, err := object("customer", a.Customer)
	if err != nil {
		return err
	}
	for _, k := range []string{"name", "email"} {
		if _, _, err := optString(c, k); err != nil {
			return err
		}
	}
	fields := c.Raw("fields")
	if err := optKind("fields", fields, 'o'); err != nil {
		return err
	}
	if fields != nil {
		f, err := jsonobj.ParseObject(fields)
		if err != nil {
			return argError("fields must be an object")
		}
		for _, m := range f {
			if v, _ := m.Value.(json.RawMessage); jsonobj.Kind(v) != 's' {
				return argError("fields." + m.Key + " must be a string")
			}
		}
	}
	return nil
}

func (a UpdateLastSeenTimestamp) Validate() error {
	if err := CheckID("chat", a.ChatID); err != nil {
		return err
	}
	return optKind("timestamp", a.Timestamp, 'd')
}

func (Disconnect) Validate() error { return nil }

// ---- checks ----

// CheckID checks an id argument named name (chat, thread): non-empty, at
// most MaxIDLen bytes, valid UTF-8, no control characters.
func CheckID(name, v string) error {
	if v == "" {
		return argError(name + " id must not be empty")
	}
	if len(v) > MaxIDLen {
		return argError(name + " id is too long (max " + strconv.Itoa(MaxIDLen) + " bytes)")
	}
	if !utf8.ValidString(v) {
		return argError(name + " id is not valid UTF-8")
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return argError(name + " id must not contain control characters")
		}
	}
	return nil
}

// count checks a count argument: ≥ 0, at most max when max > 0 (the SDK's
// reason), within int32.
func count(name string, n, max int) error {
	if n < 0 {
		return argError(name + " must be an integer ≥ 0")
	}
	if max > 0 && n > max {
		return argError("Specified limit is too high (max " + strconv.Itoa(max) + ").")
	}
	if n > math.MaxInt32 {
		return argError(name + " is too large")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func kindName(k byte) string {
	switch k {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 'd':
		return "a number"
	}
	return "a value"
}

// optKind: v, when present and not null, is a JSON value of kind k.
func optKind(name string, v json.RawMessage, k byte) error {
	if v == nil || string(v) == "null" || jsonobj.Kind(v) == k {
		return nil
	}
	return argError(name + " must be " + kindName(k))
}

// object parses v, which must be a JSON object.
func object(name string, v json.RawMessage) (jsonobj.Object, error) {
	if jsonobj.Kind(v) != 'o' {
		return nil, argError(name + " must be an object")
	}
	o, err := jsonobj.ParseObject(v)
	if err != nil {
		return nil, argError(name + " must be an object")
	}
	return o, nil
}

// arrayOfObjects checks that raw is an array whose elements are objects.
func arrayOfObjects(name string, raw json.RawMessage) error {
	elems, err := jsonobj.ParseArray(raw)
	if err != nil {
		return argError(name + " must be an array")
	}
	for i, e := range elems {
		if jsonobj.Kind(bytes.TrimSpace(e)) != 'o' {
			return argError(name + "[" + strconv.Itoa(i) + "] must be an object")
		}
	}
	return nil
}

// optString returns the string under key; ok false when absent or null
// (the SDK only uses a value that is a string). Another type is refused.
func optString(o jsonobj.Object, key string) (s string, ok bool, err error) {
	v := o.Raw(key)
	if v == nil || string(v) == "null" {
		return "", false, nil
	}
	if jsonobj.Kind(v) != 's' || json.Unmarshal(v, &s) != nil {
		return "", false, argError(key + " must be a string")
	}
	return s, true, nil
}

// reqString returns the required string under key.
func reqString(o jsonobj.Object, key string) (string, error) {
	s, ok, err := optString(o, key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", argError(key + " is required")
	}
	return s, nil
}
