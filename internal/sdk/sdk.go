package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// This file converts wire objects into what the SDK 0.9.1 resolves and
// emits. Each function names the SDK function it follows
// (serverDataParser.js, sideEffects.js). The rules that matter:
//
//   - a wire value is passed through raw, so an absent field stays absent
//     and a null stays null, exactly as JavaScript's undefined and null
//     survive JSON.stringify;
//   - timestamps: seconds → milliseconds when a number, else null;
//   - sorting is V8's Array.prototype.sort (jsSort) with the SDK's own
//     comparators, values going through JavaScript's subtraction (ToNumber),
//     so that even orders that are not numbers sort as in the SDK;
//   - an Object encodes in JavaScript's key order (array indices first).

// Event is one SDK event: its name and its data. Data encodes (json.Marshal)
// to exactly the JSON of what the SDK emits; nil data encodes as null.
type Event struct {
	Name string
	Data any
}

// SDK event names.
const (
	EventNewEvent                   = "new_event"
	EventUserData                   = "user_data"
	EventThreadSummary              = "thread_summary"
	EventUserIsTyping               = "user_is_typing"
	EventUserStoppedTyping          = "user_stopped_typing"
	EventUserJoinedChat             = "user_joined_chat"
	EventUserLeftChat               = "user_left_chat"
	EventChatPropertiesUpdated      = "chat_properties_updated"
	EventChatThreadPropertiesUpdate = "chat_thread_properties_updated"
	EventLastSeenTimestampUpdated   = "last_seen_timestamp_updated"
	EventThreadClosed               = "thread_closed"
	EventDisconnected               = "disconnected"
	EventConnected                  = "connected"
	EventConnectionLost             = "connection_lost"
	EventConnectionRestored         = "connection_restored"
	EventCustomerID                 = "customer_id"
)

// ParseEvent is serverDataParser.parseEvent: a wire event of thread into the
// SDK's event object.
func ParseEvent(thread json.RawMessage, event json.RawMessage) (jsonobj.Object, error) {
	w, err := jsonobj.ParseObject(event)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	return parseEvent(thread, w), nil
}

// The "type" values parseEvent writes, boxed once (every event would
// allocate its own copy otherwise). Nothing writes into a member's bytes.
var (
	typeMessage any = json.RawMessage(`"message"`)
	typeFile    any = json.RawMessage(`"file"`)
)

func parseEvent(thread json.RawMessage, w jsonobj.Object) jsonobj.Object {
	o := make(jsonobj.Object, 0, 8)
	o = append(o,
		jsonobj.Member{Key: "id", Value: w.RawValue("id")},
		jsonobj.Member{Key: "author", Value: w.RawValue("author_id")},
		jsonobj.Member{Key: "timestamp", Value: msTimestamp(w.Raw("timestamp"))},
		jsonobj.Member{Key: "thread", Value: thread},
	)
	if c := w.RawValue("custom_id"); !jsonobj.IsAbsent(c) {
		o = append(o, jsonobj.Member{Key: "customId", Value: c})
	}
	switch t := w.Raw("type"); { // switch (event.type): strict equality
	case isJSString(t, "message"):
		o = append(o, jsonobj.Member{Key: "type", Value: typeMessage}, jsonobj.Member{Key: "text", Value: w.RawValue("text")})
	case isJSString(t, "file"):
		o = append(o,
			jsonobj.Member{Key: "type", Value: typeFile},
			jsonobj.Member{Key: "contentType", Value: w.Raw("content_type")},
			jsonobj.Member{Key: "url", Value: w.Raw("url")})
		if wd, ht := w.Raw("width"), w.Raw("height"); wd != nil && ht != nil {
			o = append(o, jsonobj.Member{Key: "width", Value: wd}, jsonobj.Member{Key: "height", Value: ht})
		}
	default:
		b := jsonobj.BuildOn(o)
		for _, m := range w {
			switch m.Key {
			case "id", "author_id", "timestamp", "custom_id", "order":
				continue
			}
			b.Set(m.Key, m.Value)
		}
		o = b.Object()
	}
	return o
}

