package op

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// calls holds, per method, argument values that a JSON round trip must
// give back equal: every member set, members absent, raw JSON nulls. Raw
// JSON is in the form encoding/json writes it (compact, <, > and &
// escaped), as it is once it has crossed JSON (TestCallRawValues).
var calls = []Args{
	StartChat{},
	StartChat{Scope: json.RawMessage(`{"type":"group","id":3}`), Events: json.RawMessage(`[{"type":"message","text":"hi"}]`), Properties: json.RawMessage(`{"source":{"page":"x"}}`)},
	StartChat{Events: json.RawMessage(`null`), Properties: json.RawMessage(`null`)},
	GetChatsSummary{Offset: 0, Limit: 10},
	GetChatsSummary{Offset: 7, Limit: 25},
	GetChatThreads{ChatID: "c1", ThreadIDs: []string{"t1", "t2"}},
	GetChatThreads{ChatID: "c1"},
	GetChatThreadsSummary{ChatID: "c1", Offset: 3, Limit: 1000},
	GetChatHistory{ChatID: "c1"},
	GetChatHistory{ChatID: "c1", Cursor: "AbC-_9"},
	SendEvent{ChatID: "c1", Event: json.RawMessage(`{"type":"message","text":"\u003cb\u003e\u0026\u003c/b\u003e","customId":"x"}`)},
	SendEvent{ChatID: "c1", Event: json.RawMessage(`{"1":true,"type":"rich","elements":[1,2]}`)},
	SendRating{ChatID: "c1", Value: "good", Comment: "thanks"},
	SendRating{ChatID: "c1", Value: "bad"},
	SetSneakPeek{ChatID: "c1", Text: "hel"},
	SetSneakPeek{ChatID: "c1"},
	CloseThread{ChatID: "c1"},
	UpdateChatProperties{ChatID: "c1", Properties: json.RawMessage(`{"a":{"b":1}}`)},
	UpdateChatThreadProperties{ChatID: "c1", ThreadID: "t1", Properties: json.RawMessage(`{"a":{"b":"c"}}`)},
	UpdateCustomer{Customer: json.RawMessage(`{"name":"Ann","fields":{"k":"v"},"extra":[null]}`)},
	UpdateLastSeenTimestamp{ChatID: "c1"},
	UpdateLastSeenTimestamp{ChatID: "c1", Timestamp: json.RawMessage(`1700000000000`)},
	UpdateLastSeenTimestamp{ChatID: "c1", Timestamp: json.RawMessage(`null`)},
	Disconnect{},
}

// TestCallRoundTrip: every method's Call encodes and decodes back to an
// equal value of the same type, and the set above covers every method.
func TestCallRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range calls {
		seen[a.Method()] = true
		b, err := json.Marshal(Call{Args: a})
		if err != nil {
			t.Fatalf("%#v: %v", a, err)
		}
		var got Call
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got.Args, a) {
			t.Errorf("%s: decoded %#v, want %#v", b, got.Args, a)
		}
		if got.Method() != a.Method() || !strings.Contains(string(b), `"method":"`+a.Method()+`"`) {
			t.Errorf("%s: method %q", b, got.Method())
		}
		// a second round gives the same bytes
		b2, err := json.Marshal(got)
		if err != nil || string(b2) != string(b) {
			t.Errorf("second encoding %s, want %s (%v)", b2, b, err)
		}
	}
	for _, m := range Methods() {
		if !seen[m] {
			t.Errorf("method %s has no round-trip case", m)
		}
	}
	if slices.Contains(Methods(), MethodSendFile) {
		t.Error("send_file streams: it is not a Call")
	}
}

func TestCallDecodeRefuses(t *testing.T) {
	for _, in := range []string{
		`{"method":"nope","args":{}}`,
		`{"args":{}}`,
		`{"method":"send_rating","args":{"chatId":"c","value":"good","score":1}}`,
		`{"method":"send_rating","args":[]}`,
		`{"method":"get_chats_summary","args":{"offset":"1"}}`,
		`[]`,
	} {
		var c Call
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s: decoded as %#v", in, c.Args)
		}
	}
	if _, err := json.Marshal(Call{}); err == nil {
		t.Error("a Call without Args encoded")
	}
	if err := (Call{}).Validate(); err == nil {
		t.Error("a Call without Args is valid")
	}
}

