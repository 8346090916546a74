package sdk

// Table tests for the conversion's edge cases. Each expected value is
// derived by reading the SDK 0.9.1 source (lib/serverDataParser.js and
// @livechat/data-utils), named in the case; the wire-level scenarios of
// sdk_golden_test.go check the same rules against the SDK itself. Expected
// JSON is compared byte for byte: key order included, as JSON.stringify
// writes it.

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

func marshalString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// parseServerTimestamp = t => typeof t === 'number' ? t * 1000 : null, then
// JSON.stringify: shortest round-trip form, non-finite as null, -0 as 0.
func TestSDKTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name, wire, want string
	}{
		{"integer seconds", `1536700120`, `1536700120000`},
		{"fractional seconds", `1536700130.25`, `1536700130250`},
		{"float rounding as in JavaScript", `1535000263.257`, `1535000263257`},
		{"exponent form", `1.5367e9`, `1536700000000`},
		{"zero", `0`, `0`},
		{"minus zero prints 0", `-0`, `0`},
		{"negative", `-5`, `-5000`},
		{"tiny: 1e-10 * 1000 as JavaScript computes it", `1e-10`, `1.0000000000000001e-7`},
		{"small: exponent form below 1e-6", `1e-12`, `1e-9`},
		{"product overflows to Infinity: null", `1e306`, `null`},
		{"literal overflows to Infinity: null", `1e400`, `null`},
		{"numeric string is not a number", `"1536700120"`, `null`},
		{"null", `null`, `null`},
		{"boolean", `true`, `null`},
		{"object", `{"s":1}`, `null`},
		{"absent (undefined)", ``, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(msTimestamp(json.RawMessage(tc.wire))); got != tc.want {
				t.Errorf("msTimestamp(%s) = %s, want %s", tc.wire, got, tc.want)
			}
			// Through the public path: an event's timestamp.
			ev := `{"id":"E","type":"message","author_id":"a","order":1,"text":"x"}`
			if tc.wire != "" {
				ev = `{"id":"E","type":"message","author_id":"a","timestamp":` + tc.wire + `,"order":1,"text":"x"}`
			}
			o, err := ParseEvent(json.RawMessage(`"T"`), json.RawMessage(ev))
			if err != nil {
				t.Fatal(err)
			}
			want := `{"id":"E","author":"a","timestamp":` + tc.want + `,"thread":"T","type":"message","text":"x"}`
			if got := marshalString(t, o); got != want {
				t.Errorf("ParseEvent: got %s, want %s", got, want)
			}
		})
	}
}