// sortByOrder is numericSortBy('order', ws) of @livechat/data-utils:
// Array.prototype.sort with (a, b) => a.order - b.order, JavaScript's
// subtraction converting each order with ToNumber (null is 0, a numeric
// string its number, undefined NaN: compares equal to everything).
func sortByOrder(ws []jsonobj.Object) {
	jsSort(ws, func(a, b jsonobj.Object) float64 {
		return jsToNumber(a.Raw("order")) - jsToNumber(b.Raw("order"))
	})
}

// ParseThread is parseThread(chat, thread).
func ParseThread(chat json.RawMessage, thread json.RawMessage) (jsonobj.Object, error) {
	w, err := jsonobj.ParseObject(thread)
	if err != nil {
		return nil, fmt.Errorf("thread: %w", err)
	}
	return parseThread(chat, w)
}

func parseThread(chat json.RawMessage, w jsonobj.Object) (jsonobj.Object, error) {
	wevents, err := parseObjects(w.Raw("events"))
	if err != nil {
		return nil, fmt.Errorf("thread events: %w", err)
	}
	sortByOrder(wevents)
	id := w.Raw("id")
	events := make([]jsonobj.Object, len(wevents))
	for i, e := range wevents {
		events[i] = parseEvent(id, e)
	}
	props := w.Raw("properties")
	if !truthy(props) {
		props = rawEmptyObject
	}
	return jsonobj.Object{
		{Key: "id", Value: id},
		{Key: "chat", Value: chat},
		{Key: "active", Value: w.Raw("active")},
		{Key: "order", Value: w.Raw("order")},
		{Key: "users", Value: w.Raw("user_ids")},
		{Key: "events", Value: events},
		{Key: "properties", Value: props},
	}, nil
}

// ThreadEvents returns the parsed events of a thread made by ParseThread.
func ThreadEvents(thread jsonobj.Object) []jsonobj.Object {
	ev, _ := thread.Get("events").([]jsonobj.Object)
	return ev
}

// ThreadSummary is parseThreadSummary of a parsed thread: the data of a
// thread_summary event.
func ThreadSummary(thread jsonobj.Object) jsonobj.Object {
	return jsonobj.Object{
		{Key: "id", Value: thread.Get("id")},
		{Key: "chat", Value: thread.Get("chat")},
		{Key: "order", Value: thread.Get("order")},
		{Key: "totalEvents", Value: float64(len(ThreadEvents(thread)))},
	}
}

// ParseUser is parseUser: an agent keeps id, type, name, email, avatar; a
// customer has id, type, fields (or {}), and name/email only when truthy.
func ParseUser(user json.RawMessage) (jsonobj.Object, error) {
	w, err := jsonobj.ParseObject(user)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	return parseUser(w), nil
}

func parseUser(w jsonobj.Object) jsonobj.Object {
	if isJSString(w.Raw("type"), "agent") { // user.type === 'agent'
		return jsonobj.Object{
			{Key: "id", Value: w.Raw("id")},
			{Key: "type", Value: w.Raw("type")},
			{Key: "name", Value: w.Raw("name")},
			{Key: "email", Value: w.Raw("email")},
			{Key: "avatar", Value: w.Raw("avatar")},
		}
	}
	fields := w.Raw("fields")
	if !truthy(fields) {
		fields = rawEmptyObject
	}
	o := jsonobj.Object{{Key: "id", Value: w.Raw("id")}, {Key: "type", Value: w.Raw("type")}, {Key: "fields", Value: fields}}
	if n := w.Raw("name"); truthy(n) {
		o = append(o, jsonobj.Member{Key: "name", Value: n})
	}
	if e := w.Raw("email"); truthy(e) {
		o = append(o, jsonobj.Member{Key: "email", Value: e})
	}
	return o
}