// TestValidate: each refusal is an *ArgError with the message the HTTP
// contract answers; the round-trip cases are all valid but one.
func TestValidate(t *testing.T) {
	long := strings.Repeat("x", MaxIDLen+1)
	cases := []struct {
		a    Args
		want string
	}{
		{StartChat{Events: json.RawMessage(`{}`)}, "events must be an array"},
		{StartChat{Events: json.RawMessage(`[{},1]`)}, "events[1] must be an object"},
		{StartChat{Properties: json.RawMessage(`[]`)}, "properties must be an object"},
		{StartChat{Scope: json.RawMessage(`"x"`)}, "scope must be an object"},
		{StartChat{Scope: json.RawMessage(`null`)}, "scope must be an object"},
		{GetChatsSummary{Offset: -1, Limit: 10}, "offset must be an integer ≥ 0"},
		{GetChatsSummary{Limit: 30}, "Specified limit is too high (max 25)."},
		{GetChatsSummary{Offset: 1 << 40, Limit: 1}, "offset is too large"},
		{GetChatThreads{ChatID: "c"}, "ids is required: thread ids, comma-separated"},
		{GetChatThreads{ChatID: "c", ThreadIDs: []string{"t", ""}}, "thread id must not be empty"},
		{GetChatThreads{ChatID: "c", ThreadIDs: make([]string, MaxThreadIDs+1)}, "thread id must not be empty"},
		{GetChatThreadsSummary{ChatID: "c", Limit: 1001}, "Specified limit is too high (max 1000)."},
		{GetChatThreadsSummary{ChatID: long, Limit: 1}, "chat id is too long (max 128 bytes)"},
		{GetChatHistory{ChatID: "c", Cursor: "a b"}, "invalid history cursor"},
		{GetChatHistory{ChatID: "c", Cursor: strings.Repeat("a", MaxCursorLen+1)}, "invalid history cursor"},
		{GetChatHistory{ChatID: "a\x7fb"}, "chat id must not contain control characters"},
		{GetChatHistory{ChatID: "\xff"}, "chat id is not valid UTF-8"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`{}`)}, "type is required"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`{"type":null}`)}, "type is required"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`{"type":1}`)}, "type must be a string"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`{"type":""}`)}, "type must not be empty"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`{"type":"message"}`)}, "text is required"},
		{SendEvent{ChatID: "c", Event: json.RawMessage(`[]`)}, "event must be an object"},
		{SendRating{ChatID: "c", Value: "meh"}, `value must be "good" or "bad"`},
		{SetSneakPeek{}, "chat id must not be empty"},
		{CloseThread{ChatID: "a\nb"}, "chat id must not contain control characters"},
		{UpdateChatProperties{ChatID: "c", Properties: json.RawMessage(`null`)}, "properties must be an object"},
		{UpdateChatThreadProperties{ChatID: "c", Properties: json.RawMessage(`{}`)}, "thread id must not be empty"},
		{UpdateCustomer{Customer: json.RawMessage(`{"name":1}`)}, "name must be a string"},
		{UpdateCustomer{Customer: json.RawMessage(`{"email":[]}`)}, "email must be a string"},
		{UpdateCustomer{Customer: json.RawMessage(`{"fields":[]}`)}, "fields must be an object"},
		{UpdateCustomer{Customer: json.RawMessage(`{"fields":{"a":"b","k":2}}`)}, "fields.k must be a string"},
		{UpdateLastSeenTimestamp{ChatID: "c", Timestamp: json.RawMessage(`"now"`)}, "timestamp must be a number"},
	}
	for _, c := range cases {
		err := c.a.Validate()
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Message != c.want {
			t.Errorf("%#v: %v, want %q", c.a, err, c.want)
		}
	}
	if err := (SendRating{ChatID: "c", Value: "meh"}).Validate(); !errors.Is(err, ErrBadRating) {
		t.Errorf("bad rating: %v", err)
	}
	for _, a := range calls {
		err := a.Validate()
		if _, empty := a.(GetChatThreads); empty && len(a.(GetChatThreads).ThreadIDs) == 0 {
			continue
		}
		if err != nil {
			t.Errorf("%#v: %v", a, err)
		}
	}
}

// TestCallRawValues: raw JSON in another form than encoding/json's
// (spaces, unescaped <, > and &) comes back as the same JSON value, in
// encoding/json's form, which then round-trips byte for byte.
func TestCallRawValues(t *testing.T) {
	in := SendEvent{ChatID: "c", Event: json.RawMessage(`{ "type" : "message", "text":"<b>&</b>" }`)}
	b, err := json.Marshal(Call{Args: in})
	if err != nil {
		t.Fatal(err)
	}
	var got Call
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var want, have any
	_ = json.Unmarshal(in.Event, &want)
	_ = json.Unmarshal(got.Args.(SendEvent).Event, &have)
	if !reflect.DeepEqual(want, have) {
		t.Errorf("event %s, want %s", got.Args.(SendEvent).Event, in.Event)
	}
	b2, _ := json.Marshal(got)
	if string(b2) != string(b) {
		t.Errorf("second encoding %s, want %s", b2, b)
	}
}

// FuzzCall: whatever a Call's JSON holds, decoding it and validating what
// decoded never panics, refuses with an *ArgError only, and a valid call
// round-trips.
func FuzzCall(f *testing.F) {
	for _, a := range calls {
		b, _ := json.Marshal(Call{Args: a})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Call
		if json.Unmarshal(data, &c) != nil {
			return
		}
		if err := c.Validate(); err != nil {
			var ae *ArgError
			if !errors.As(err, &ae) || ae.Message == "" {
				t.Fatalf("%s: refused with %T %v", data, err, err)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		var again Call
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if string(b2) != string(b) {
			t.Fatalf("%s → %s", b, b2)
		}
	})
}