// parseCustomer: {id, type, fields: fields || {}}, then name and email only
// `if (customer.name)` / `if (customer.email)` (truthy). parseAgent: exactly
// id, type, name, email, avatar, undefined ones dropped by JSON.stringify.
// parseUser: user.type === 'agent', else customer.
func TestSDKUsers(t *testing.T) {
	for _, tc := range []struct {
		name, wire, want string
	}{
		{"customer with name and email", `{"id":"c","type":"customer","name":"Ann","email":"a@x","fields":{"k":"v"}}`,
			`{"id":"c","type":"customer","fields":{"k":"v"},"name":"Ann","email":"a@x"}`},
		{"empty name and email are dropped", `{"id":"c","type":"customer","name":"","email":"","fields":{}}`,
			`{"id":"c","type":"customer","fields":{}}`},
		{"null name and email are dropped", `{"id":"c","type":"customer","name":null,"email":null}`,
			`{"id":"c","type":"customer","fields":{}}`},
		{"name 0 and email false are dropped", `{"id":"c","type":"customer","name":0,"email":false}`,
			`{"id":"c","type":"customer","fields":{}}`},
		{"name \"0\" is truthy", `{"id":"c","type":"customer","name":"0","email":" "}`,
			`{"id":"c","type":"customer","fields":{},"name":"0","email":" "}`},
		{"name 7 (a truthy number) is kept as is", `{"id":"c","type":"customer","name":7}`,
			`{"id":"c","type":"customer","fields":{},"name":7}`},
		{"fields null", `{"id":"c","type":"customer","fields":null}`, `{"id":"c","type":"customer","fields":{}}`},
		{"fields 0", `{"id":"c","type":"customer","fields":0}`, `{"id":"c","type":"customer","fields":{}}`},
		{"fields empty string", `{"id":"c","type":"customer","fields":""}`, `{"id":"c","type":"customer","fields":{}}`},
		{"fields [] is truthy", `{"id":"c","type":"customer","fields":[]}`, `{"id":"c","type":"customer","fields":[]}`},
		{"customer keeps no other key", `{"id":"c","type":"customer","avatar":"x","last_seen_timestamp":1}`,
			`{"id":"c","type":"customer","fields":{}}`},
		{"no type: a customer without type", `{"id":"b","name":"Bot"}`, `{"id":"b","fields":{},"name":"Bot"}`},
		{"type Agent (case) is a customer", `{"id":"b","type":"Agent","name":"A"}`, `{"id":"b","type":"Agent","fields":{},"name":"A"}`},
		{"agent, every key", `{"avatar":"u","email":"e","name":"n","type":"agent","id":"a","fields":{"x":1}}`,
			`{"id":"a","type":"agent","name":"n","email":"e","avatar":"u"}`},
		{"agent without avatar: no avatar key", `{"id":"a","type":"agent","name":"n","email":"e"}`,
			`{"id":"a","type":"agent","name":"n","email":"e"}`},
		{"agent with null avatar keeps null", `{"id":"a","type":"agent","name":"n","email":"e","avatar":null}`,
			`{"id":"a","type":"agent","name":"n","email":"e","avatar":null}`},
		{"agent with empty name keeps it", `{"id":"a","type":"agent","name":"","email":""}`,
			`{"id":"a","type":"agent","name":"","email":""}`},
		{"agent type written with an escape", `{"id":"a","type":"\u0061gent","name":"n"}`,
			`{"id":"a","type":"\u0061gent","name":"n"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseUser(json.RawMessage(tc.wire))
			if err != nil {
				t.Fatal(err)
			}
			if got := marshalString(t, o); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// parseEvent: parseCommonEventProps {id, author, timestamp, thread,
// customId (when custom_id !== undefined)}, then by type: message adds
// type and text; file adds type, contentType, url, and width and height
// only when both are !== undefined (parseFile → parseImage); any other type
// is _extends(common, omit([id, author_id, timestamp, custom_id, order],
// event)): the wire's own keys override common ones in place, and
// array-index keys come first (JavaScript property order).
func TestSDKEvents(t *testing.T) {
	for _, tc := range []struct {
		name, wire, want string
	}{
		{"message with custom_id", `{"id":"E","type":"message","author_id":"a","timestamp":1,"order":1,"text":"hi","custom_id":"c1","extra":1}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","customId":"c1","type":"message","text":"hi"}`},
		{"custom_id null is kept", `{"id":"E","type":"message","author_id":"a","timestamp":1,"text":"hi","custom_id":null}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","customId":null,"type":"message","text":"hi"}`},
		{"message without text", `{"id":"E","type":"message","author_id":"a","timestamp":1}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"message"}`},
		{"file with width and height", `{"id":"E","type":"file","author_id":"a","timestamp":1,"content_type":"image/png","url":"u","width":2,"height":3,"name":"n"}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"file","contentType":"image/png","url":"u","width":2,"height":3}`},
		{"file with only a width", `{"id":"E","type":"file","author_id":"a","timestamp":1,"content_type":"image/png","url":"u","width":2}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"file","contentType":"image/png","url":"u"}`},
		{"file with only a height", `{"id":"E","type":"file","author_id":"a","timestamp":1,"content_type":"image/png","url":"u","height":2}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"file","contentType":"image/png","url":"u"}`},
		{"file with null width and height: both kept", `{"id":"E","type":"file","author_id":"a","timestamp":1,"content_type":"image/png","url":"u","width":null,"height":null}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"file","contentType":"image/png","url":"u","width":null,"height":null}`},
		{"file without url and content_type", `{"id":"E","type":"file","author_id":"a","timestamp":1}`,
			`{"id":"E","author":"a","timestamp":1000,"thread":"T","type":"file"}`},
		{"custom event overriding thread and author", `{"id":"E","type":"card","author_id":"a","timestamp":1,"order":4,"thread":"OTHER","author":"b","custom_id":"c","x":[1]}`,
			`{"id":"E","author":"b","timestamp":1000,"thread":"OTHER","customId":"c","type":"card","x":[1]}`},
		{"custom event with a customId field overriding custom_id", `{"id":"E","type":"card","customId":"mine","custom_id":"c"}`,
			`{"id":"E","timestamp":null,"thread":"T","customId":"mine","type":"card"}`},
		{"custom event: id, author_id, timestamp, custom_id, order never pass", `{"type":"card","id":"E","author_id":"a","timestamp":"x","order":1}`,
			`{"id":"E","author":"a","timestamp":null,"thread":"T","type":"card"}`},
		{"custom event with array-index keys: first, ascending", `{"id":"E","type":"poll","10":"c","b":"x","2":"b","01":"not an index"}`,
			`{"2":"b","10":"c","id":"E","timestamp":null,"thread":"T","type":"poll","b":"x","01":"not an index"}`},
		{"type [\"file\"] is not 'file'", `{"id":"E","type":["file"],"url":"u","width":1,"height":1}`,
			`{"id":"E","timestamp":null,"thread":"T","type":["file"],"url":"u","width":1,"height":1}`},
		{"no type at all", `{"id":"E","author_id":"a","text":"t"}`,
			`{"id":"E","author":"a","timestamp":null,"thread":"T","text":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseEvent(json.RawMessage(`"T"`), json.RawMessage(tc.wire))
			if err != nil {
				t.Fatal(err)
			}
			if got := marshalString(t, o); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Properties: parseGetChatsSummaryResponse destructures `properties = {}`:
// only undefined (absent) becomes {}; parseThread and
// parseStartChatResponse write `properties || {}`: any falsy value does.
func TestSDKPropertiesFalsy(t *testing.T) {
	for _, tc := range []struct {
		wire, summary, thread string // "" wire: absent
	}{
		{"", `{}`, `{}`},
		{`null`, `null`, `{}`},
		{`false`, `false`, `{}`},
		{`0`, `0`, `{}`},
		{`""`, `""`, `{}`},
		{`{}`, `{}`, `{}`},
		{`[]`, `[]`, `[]`},
		{`{"a":1}`, `{"a":1}`, `{"a":1}`},
		{`"s"`, `"s"`, `"s"`},
	} {
		props := ""
		if tc.wire != "" {
			props = `,"properties":` + tc.wire
		}
		summary := `{"chats_summary":[{"id":"C","order":1,"users":[]` + props + `}],"total_chats":1}`
		cs, _, err := ParseChatsSummary(json.RawMessage(summary))
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalString(t, cs.ChatsSummary[0].Get("properties")); got != tc.summary {
			t.Errorf("summary properties %q: got %s, want %s", tc.wire, got, tc.summary)
		}
		thread := `{"id":"T","active":true,"order":1,"user_ids":[],"events":[]` + props + `}`
		th, err := ParseThread(json.RawMessage(`"C"`), json.RawMessage(thread))
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalString(t, th.Get("properties")); got != tc.thread {
			t.Errorf("thread properties %q: got %s, want %s", tc.wire, got, tc.thread)
		}
		start := `{"chat":{"id":"C","users":[],"thread":` + thread + props + `}}`
		res, err := ParseResult(chatio.ActionStartChat, json.RawMessage(start))
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalString(t, res.(jsonobj.Object).Get("properties")); got != tc.thread {
			t.Errorf("start_chat properties %q: got %s, want %s", tc.wire, got, tc.thread)
		}
	}
}

// lastEvent: the entries of last_event_per_type in Object.keys order, sorted
// with (a, b) => a.thread_id === b.thread_id ? a.event.order - b.event.order
// : a.thread_order - b.thread_order, and last() of that, looked up again by
// its event.type. Array.prototype.sort is stable, so among equals the later
// key wins.
func TestSDKLastEventSelection(t *testing.T) {
	ev := func(id, typ string, order string) string {
		return `{"id":"` + id + `","type":"` + typ + `","author_id":"a","timestamp":10,"order":` + order + `,"text":"t"}`
	}
	entry := func(thread, threadOrder, event string) string {
		return `{"thread_id":"` + thread + `","thread_order":` + threadOrder + `,"event":` + event + `}`
	}
	for _, tc := range []struct {
		name, lept, wantID string // "" wantID: no lastEvent
	}{
		{"newer thread wins over higher event order",
			`{"file":` + entry("T1", "1", ev("f", "file", "9")) + `,"message":` + entry("T2", "2", ev("m", "message", "1")) + `}`, "m"},
		{"same thread: higher event order wins",
			`{"message":` + entry("T1", "1", ev("m", "message", "4")) + `,"file":` + entry("T1", "1", ev("f", "file", "5")) + `}`, "f"},
		{"same thread, equal orders: the later key wins",
			`{"message":` + entry("T1", "1", ev("m", "message", "2")) + `,"file":` + entry("T1", "1", ev("f", "file", "2")) + `}`, "f"},
		{"equal thread orders across threads: the later key wins",
			`{"file":` + entry("T1", "3", ev("f", "file", "9")) + `,"message":` + entry("T2", "3", ev("m", "message", "1")) + `}`, "m"},
		{"array-index keys come first in Object.keys, so a tie goes to the named key",
			`{"message":` + entry("T1", "1", ev("m", "message", "2")) + `,"7":` + entry("T1", "1", ev("s", "7", "2")) + `}`, "m"},
		{"thread orders as numeric strings subtract as numbers",
			`{"message":` + entry("T1", `"10"`, ev("m", "message", "1")) + `,"file":` + entry("T2", `"9"`, ev("f", "file", "1")) + `}`, "m"},
		{"the winner's type has no entry of its own: no lastEvent",
			`{"message":` + entry("T1", "1", ev("f", "file", "2")) + `}`, ""},
		{"the winner's type names another entry: that one",
			`{"message":` + entry("T1", "1", ev("m", "message", "1")) + `,"rich":` + entry("T1", "1", ev("f", "message", "2")) + `}`, "m"},
		{"empty object: no lastEvent", `{}`, ""},
		{"a number: Object.keys is empty", `5`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			summary := `{"chats_summary":[{"id":"C","order":1,"users":[],"last_event_per_type":` + tc.lept + `}]}`
			cs, _, err := ParseChatsSummary(json.RawMessage(summary))
			if err != nil {
				t.Fatal(err)
			}
			s := cs.ChatsSummary[0]
			if s.Get("lastEventsPerType") == nil {
				t.Fatalf("no lastEventsPerType in %s", marshalString(t, s))
			}
			last, _ := s.Get("lastEvent").(jsonobj.Object)
			switch {
			case tc.wantID == "" && last != nil:
				t.Errorf("lastEvent %s, want none", marshalString(t, last))
			case tc.wantID != "" && last == nil:
				t.Errorf("no lastEvent, want %s", tc.wantID)
			case tc.wantID != "" && string(last.Raw("id")) != `"`+tc.wantID+`"`:
				t.Errorf("lastEvent %s, want %s", last.Raw("id"), tc.wantID)
			}
		})
	}
	// A string's Object.keys are its characters, whose event is undefined:
	// parseEvent throws, the SDK's get_chats_summary never settles.
	if _, _, err := ParseChatsSummary(json.RawMessage(`{"chats_summary":[{"id":"C","users":[],"last_event_per_type":"abc"}]}`)); err == nil {
		t.Errorf("last_event_per_type string: no error")
	}
}

// Chats summary order: numericSortBy(({lastEvent, order}) => -1 *
// (lastEvent !== undefined ? lastEvent.timestamp : order)), both already
// through parseServerTimestamp: a null timestamp is -1 * null = -0, i.e.
// as if at the epoch, after every positive time and before negative ones;
// the sort is stable.
func TestSDKChatsSummarySort(t *testing.T) {
	chat := func(id, order, lastTS string) string {
		s := `{"id":"` + id + `","users":[]`
		if order != "" {
			s += `,"order":` + order
		}
		if lastTS != "" {
			s += `,"last_event_per_type":{"message":{"thread_id":"T","thread_order":1,"event":{"id":"e","type":"message","order":1,"timestamp":` + lastTS + `}}}`
		}
		return s + `}`
	}
	payload := `{"chats_summary":[` + strings.Join([]string{
		chat("nullTS1", "900", `null`),         // key -0
		chat("old", "100", ""),                 // key -100000
		chat("new", "50", `300`),               // key -300000 (lastEvent beats order)
		chat("noOrder", "", ""),                // order null: key -0
		chat("negative", "-5", ""),             // key 5000: last
		chat("stringTS", "990", `"400"`),       // key -0
		chat("tie", "1", `300`),                // key -300000, after "new" (stable)
		chat("newest", "10", `1536700000.123`), // first
		chat("nullTS2", "1000", `{"t":1}`),     // key -0
		chat("sameAsOld", "100", ""),           // key -100000, after "old"
		chat("evenOlder", "99.5", ""),          // key -99500
		chat("zero", "0", ""),                  // key -0
		chat("minusZeroTS", "800", `-0`),       // key 0
		chat("tinyTS", "700", `0.000001`),      // key -0.001
		chat("boolTS", "200", `true`),          // timestamp true: null, key -0
	}, ",") + `],"total_chats":15}`
	cs, _, err := ParseChatsSummary(json.RawMessage(payload))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range cs.ChatsSummary {
		var id string
		json.Unmarshal(s.Raw("id"), &id)
		got = append(got, id)
	}
	want := []string{"newest", "new", "tie", "old", "sameAsOld", "evenOlder", "tinyTS",
		"nullTS1", "noOrder", "stringTS", "nullTS2", "zero", "minusZeroTS", "boolTS", "negative"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order\n got  %v\n want %v", got, want)
	}
	if got := marshalString(t, cs.TotalChats); got != "15" {
		t.Errorf("totalChats %s", got)
	}
}

// Chats summary details: users → ids (user.id, [undefined] → [null]),
// lastSeenTimestamps = mapValues(parseServerTimestamp ∘ last_seen_timestamp,
// keyBy('id', users)): keys are String(id), a repeated id keeps its first
// position and its last value, array-index keys first; user_data for every
// user of every chat, in wire order, before sorting.
func TestSDKChatsSummaryUsers(t *testing.T) {
	payload := `{"chats_summary":[
		{"id":"B","order":1,"users":[{"id":"u1","type":"customer","last_seen_timestamp":2},{"id":"a1","type":"agent","name":"A"}]},
		{"id":"A","order":5,"users":[
			{"id":"c","type":"customer","last_seen_timestamp":1},
			{"id":1.5e3,"type":"agent","last_seen_timestamp":"x"},
			{"id":"42","type":"agent","last_seen_timestamp":3},
			{"type":"customer","last_seen_timestamp":4},
			{"id":"c","type":"customer","last_seen_timestamp":5}
		]}]}`
	cs, users, err := ParseChatsSummary(json.RawMessage(payload))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"chatsSummary":[` +
		`{"id":"A","order":5000,"properties":{},"users":["c",1.5e3,"42",null,"c"],"lastSeenTimestamps":{"42":3000,"1500":null,"c":5000,"undefined":4000}},` +
		`{"id":"B","order":1000,"properties":{},"users":["u1","a1"],"lastSeenTimestamps":{"u1":2000,"a1":null}}]}`
	if got := marshalString(t, cs); got != want {
		t.Errorf("summary\n got  %s\n want %s", got, want)
	}
	var ids []string
	for _, u := range users {
		if u.Name != EventUserData {
			t.Fatalf("event %s", u.Name)
		}
		ids = append(ids, marshalString(t, u.Data.(jsonobj.Object).Get("id")))
	}
	if got := strings.Join(ids, " "); got != `"u1" "a1" "c" 1.5e3 "42" null "c"` {
		t.Errorf("user_data ids: %s", got)
	}
}

// Threads and events are sorted by numericSortBy('order'): sort((a, b) =>
// a.order - b.order); the subtraction applies ToNumber to each order.
func TestSDKToNumber(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		wire string
		want float64
	}{
		{`3`, 3}, {`-2.5`, -2.5}, {`1e400`, math.Inf(1)}, {`null`, 0}, {`true`, 1}, {`false`, 0},
		{``, nan}, {`{}`, nan}, {`"7"`, 7}, {`" 7 "`, 7}, {`"\t\n7\u00a0"`, 7}, {`""`, 0}, {`"  "`, 0},
		{`"0x1A"`, 26}, {`"0b11"`, 3}, {`"0o17"`, 15}, {`"-0x1A"`, nan}, {`"0x"`, nan},
		{`"1e3"`, 1000}, {`".5"`, 0.5}, {`"5."`, 5}, {`"+5"`, 5}, {`"-Infinity"`, math.Inf(-1)},
		{`"Infinity"`, math.Inf(1)}, {`"infinity"`, nan}, {`"inf"`, nan}, {`"NaN"`, nan},
		{`"1_000"`, nan}, {`"1,5"`, nan}, {`"12px"`, nan}, {`"++1"`, nan}, {`"."`, nan}, {`"1e"`, nan},
		{`[]`, 0}, {`[4]`, 4}, {`[[4]]`, 4}, {`[null]`, 0}, {`[1,2]`, nan}, {`[true]`, nan}, {`[{}]`, nan},
	} {
		got := jsToNumber(json.RawMessage(tc.wire))
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("ToNumber(%s) = %v, want %v", tc.wire, got, tc.want)
		}
	}
}

// String(v), as JavaScript turns a value into a property key (keyBy's
// acc[el.id], lastEventsPerType[event.type]).
func TestSDKJSString(t *testing.T) {
	for _, tc := range []struct{ wire, want string }{
		{`"a\u0062"`, "ab"}, {`1.5e3`, "1500"}, {`1.0`, "1"}, {`-0`, "0"}, {`1e21`, "1e+21"}, {`1e-7`, "1e-7"},
		{`0.000001`, "0.000001"}, {`123456789012345680000`, "123456789012345680000"}, {`true`, "true"},
		{`null`, "null"}, {``, "undefined"}, {`{"a":1}`, "[object Object]"}, {`[1,"b",null,[2,3]]`, "1,b,,2,3"},
	} {
		if got := jsString(json.RawMessage(tc.wire)); got != tc.want {
			t.Errorf("String(%s) = %q, want %q", tc.wire, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{`"x"`, `"x"`, true}, {`"x"`, `"\u0078"`, true}, {`1`, `1.0`, true}, {`1`, `"1"`, false},
		{``, ``, true}, {``, `null`, false}, {`null`, `null`, true}, {`{}`, `{}`, false}, {`[]`, `[]`, false},
	} {
		if got := jsStrictEqual(json.RawMessage(tc.a), json.RawMessage(tc.b)); got != tc.want {
			t.Errorf("%s === %s: %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// incoming_chat_thread: user_data per user, thread_summary (totalEvents:
// thread.events.length), then new_event per event in WIRE order
// (parseNewThreadData maps thread.events unsorted). ResultPushEvents
// keeps only the new_event part; a response frame has none.
func TestSDKIncomingChatThread(t *testing.T) {
	f := chatio.Frame{Action: chatio.PushIncomingChatThread, Type: chatio.TypePush, RequestID: json.RawMessage(`"r1"`), Payload: json.RawMessage(`{"chat":{
		"id":"C","properties":null,
		"users":[{"id":"a","type":"agent","name":"A","email":"e"}],
		"thread":{"id":"T","active":true,"order":3,"user_ids":["a"],"events":[
			{"id":"T_2","type":"message","author_id":"a","timestamp":2,"order":2,"text":"second"},
			{"id":"T_1","type":"message","author_id":"a","timestamp":1,"order":1,"text":"first"}]}}}`)}
	plain := f
	plain.RequestID = nil
	evs, err := PushEvents(plain)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"Name":"user_data","Data":{"id":"a","type":"agent","name":"A","email":"e"}},` +
		`{"Name":"thread_summary","Data":{"id":"T","chat":"C","order":3,"totalEvents":2}},` +
		`{"Name":"new_event","Data":{"chat":"C","event":{"id":"T_2","author":"a","timestamp":2000,"thread":"T","type":"message","text":"second"}}},` +
		`{"Name":"new_event","Data":{"chat":"C","event":{"id":"T_1","author":"a","timestamp":1000,"thread":"T","type":"message","text":"first"}}}]`
	if got := marshalString(t, evs); got != want {
		t.Errorf("PushEvents\n got  %s\n want %s", got, want)
	}
	nev, err := ResultPushEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, wantNew := marshalString(t, nev), "["+want[strings.Index(want, `{"Name":"new_event"`):]; got != wantNew {
		t.Errorf("ResultPushEvents\n got  %s\n want %s", got, wantNew)
	}
	// send_event resolved with this push: response.events[0], wire order.
	res, err := ParseResult(chatio.ActionSendEvent, f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.(jsonobj.Object).Raw("id")); got != `"T_2"` {
		t.Errorf("send_event resolved %s, want the wire's first event", got)
	}
	// A new thread without events resolves events[0]: undefined (null).
	empty := json.RawMessage(`{"chat":{"id":"C","users":[],"thread":{"id":"T","events":[]}}}`)
	if res, err := ParseResult(chatio.ActionSendEvent, empty); err != nil || marshalString(t, res) != "null" {
		t.Errorf("send_event with an empty new thread: %v %v", res, err)
	}
	if ev, err := ResultPushEvents(chatio.Frame{Action: chatio.ActionSendEvent, Type: chatio.TypeResponse}); err != nil || ev != nil {
		t.Errorf("ResultPushEvents of a response: %v %v", ev, err)
	}
}

// Pushes the SDK passes through: customer_disconnected → disconnected with
// the payload as is; any unknown action by its own name; an absent payload
// is undefined, written null.
func TestSDKPassThroughPushes(t *testing.T) {
	for _, tc := range []struct {
		f    chatio.Frame
		want string
	}{
		{chatio.Frame{Action: chatio.PushCustomerDisconnected, Type: chatio.TypePush, Payload: json.RawMessage(`{"reason":"too_many_connections"}`)},
			`[{"Name":"disconnected","Data":{"reason":"too_many_connections"}}]`},
		{chatio.Frame{Action: chatio.PushCustomerDisconnected, Type: chatio.TypePush}, `[{"Name":"disconnected","Data":null}]`},
		{chatio.Frame{Action: "chat_transferred", Type: chatio.TypePush, Payload: json.RawMessage(`[1,2]`)}, `[{"Name":"chat_transferred","Data":[1,2]}]`},
		{chatio.Frame{Action: chatio.PushCustomerUpdated, Type: chatio.TypePush, Payload: json.RawMessage(`{"customer":{}}`)}, `[{"Name":"customer_updated","Data":{"customer":{}}}]`},
		{chatio.Frame{Action: chatio.PushIncomingTypingIndicator, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","typing_indicator":{"author_id":"a","is_typing":"yes"}}`)},
			`[{"Name":"user_is_typing","Data":{"chat":"C","user":"a"}}]`},
		{chatio.Frame{Action: chatio.PushIncomingTypingIndicator, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","typing_indicator":{"author_id":"a","is_typing":0}}`)},
			`[{"Name":"user_stopped_typing","Data":{"chat":"C","user":"a"}}]`},
		{chatio.Frame{Action: chatio.PushLastSeenTimestampUpdated, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","user_id":"u","timestamp":"1"}`)},
			`[{"Name":"last_seen_timestamp_updated","Data":{"chat":"C","user":"u","timestamp":null}}]`},
		{chatio.Frame{Action: chatio.PushThreadClosed, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","thread_id":"T"}`)},
			`[{"Name":"thread_closed","Data":{"chat":"C"}}]`},
	} {
		evs, err := PushEvents(tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.f.Action, err)
		}
		if got := marshalString(t, evs); got != tc.want {
			t.Errorf("%s\n got  %s\n want %s", tc.f.Action, got, tc.want)
		}
	}
	// Where the SDK throws (its handler dies, nothing is emitted), so does
	// the conversion: an error, no events.
	for _, f := range []chatio.Frame{
		{Action: chatio.PushIncomingEvent, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","thread_id":"T"}`)},
		{Action: chatio.PushThreadClosed, Type: chatio.TypePush},
		{Action: chatio.PushChatUsersUpdated, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","updated_users":{"added":[]}}`)},
		{Action: chatio.PushIncomingTypingIndicator, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat_id":"C","typing_indicator":null}`)},
		{Action: chatio.PushIncomingChatThread, Type: chatio.TypePush, Payload: json.RawMessage(`{"chat":{"id":"C","users":[],"thread":{"id":"T"}}}`)},
	} {
		if evs, err := PushEvents(f); err == nil {
			t.Errorf("%s %s: no error, events %s", f.Action, f.Payload, marshalString(t, evs))
		}
	}
}

// handleResponse emits only after parseResponse succeeded: for
// get_chat_threads, parseGetChatThreadsResponse sorts and parses the
// threads before it maps the users, so unparseable threads mean no
// user_data either.
func TestSDKResultEventsAfterParse(t *testing.T) {
	bad := json.RawMessage(`{"chat":{"id":"C","users":[{"id":"a","type":"agent"}],"threads":[{"id":"T"}]}}`)
	if evs, err := ResultEvents(chatio.ActionGetChatThreads, bad); err == nil {
		t.Errorf("threads without events: no error, events %s", marshalString(t, evs))
	}
	good := json.RawMessage(`{"chat":{"id":"C","users":[{"id":"a","type":"agent"}],"threads":[{"id":"T","events":[]}]}}`)
	evs, err := ResultEvents(chatio.ActionGetChatThreads, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := marshalString(t, evs); got != `[{"Name":"user_data","Data":{"id":"a","type":"agent"}}]` {
		t.Errorf("got %s", got)
	}
}

// FuzzPushEvents feeds arbitrary frames (seed corpus: the scenarios' frames,
// testdata/fuzz/FuzzPushEvents) to the conversion: no input may panic, and
// whatever converts must encode to valid JSON. The frame's payload is also
// tried as the result of every request action, and as a chats summary.
func FuzzPushEvents(f *testing.F) {
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","author_id":"a","timestamp":1,"order":1,"text":"hi"}}}`))
	f.Add([]byte(`{"action":"chat_users_updated","type":"push","payload":{"chat_id":"C","updated_users":{"added":[{"id":"a","type":"agent"}],"removed_ids":["b"]}}}`))
	f.Add([]byte(`{"action":"x","type":"push"}`))
	actions := []string{
		chatio.ActionLogin, chatio.ActionGetChatsSummary, chatio.ActionGetChatThreads, chatio.ActionGetChatThreadsSummary,
		chatio.ActionSendSneakPeek, chatio.ActionUpdateCustomer, chatio.ActionStartChat, chatio.ActionSendEvent, chatio.ActionCloseThread,
		chatio.ActionUpdateChatProperties, chatio.ActionUpdateChatThreadProperties, chatio.ActionUpdateLastSeenTimestamp, "unknown",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr chatio.Frame
		if json.Unmarshal(data, &fr) != nil {
			return
		}
		check := func(what string, v any) {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: output does not encode: %v", what, err)
			}
			if !json.Valid(b) {
				t.Fatalf("%s: invalid JSON %s", what, b)
			}
		}
		checkEvents := func(what string, evs []Event) {
			for _, e := range evs {
				check(what+" "+e.Name, [2]any{e.Name, e.Data})
			}
		}
		if evs, err := PushEvents(fr); err == nil {
			checkEvents("PushEvents", evs)
		}
		if evs, err := ResultPushEvents(fr); err == nil {
			checkEvents("ResultPushEvents", evs)
		}
		for _, a := range actions {
			if v, err := ParseResult(a, fr.Payload); err == nil {
				check("ParseResult "+a, v)
			}
			if evs, err := ResultEvents(a, fr.Payload); err == nil {
				checkEvents("ResultEvents "+a, evs)
			}
		}
		if cs, evs, err := ParseChatsSummary(fr.Payload); err == nil {
			check("ParseChatsSummary", cs)
			checkEvents("ParseChatsSummary", evs)
		}
		// The read loop's frame (chatio.DecodeFrame: slices of data, Checked
		// when compact) converts to what the decoder's frame converts to.
		dfr, err := chatio.DecodeFrame(data)
		if err != nil {
			t.Fatalf("%q: DecodeFrame %v, the decoder none", data, err)
		}
		same := func(what string, evs []Event, err error, wevs []Event, werr error) {
			if (err == nil) != (werr == nil) || len(evs) != len(wevs) {
				t.Fatalf("%s of %q (checked %v): %d events (%v), %d from the decoder's frame (%v)", what, data, dfr.Checked, len(evs), err, len(wevs), werr)
			}
			for i := range evs {
				g, gerr := json.Marshal([2]any{evs[i].Name, evs[i].Data})
				w, werr := json.Marshal([2]any{wevs[i].Name, wevs[i].Data})
				if (gerr == nil) != (werr == nil) || !bytes.Equal(g, w) {
					t.Fatalf("%s of %q (checked %v): %s (%v), from the decoder's frame %s (%v)", what, data, dfr.Checked, g, gerr, w, werr)
				}
			}
		}
		evs, err := PushEvents(dfr)
		wevs, werr := PushEvents(fr)
		same("PushEvents", evs, err, wevs, werr)
		evs, err = ResultPushEvents(dfr)
		wevs, werr = ResultPushEvents(fr)
		same("ResultPushEvents", evs, err, wevs, werr)
		for _, a := range actions {
			evs, err = ResultFrameEvents(a, dfr)
			wevs, werr = ResultEvents(a, fr.Payload)
			same("ResultFrameEvents "+a, evs, err, wevs, werr)
		}
	})
}