// parseObjects parses raw, a member value of a parsed object (valid JSON
// already: split where it lies, not validated again), as an array of
// objects.
func parseObjects(raw json.RawMessage) ([]jsonobj.Object, error) {
	if raw == nil {
		return nil, fmt.Errorf("missing array")
	}
	elems, ok := jsonobj.ParseValidArray(raw)
	if !ok { // not an array: the decoder says what it is
		var err error
		if elems, err = jsonobj.ParseArray(raw); err != nil {
			return nil, err
		}
		if elems == nil {
			return nil, fmt.Errorf("null array")
		}
	}
	out := make([]jsonobj.Object, len(elems))
	for i, e := range elems {
		var err error
		if out[i], err = jsonobj.ParseMember(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseUsers(raw json.RawMessage) ([]jsonobj.Object, error) {
	ws, err := parseObjects(raw)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	for i := range ws {
		ws[i] = parseUser(ws[i])
	}
	return ws, nil
}

func userEvents(users []jsonobj.Object) []Event {
	ev := make([]Event, len(users))
	for i, u := range users {
		ev[i] = Event{EventUserData, u}
	}
	return ev
}

// newThreadData is parseNewThreadData(chat): the chat's thread parsed, its
// events in wire order (not sorted, as the SDK does), and its users.
type newThreadData struct {
	chat   json.RawMessage
	events []jsonobj.Object
	users  []jsonobj.Object
	thread jsonobj.Object
}

func parseNewThreadData(chatRaw json.RawMessage) (*newThreadData, error) {
	chat, err := jsonobj.ParseMember(chatRaw) // a member of a parsed payload: valid already
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	tw, err := jsonobj.ParseMember(chat.Raw("thread"))
	if err != nil {
		return nil, fmt.Errorf("chat.thread: %w", err)
	}
	wevents, err := parseObjects(tw.Raw("events"))
	if err != nil {
		return nil, fmt.Errorf("chat.thread.events: %w", err)
	}
	d := &newThreadData{chat: chat.Raw("id")}
	tid := tw.Raw("id")
	d.events = make([]jsonobj.Object, len(wevents))
	for i, e := range wevents {
		d.events[i] = parseEvent(tid, e)
	}
	if d.users, err = parseUsers(chat.Raw("users")); err != nil {
		return nil, err
	}
	if d.thread, err = parseThread(d.chat, tw); err != nil {
		return nil, err
	}
	return d, nil
}

// events are emitNewThreadData: user_data per user, then thread_summary.
func (d *newThreadData) summaryEvents() []Event {
	return append(userEvents(d.users), Event{EventThreadSummary, ThreadSummary(d.thread)})
}

// PushEvents is handlePush(parsePush(push)): the events the SDK emits for a
// push that carries no request id.
//
// The payload of a Checked frame is neither validated nor copied again:
// its events are slices of the frame, and their object data come back as
// jsonobj.Checked, which encodes without validation.
func PushEvents(f chatio.Frame) ([]Event, error) {
	return pushEvents(f.Action, f.Payload, f.Checked)
}

// pushEvents is PushEvents; checked: the payload is a Checked frame's.
func pushEvents(action string, payload json.RawMessage, checked bool) ([]Event, error) {
	var evs []Event
	var err error
	if action == chatio.PushIncomingEvent {
		evs, err = incomingEvent(payload, checked)
	} else {
		evs, err = otherPushEvents(action, payload, checked)
	}
	if checked && err == nil {
		vouch(evs)
	}
	return evs, err
}

// vouch makes the object data of events converted from a checked payload
// jsonobj.Checked: every value in them is a slice of that payload (valid,
// compact JSON), a constant, or written by strconv or json.Marshal.
func vouch(evs []Event) {
	for i := range evs {
		if o, ok := evs[i].Data.(jsonobj.Object); ok {
			evs[i].Data = jsonobj.Checked(o)
		}
	}
}

func otherPushEvents(action string, payload json.RawMessage, checked bool) ([]Event, error) {
	switch action {
	case chatio.PushChatPropertiesUpdated, chatio.PushChatThreadPropertiesUpdated,
		chatio.PushLastSeenTimestampUpdated, chatio.PushThreadClosed,
		chatio.PushChatUsersUpdated, chatio.PushIncomingTypingIndicator:
		p, err := parsePayload(action, payload, checked)
		if err != nil {
			return nil, err
		}
		return objectPushEvents(action, p)
	case chatio.PushIncomingChatThread:
		p, err := parsePayload(action, payload, checked)
		if err != nil {
			return nil, err
		}
		d, err := parseNewThreadData(p.Raw("chat"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", action, err)
		}
		ev := d.summaryEvents()
		for _, e := range d.events {
			ev = append(ev, Event{EventNewEvent, jsonobj.Object{{Key: "chat", Value: d.chat}, {Key: "event", Value: e}}})
		}
		return ev, nil
	case chatio.PushCustomerDisconnected:
		return []Event{{EventDisconnected, rawOrNull(payload)}}, nil
	default:
		return []Event{{action, rawOrNull(payload)}}, nil
	}
}

// parsePayload is ParseObject of a push's payload, its error naming the
// push; a checked payload (a Checked frame's) is split where it lies,
// neither validated nor copied.
func parsePayload(action string, payload json.RawMessage, checked bool) (jsonobj.Object, error) {
	if checked && len(payload) > 0 && payload[0] == '{' {
		return jsonobj.ParseValidObject(payload), nil
	}
	p, err := jsonobj.ParseObject(payload)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", action, err)
	}
	return p, nil
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	return r
}

// incomingEvent is pushEvents of an incoming_event payload: most pushes,
// kept apart from the other kinds so that its frames on the read loop's
// stack stay small.
func incomingEvent(payload json.RawMessage, checked bool) ([]Event, error) {
	p, err := parsePayload(chatio.PushIncomingEvent, payload, checked)
	if err != nil {
		return nil, err
	}
	e, err := jsonobj.ParseMember(p.Raw("event"))
	if err != nil {
		return nil, fmt.Errorf("%s event: %w", chatio.PushIncomingEvent, err)
	}
	data := jsonobj.Object{{Key: "chat", Value: p.RawValue("chat_id")}, {Key: "event", Value: parseEvent(p.Raw("thread_id"), e)}}
	if checked { // vouched at once: boxed once
		return []Event{{EventNewEvent, jsonobj.Checked(data)}}, nil
	}
	return []Event{{EventNewEvent, data}}, nil
}

func objectPushEvents(action string, p jsonobj.Object) ([]Event, error) {
	chat := p.Raw("chat_id")
	switch action {
	case chatio.PushChatPropertiesUpdated:
		return []Event{{action, jsonobj.Object{{Key: "chat", Value: chat}, {Key: "properties", Value: p.Raw("properties")}}}}, nil
	case chatio.PushChatThreadPropertiesUpdated:
		return []Event{{action, jsonobj.Object{{Key: "chat", Value: chat}, {Key: "thread", Value: p.Raw("thread_id")}, {Key: "properties", Value: p.Raw("properties")}}}}, nil
	case chatio.PushLastSeenTimestampUpdated:
		return []Event{{action, jsonobj.Object{{Key: "chat", Value: chat}, {Key: "user", Value: p.Raw("user_id")}, {Key: "timestamp", Value: msTimestamp(p.Raw("timestamp"))}}}}, nil
	case chatio.PushThreadClosed:
		return []Event{{action, jsonobj.Object{{Key: "chat", Value: chat}}}}, nil
	case chatio.PushIncomingTypingIndicator:
		ti, err := jsonobj.ParseMember(p.Raw("typing_indicator"))
		if err != nil {
			return nil, fmt.Errorf("%s typing_indicator: %w", action, err)
		}
		name := EventUserStoppedTyping
		if truthy(ti.Raw("is_typing")) {
			name = EventUserIsTyping
		}
		return []Event{{name, jsonobj.Object{{Key: "chat", Value: chat}, {Key: "user", Value: ti.Raw("author_id")}}}}, nil
	case chatio.PushChatUsersUpdated:
		uu, err := jsonobj.ParseMember(p.Raw("updated_users"))
		if err != nil {
			return nil, fmt.Errorf("%s updated_users: %w", action, err)
		}
		added, err := parseObjects(uu.Raw("added"))
		if err != nil {
			return nil, fmt.Errorf("%s added: %w", action, err)
		}
		removed, ok := jsonobj.ParseValidArray(uu.Raw("removed_ids")) // a member of a parsed object: valid
		if !ok {
			return nil, fmt.Errorf("%s removed_ids: not an array", action)
		}
		ev := make([]Event, 0, 2*len(added)+len(removed))
		for _, u := range added {
			ev = append(ev, Event{EventUserData, parseUser(u)})
		}
		for _, u := range added {
			ev = append(ev, Event{EventUserJoinedChat, jsonobj.Object{{Key: "user", Value: u.Raw("id")}, {Key: "chat", Value: chat}}})
		}
		for _, id := range removed {
			ev = append(ev, Event{EventUserLeftChat, jsonobj.Object{{Key: "user", Value: id}, {Key: "chat", Value: chat}}})
		}
		return ev, nil
	}
	return nil, fmt.Errorf("unhandled push %q", action)
}

// ResultPushEvents returns what the result push f of an indirect request
// gives as a plain push, less the user_data and thread_summary events that
// ResultEvents already emits for the caller. The SDK's calling tab emits
// nothing for a result push; its other tabs (other sockets) get the plain
// push. A gateway session has one socket for every tab, so API.md asks for
// these events on every stream: new_event for a sent event or a started
// chat's events, thread_closed, chat_properties_updated,
// chat_thread_properties_updated, last_seen_timestamp_updated. A response
// frame (a direct request's result) has none.
func ResultPushEvents(f chatio.Frame) ([]Event, error) {
	if f.Type != chatio.TypePush {
		return nil, nil
	}
	all, err := pushEvents(f.Action, f.Payload, f.Checked)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if e.Name != EventUserData && e.Name != EventThreadSummary {
			out = append(out, e)
		}
	}
	return out, nil
}

// ResultEvents is what handleResponse emits when the result of action
// arrives: user_data for get_chat_threads and get_chats_summary, user_data
// and thread_summary for start_chat and a send_event that started a thread.
func ResultEvents(action string, payload json.RawMessage) ([]Event, error) {
	return resultEvents(action, payload, false)
}

// ResultFrameEvents is ResultEvents of f's payload, f being the result of
// action: the payload of a Checked frame is split where it lies, and the
// object data of the events come back as jsonobj.Checked.
func ResultFrameEvents(action string, f chatio.Frame) ([]Event, error) {
	evs, err := resultEvents(action, f.Payload, f.Checked)
	if f.Checked && err == nil {
		vouch(evs)
	}
	return evs, err
}

// resultEvents is ResultEvents; checked: the payload is a Checked frame's.
func resultEvents(action string, payload json.RawMessage, checked bool) ([]Event, error) {
	switch action {
	case chatio.ActionGetChatThreads:
		// parseGetChatThreadsResponse parses the threads before the users:
		// threads it cannot parse throw, and no user_data is emitted.
		if _, err := ParseChatThreads(payload); err != nil {
			return nil, err
		}
		chat, _ := payloadChat(payload)
		users, err := parseUsers(chat.Raw("users"))
		if err != nil {
			return nil, err
		}
		return userEvents(users), nil
	case chatio.ActionGetChatsSummary:
		_, ev, err := ParseChatsSummary(payload)
		return ev, err
	case chatio.ActionStartChat, chatio.ActionSendEvent:
		var p jsonobj.Object
		if checked && len(payload) > 0 && payload[0] == '{' {
			p = jsonobj.ParseValidObject(payload)
		} else {
			var err error
			if p, err = jsonobj.ParseObject(payload); err != nil {
				return nil, err
			}
		}
		if action == chatio.ActionSendEvent && !truthy(p.Raw("chat")) {
			return nil, nil
		}
		d, err := parseNewThreadData(p.Raw("chat"))
		if err != nil {
			return nil, err
		}
		return d.summaryEvents(), nil
	}
	return nil, nil
}

// Success is the SDK's SUCCESS completion value.
var Success = jsonobj.Object{{Key: "success", Value: rawTrue}}

// ParseResult is parseResponse followed by handleResponse's choice of what
// to resolve: the value the SDK method's promise resolves to.
func ParseResult(action string, payload json.RawMessage) (any, error) {
	switch action {
	case chatio.ActionCloseThread, chatio.ActionSendSneakPeek, chatio.ActionUpdateChatProperties,
		chatio.ActionUpdateChatThreadProperties, chatio.ActionUpdateCustomer:
		return Success, nil
	case chatio.ActionGetChatThreads:
		return ParseChatThreads(payload)
	case chatio.ActionGetChatThreadsSummary:
		return parseThreadsSummary(payload)
	case chatio.ActionGetChatsSummary:
		cs, _, err := ParseChatsSummary(payload)
		return cs, err
	case chatio.ActionSendEvent:
		p, err := jsonobj.ParseObject(payload)
		if err != nil {
			return nil, err
		}
		if truthy(p.Raw("chat")) {
			d, err := parseNewThreadData(p.Raw("chat"))
			if err != nil {
				return nil, err
			}
			if len(d.events) == 0 {
				return json.RawMessage("null"), nil
			}
			return d.events[0], nil
		}
		e, err := jsonobj.ParseObject(p.Raw("event"))
		if err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
		return parseEvent(p.Raw("thread_id"), e), nil
	case chatio.ActionStartChat:
		return parseStartChat(payload)
	case chatio.ActionUpdateLastSeenTimestamp:
		p, err := jsonobj.ParseObject(payload)
		if err != nil {
			return nil, err
		}
		return jsonobj.Object{{Key: "timestamp", Value: msTimestamp(p.Raw("timestamp"))}}, nil
	}
	return rawOrNull(payload), nil
}

// payloadChat parses a result payload and its "chat" object.
func payloadChat(payload json.RawMessage) (jsonobj.Object, error) {
	p, err := jsonobj.ParseObject(payload)
	if err != nil {
		return nil, err
	}
	chat, err := jsonobj.ParseObject(p.Raw("chat"))
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return chat, nil
}

// ParseChatThreads is parseGetChatThreadsResponse: the chat's threads sorted
// by order, parsed.
func ParseChatThreads(payload json.RawMessage) ([]jsonobj.Object, error) {
	chat, err := payloadChat(payload)
	if err != nil {
		return nil, err
	}
	ws, err := parseObjects(chat.Raw("threads"))
	if err != nil {
		return nil, fmt.Errorf("chat.threads: %w", err)
	}
	sortByOrder(ws)
	id := chat.Raw("id")
	out := make([]jsonobj.Object, len(ws))
	for i, w := range ws {
		if out[i], err = parseThread(id, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseThreadsSummary(payload json.RawMessage) (jsonobj.Object, error) {
	p, err := jsonobj.ParseObject(payload)
	if err != nil {
		return nil, err
	}
	ws, err := parseObjects(p.Raw("threads_summary"))
	if err != nil {
		return nil, fmt.Errorf("threads_summary: %w", err)
	}
	sortByOrder(ws)
	list := make([]jsonobj.Object, len(ws))
	for i, w := range ws {
		list[i] = jsonobj.Object{{Key: "id", Value: w.Raw("id")}, {Key: "order", Value: w.Raw("order")}, {Key: "totalEvents", Value: w.Raw("events_count")}}
	}
	return jsonobj.Object{{Key: "threadsSummary", Value: list}, {Key: "totalThreads", Value: p.Raw("total_threads")}}, nil
}

func parseStartChat(payload json.RawMessage) (jsonobj.Object, error) {
	chat, err := payloadChat(payload)
	if err != nil {
		return nil, err
	}
	thread, err := jsonobj.ParseObject(chat.Raw("thread"))
	if err != nil {
		return nil, fmt.Errorf("chat.thread: %w", err)
	}
	users, err := parseObjects(chat.Raw("users"))
	if err != nil {
		return nil, fmt.Errorf("chat.users: %w", err)
	}
	ids := make([]json.RawMessage, len(users))
	for i, u := range users {
		ids[i] = rawOrNull(u.Raw("id")) // [undefined] stringifies as [null]
	}
	props := chat.Raw("properties")
	if !truthy(props) {
		props = rawEmptyObject
	}
	return jsonobj.Object{
		{Key: "id", Value: chat.Raw("id")},
		{Key: "users", Value: ids},
		{Key: "threads", Value: []json.RawMessage{rawOrNull(thread.Raw("id"))}},
		{Key: "properties", Value: props},
	}, nil
}

// ChatsSummary is what getChatsSummary resolves and what connected and
// connection_restored carry.
type ChatsSummary struct {
	ChatsSummary []jsonobj.Object `json:"chatsSummary"`
	TotalChats   json.RawMessage  `json:"totalChats,omitempty"`
}

// ParseChatsSummary is parseGetChatsSummaryResponse: the summary and the
// user_data events the SDK emits for every user of every chat.
func ParseChatsSummary(payload json.RawMessage) (ChatsSummary, []Event, error) {
	var cs ChatsSummary
	p, err := jsonobj.ParseObject(payload)
	if err != nil {
		return cs, nil, err
	}
	summaries, err := parseObjects(p.Raw("chats_summary"))
	if err != nil {
		return cs, nil, fmt.Errorf("chats_summary: %w", err)
	}
	cs.TotalChats = p.Raw("total_chats")
	type keyed struct {
		summary jsonobj.Object
		key     float64
	}
	list := make([]keyed, len(summaries))
	var users []Event
	for i, w := range summaries {
		s, key, us, err := parseChatSummary(w)
		if err != nil {
			return cs, nil, err
		}
		list[i] = keyed{s, key}
		users = append(users, us...)
	}
	// numericSortBy(({lastEvent, order}) => -1 * (lastEvent !== undefined
	// ? lastEvent.timestamp : order)): newest first.
	jsSort(list, func(a, b keyed) float64 { return a.key - b.key })
	cs.ChatsSummary = make([]jsonobj.Object, len(list))
	for i, k := range list {
		cs.ChatsSummary[i] = k.summary
	}
	return cs, users, nil
}

// parseChatSummary returns one parsed summary, its sort key
// (-1 * (lastEvent.timestamp or order), null counting as 0, an infinite
// timestamp as infinite although it prints null), and user_data events for
// its users.
func parseChatSummary(w jsonobj.Object) (jsonobj.Object, float64, []Event, error) {
	props := w.Raw("properties")
	if props == nil {
		props = rawEmptyObject
	}
	wusers, err := parseObjects(w.Raw("users"))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("chat summary users: %w", err)
	}
	ids := make([]json.RawMessage, len(wusers))
	var sb jsonobj.Builder
	events := make([]Event, len(wusers))
	for i, u := range wusers {
		ids[i] = rawOrNull(u.Raw("id"))
		sb.Set(jsString(u.Raw("id")), msTimestamp(u.Raw("last_seen_timestamp")))
		events[i] = Event{EventUserData, parseUser(u)}
	}
	seen := sb.Object()
	if seen == nil {
		seen = jsonobj.Object{}
	}
	s := jsonobj.Object{
		{Key: "id", Value: w.Raw("id")},
		{Key: "order", Value: msTimestamp(w.Raw("order"))},
		{Key: "properties", Value: props},
		{Key: "users", Value: ids},
		{Key: "lastSeenTimestamps", Value: seen},
	}
	sortTS := w.Raw("order")
	if lept := w.Raw("last_event_per_type"); truthy(lept) {
		perType, last, lastTS, err := parseLastEvents(lept)
		if err != nil {
			return nil, 0, nil, err
		}
		s = append(s, jsonobj.Member{Key: "lastEventsPerType", Value: perType})
		if last != nil {
			s = append(s, jsonobj.Member{Key: "lastEvent", Value: last})
			sortTS = lastTS
		}
	}
	key, _ := serverTimestamp(sortTS) // null → 0, as -1 * null is -0 in JavaScript
	return s, -1 * key, events, nil
}

// parseLastEvents maps last_event_per_type through parseEvent
// (lastEventsPerType) and picks lastEvent: the entries, in Object.keys
// order, sorted by the SDK's comparator (same thread_id, by ===: by event
// order, else by thread_order; both through JavaScript's subtraction), the
// last one's event.type looked up in lastEventsPerType. It also returns the
// winner's wire timestamp, the chats' sort key.
func parseLastEvents(raw json.RawMessage) (perType jsonobj.Object, last jsonobj.Object, lastTS json.RawMessage, err error) {
	lept, err := lastEventsObject(raw)
	if err != nil || len(lept) == 0 {
		return jsonobj.Object{}, nil, nil, err
	}
	type entry struct {
		threadID    json.RawMessage
		threadOrder json.RawMessage
		event       jsonobj.Object
	}
	lept = lept.JSOrder() // Object.keys order
	perType = make(jsonobj.Object, 0, len(lept))
	wireTS := make(map[string]json.RawMessage, len(lept))
	entries := make([]entry, 0, len(lept))
	for _, m := range lept {
		v, err := jsonobj.ParseObject(m.Value.(json.RawMessage))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("last_event_per_type.%s: %w", m.Key, err)
		}
		ev, err := jsonobj.ParseObject(v.Raw("event"))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("last_event_per_type.%s.event: %w", m.Key, err)
		}
		perType = append(perType, jsonobj.Member{Key: m.Key, Value: parseEvent(v.Raw("thread_id"), ev)})
		wireTS[m.Key] = ev.Raw("timestamp")
		entries = append(entries, entry{v.Raw("thread_id"), v.Raw("thread_order"), ev})
	}
	jsSort(entries, func(a, b entry) float64 {
		if jsStrictEqual(a.threadID, b.threadID) {
			return jsToNumber(a.event.Raw("order")) - jsToNumber(b.event.Raw("order"))
		}
		return jsToNumber(a.threadOrder) - jsToNumber(b.threadOrder)
	})
	// lastEventsPerType[last.event.type]: the parsed event stored under the
	// winner's type, which need not be the winner's own key.
	key := jsString(entries[len(entries)-1].event.Raw("type"))
	found, _ := perType.Get(key).(jsonobj.Object)
	if found == nil {
		return perType, nil, nil, nil // undefined: no lastEvent
	}
	return perType, append(jsonobj.Object(nil), found...), wireTS[key], nil // cloneDeep
}

// lastEventsObject is what Object.keys/mapValues see of a truthy
// last_event_per_type: an object's members; an array's elements under
// "0", "1", …; nothing for a number or true. Object.keys of a string gives
// its characters, whose event is undefined: parseEvent throws.
func lastEventsObject(raw json.RawMessage) (jsonobj.Object, error) {
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '{':
		return jsonobj.ParseObject(raw)
	case '[':
		elems, err := jsonobj.ParseArray(raw)
		if err != nil {
			return nil, err
		}
		o := make(jsonobj.Object, len(elems))
		for i, e := range elems {
			o[i] = jsonobj.Member{Key: strconv.Itoa(i), Value: e}
		}
		return o, nil
	case '"':
		return nil, fmt.Errorf("last_event_per_type is a string: the SDK throws")
	}
	return nil, nil
}

// isJSString reports whether r is the JSON string s (v === s).
func isJSString(r json.RawMessage, s string) bool {
	r = bytes.TrimSpace(r)
	if plain, ok := jsonobj.PlainString(r); ok { // its value is its bytes: no decoder
		return string(plain) == s
	}
	return len(r) > 0 && r[0] == '"' && jsString(r) == s
}
