package chatio

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// TestActions: each typed method sends its action with the payload the
// SDK writes, member for member and in the SDK's order.
func TestActions(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		action  string
		payload string // "" → no payload
		call    func(ctx context.Context) (json.RawMessage, error)
	}{
		{ActionGetChatsSummary, `{"offset":5,"limit":10}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.GetChatsSummary(ctx, 5, 10)
		}},
		{ActionGetChatsSummary, ``, func(ctx context.Context) (json.RawMessage, error) {
			return c.GetLatestChatsSummary(ctx)
		}},
		{ActionStartChat, `{"routing_scope":{"type":"license"}}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.StartChat(ctx, nil, nil, nil)
		}},
		{ActionStartChat, `{"routing_scope":{"type":"group","id":2},"events":[{"type":"message","text":"hi"}],"properties":null}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.StartChat(ctx, raw(`{"type":"group","id":2}`), raw(`[{"type":"message","text":"hi"}]`), raw(`null`))
		}},
		{ActionGetChatThreads, `{"chat_id":"C1","thread_ids":["T1","T2"]}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.GetChatThreads(ctx, "C1", []string{"T1", "T2"})
		}},
		{ActionGetChatThreadsSummary, `{"chat_id":"C1","offset":0,"limit":25}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.GetChatThreadsSummary(ctx, "C1", 0, 25)
		}},
		{ActionSendEvent, `{"chat_id":"C1","event":{"text":"hi","type":"message"}}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.SendEvent(ctx, "C1", jsonobj.Object{{Key: "text", Value: "hi"}, {Key: "type", Value: "message"}})
		}},
		{ActionSendSneakPeek, `{"chat_id":"C1","sneak_peek_text":"typ"}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.SendSneakPeek(ctx, "C1", "typ")
		}},
		{ActionCloseThread, `{"chat_id":"C1"}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.CloseThread(ctx, "C1")
		}},
		{ActionUpdateChatProperties, `{"chat_id":"C1","properties":{"a":{"b":1}}}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.UpdateChatProperties(ctx, "C1", raw(`{"a":{"b":1}}`))
		}},
		{ActionUpdateChatThreadProperties, `{"chat_id":"C1","thread_id":"T1","properties":{"rating":{"score":1,"comment":"ok"}}}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.UpdateChatThreadProperties(ctx, "C1", "T1", RatingProperties(1, "ok"))
		}},
		{ActionUpdateCustomer, `{"customer":{"name":"Ann"}}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.UpdateCustomer(ctx, jsonobj.Object{{Key: "name", Value: "Ann"}})
		}},
		{ActionUpdateLastSeenTimestamp, `{"chat_id":"C1"}`, func(ctx context.Context) (json.RawMessage, error) {
			return c.UpdateLastSeenTimestamp(ctx, "C1")
		}},
	}
	for _, tc := range cases {
		ch := make(chan error, 1)
		go func() {
			_, err := tc.call(bg())
			ch <- err
		}()
		req := p.next(t)
		if req.Action != tc.action || string(req.Payload) != tc.payload {
			t.Errorf("sent %s %s, want %s %s", req.Action, req.Payload, tc.action, tc.payload)
		}
		p.refuse(t, req, ErrTypeValidation, "test")
		var re *RequestError
		if err := <-ch; !errors.As(err, &re) || re.Action != tc.action {
			t.Errorf("%s: %v", tc.action, err)
		}
	}
}

// TestWireEvent: clientDataParsers.parseEvent.
func TestWireEvent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"message","text":"hi","extra":1}`, `{"text":"hi","type":"message"}`},
		{`{"type":"message","text":"hi","customId":"c1"}`, `{"text":"hi","type":"message","custom_id":"c1"}`},
		{`{"type":"message","text":"hi","customId":7}`, `{"text":"hi","type":"message"}`},
		{`{"type":"file","url":"u","customId":"c2"}`, `{"type":"file","url":"u","customId":"c2","custom_id":"c2"}`},
		{`{"type":"rich","customId":null}`, `{"type":"rich","customId":null}`},
	} {
		in := jsonobj.ParseValidObject(json.RawMessage(tc.in))
		before, _ := json.Marshal(in)
		b, err := json.Marshal(WireEvent(in))
		if err != nil || string(b) != tc.want {
			t.Errorf("%s → %s (%v), want %s", tc.in, b, err, tc.want)
		}
		if after, _ := json.Marshal(in); string(after) != string(before) {
			t.Errorf("%s: the SDK event changed to %s", tc.in, after)
		}
	}
}

func TestParseThreadsSummary(t *testing.T) {
	s, err := ParseThreadsSummary(json.RawMessage(`{"threads_summary":[{"id":"T2","order":2,"events_count":3},{"id":"T1","order":1}],"total_threads":2}`))
	if err != nil || len(s.Threads) != 2 || s.Threads[0].ID != "T2" || string(s.Threads[0].Order) != "2" ||
		string(s.Threads[0].EventsCount) != "3" || string(s.Total) != "2" {
		t.Fatalf("%+v %v", s, err)
	}
	var re *RequestError
	if _, err := ParseThreadsSummary(json.RawMessage(`{"threads_summary":{}}`)); !errors.As(err, &re) || re.Type != ErrTypeInvalidAnswer {
		t.Fatalf("err = %v", err)
	}
	if o, ok := ThreadOrder(jsonobj.Object{{Key: "order", Value: json.RawMessage("12.5")}}); !ok || o != 12.5 {
		t.Fatalf("order %v %v", o, ok)
	}
	if _, ok := ThreadOrder(jsonobj.Object{{Key: "order", Value: json.RawMessage(`"x"`)}}); ok {
		t.Fatal("a string order")
	}
}
