package chatiosim

import (
	"encoding/json"
	"strings"
	"testing"
)

type wireEv struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	AuthorID  string  `json:"author_id"`
	Timestamp *int64  `json:"timestamp"`
	Order     int     `json:"order"`
	Text      string  `json:"text"`
	CustomID  *string `json:"custom_id"`
	URL       string  `json:"url"`
	CT        string  `json:"content_type"`
	Width     *int    `json:"width"`
	Height    *int    `json:"height"`
}

type wireThr struct {
	ID         string         `json:"id"`
	Active     bool           `json:"active"`
	Order      int            `json:"order"`
	UserIDs    []string       `json:"user_ids"`
	Events     []wireEv       `json:"events"`
	Properties map[string]any `json:"properties"`
}

type newThreadPush struct {
	Chat struct {
		ID         string           `json:"id"`
		Thread     wireThr          `json:"thread"`
		Users      []map[string]any `json:"users"`
		Properties map[string]any   `json:"properties"`
	} `json:"chat"`
}

type incomingEvent struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	Event    wireEv `json:"event"`
}

func TestStartChatAndSendEvent(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	other := dial(t, base) // a second socket of the same customer
	other.login("tok")

	res := c.indirect("start_chat", map[string]any{
		"routing_scope": map[string]string{"type": "license"},
		"properties":    map[string]any{"visit": map[string]any{"landing_page": "https://x.example/"}},
		"events":        []any{map[string]any{"type": "message", "text": "Hi there", "custom_id": "c1"}},
	}, "incoming_chat_thread")
	var p newThreadPush
	res.decode(t, &p)
	ch := p.Chat
	if len(ch.ID) != 10 || ch.Thread.Order != 1 || !ch.Thread.Active || len(ch.Thread.Events) != 1 {
		t.Fatalf("chat %s", res.Payload)
	}
	if ch.Properties["visit"] == nil || ch.Thread.Properties == nil {
		t.Fatalf("properties %s", res.Payload)
	}
	if len(ch.Users) != 1 || ch.Users[0]["id"] != cust || ch.Users[0]["type"] != "customer" || ch.Users[0]["fields"] == nil {
		t.Fatalf("users %v", ch.Users)
	}
	if ch.Thread.UserIDs[0] != cust {
		t.Fatalf("user_ids %v", ch.Thread.UserIDs)
	}
	e := ch.Thread.Events[0]
	if e.ID != ch.Thread.ID+"_1" || e.Type != "message" || e.AuthorID != cust || e.Timestamp == nil || e.Order != 1 || e.Text != "Hi there" || e.CustomID == nil || *e.CustomID != "c1" {
		t.Fatalf("event %+v", e)
	}
	// the other socket gets the same push without request id
	o := other.expectPush("incoming_chat_thread")
	var op newThreadPush
	o.decode(t, &op)
	if op.Chat.ID != ch.ID {
		t.Fatal(o.Payload)
	}

	// send_event → incoming_event with the request id
	res = c.indirect("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "message", "text": "Do gift cards expire?"}}, "incoming_event")
	var ie incomingEvent
	res.decode(t, &ie)
	if ie.ChatID != ch.ID || ie.ThreadID != ch.Thread.ID || ie.Event.Order != 2 || ie.Event.Text != "Do gift cards expire?" || ie.Event.CustomID != nil {
		t.Fatalf("incoming_event %s", res.Payload)
	}
	if strings.Contains(string(res.Payload), "custom_id") {
		t.Fatalf("custom_id without one given: %s", res.Payload)
	}
	other.expectPush("incoming_event")

	// a custom event passes as given; server fields override
	res = c.indirect("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "rich_message", "elements": []int{1, 2}, "id": "forged", "customId": "x", "custom_id": "x"}}, "incoming_event")
	var raw struct {
		Event map[string]any `json:"event"`
	}
	res.decode(t, &raw)
	if raw.Event["id"] != ch.Thread.ID+"_3" || raw.Event["elements"] == nil || raw.Event["customId"] != "x" || raw.Event["custom_id"] != "x" || raw.Event["author_id"] != cust {
		t.Fatalf("custom event %s", res.Payload)
	}
	other.expectPush("incoming_event")

	// errors
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "message", "text": ""}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "message", "text": 5}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"text": "no type"}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": "message"}, "validation")
	c.callErr("send_event", map[string]any{"event": map[string]any{"type": "message", "text": "x"}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": 12, "event": map[string]any{"type": "message", "text": "x"}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": "NOSUCHCHAT", "event": map[string]any{"type": "message", "text": "x"}}, "not_found")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "message", "text": "x", "custom_id": 3}}, "validation")
	c.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "file"}}, "validation")
	c.callErr("start_chat", map[string]any{"properties": "x"}, "validation")
	c.callErr("start_chat", map[string]any{"properties": map[string]any{"ns": 1}}, "validation")
	c.callErr("start_chat", map[string]any{"events": []any{map[string]any{"type": "message"}}}, "validation")
	c.callErr("start_chat", map[string]any{"routing_scope": "license"}, "validation")

	// another customer cannot see the chat
	stranger := dial(t, base)
	stranger.login("someone-else")
	stranger.callErr("send_event", map[string]any{"chat_id": ch.ID, "event": map[string]any{"type": "message", "text": "x"}}, "not_found")
	stranger.callErr("get_chat_threads", map[string]any{"chat_id": ch.ID, "thread_ids": []string{ch.Thread.ID}}, "not_found")

	evs := s.Events(ch.ID)
	if len(evs) != 3 || evs[0].Text != "Hi there" || evs[2].Type != "rich_message" {
		t.Fatalf("events %+v", evs)
	}
	other.noFrame(50e6)
}

func TestThreadsAndSummaries(t *testing.T) {
	_, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	chatID, th1 := c.newChat()
	c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "one"}}, "incoming_event")
	c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "file", "url": "https://x.example/a.pdf", "content_type": "application/pdf"}}, "incoming_event")

	res := c.indirect("close_thread", map[string]any{"chat_id": chatID}, "thread_closed")
	if string(res.Payload) != `{"chat_id":"`+chatID+`"}` {
		t.Fatal(res.Payload)
	}
	c.callErr("close_thread", map[string]any{"chat_id": chatID}, "validation")

	// an event to a chat without an active thread starts one
	res = c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "again"}}, "incoming_chat_thread")
	var p newThreadPush
	res.decode(t, &p)
	th2 := p.Chat.Thread.ID
	if p.Chat.ID != chatID || p.Chat.Thread.Order != 2 || !p.Chat.Thread.Active || len(p.Chat.Thread.Events) != 1 || p.Chat.Thread.Events[0].Order != 1 || th2 == th1 {
		t.Fatalf("new thread %s", res.Payload)
	}

	// thread summaries: newest first
	f := c.callOK("get_chat_threads_summary", map[string]any{"chat_id": chatID})
	var ts struct {
		ThreadsSummary []struct {
			ID          string `json:"id"`
			Order       int    `json:"order"`
			EventsCount int    `json:"events_count"`
		} `json:"threads_summary"`
		TotalThreads int `json:"total_threads"`
	}
	f.decode(t, &ts)
	if ts.TotalThreads != 2 || len(ts.ThreadsSummary) != 2 || ts.ThreadsSummary[0].ID != th2 || ts.ThreadsSummary[0].Order != 2 ||
		ts.ThreadsSummary[0].EventsCount != 1 || ts.ThreadsSummary[1].ID != th1 || ts.ThreadsSummary[1].EventsCount != 2 {
		t.Fatalf("threads summary %s", f.Payload)
	}
	f = c.callOK("get_chat_threads_summary", map[string]any{"chat_id": chatID, "offset": 1, "limit": 5})
	f.decode(t, &ts)
	if len(ts.ThreadsSummary) != 1 || ts.ThreadsSummary[0].ID != th1 || ts.TotalThreads != 2 {
		t.Fatalf("offset 1: %s", f.Payload)
	}
	c.callErr("get_chat_threads_summary", map[string]any{"chat_id": chatID, "limit": 1001}, "validation")
	c.callErr("get_chat_threads_summary", map[string]any{"chat_id": chatID, "offset": -1}, "validation")
	c.callErr("get_chat_threads_summary", map[string]any{"chat_id": "NOPE"}, "not_found")

	// threads, in the order asked
	f = c.callOK("get_chat_threads", map[string]any{"chat_id": chatID, "thread_ids": []string{th2, th1}})
	var gt struct {
		Chat struct {
			ID      string           `json:"id"`
			Threads []wireThr        `json:"threads"`
			Users   []map[string]any `json:"users"`
		} `json:"chat"`
	}
	f.decode(t, &gt)
	if gt.Chat.ID != chatID || len(gt.Chat.Threads) != 2 || gt.Chat.Threads[0].ID != th2 || gt.Chat.Threads[1].Active ||
		len(gt.Chat.Threads[1].Events) != 2 || gt.Chat.Users[0]["id"] != cust {
		t.Fatalf("threads %s", f.Payload)
	}
	file := gt.Chat.Threads[1].Events[1]
	if file.Type != "file" || file.URL != "https://x.example/a.pdf" || file.CT != "application/pdf" || file.Width != nil {
		t.Fatalf("file event %+v", file)
	}
	c.callErr("get_chat_threads", map[string]any{"chat_id": chatID, "thread_ids": []string{"NOPE"}}, "not_found")
	c.callErr("get_chat_threads", map[string]any{"chat_id": chatID}, "validation")
	c.callErr("get_chat_threads", map[string]any{"chat_id": chatID, "thread_ids": "x"}, "validation")

	// chats summary: newest first, last_event_per_type
	chat2, _ := c.newChat()
	f = c.callOK("get_chats_summary", nil)
	var cs struct {
		ChatsSummary []struct {
			ID               string           `json:"id"`
			Order            int64            `json:"order"`
			Users            []map[string]any `json:"users"`
			Properties       map[string]any   `json:"properties"`
			LastEventPerType map[string]struct {
				ThreadID    string `json:"thread_id"`
				ThreadOrder int    `json:"thread_order"`
				Event       wireEv `json:"event"`
			} `json:"last_event_per_type"`
		} `json:"chats_summary"`
		TotalChats int `json:"total_chats"`
	}
	f.decode(t, &cs)
	if cs.TotalChats != 2 || len(cs.ChatsSummary) != 2 || cs.ChatsSummary[0].ID != chat2 || cs.ChatsSummary[1].ID != chatID {
		t.Fatalf("chats summary %s", f.Payload)
	}
	old := cs.ChatsSummary[1]
	if old.Order == 0 || old.Properties == nil || old.LastEventPerType["message"].ThreadID != th2 || old.LastEventPerType["message"].ThreadOrder != 2 ||
		old.LastEventPerType["message"].Event.Text != "again" || old.LastEventPerType["file"].ThreadID != th1 {
		t.Fatalf("summary %s", f.Payload)
	}
	f = c.callOK("get_chats_summary", map[string]any{"offset": 1, "limit": 1})
	f.decode(t, &cs)
	if len(cs.ChatsSummary) != 1 || cs.ChatsSummary[0].ID != chatID || cs.TotalChats != 2 {
		t.Fatalf("page %s", f.Payload)
	}
	c.callErr("get_chats_summary", map[string]any{"limit": 26}, "validation")
	c.callErr("get_chats_summary", map[string]any{"limit": 0}, "validation")
	c.callErr("get_chats_summary", map[string]any{"limit": "5"}, "validation")
}

func TestPropertiesAndSeen(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	other := dial(t, base)
	other.login("tok")
	chatID, thID := c.newChat()
	other.expectPush("incoming_chat_thread")

	props := map[string]any{"gift": map[string]any{"wrap": true, "note": "Happy birthday"}}
	res := c.indirect("update_chat_properties", map[string]any{"chat_id": chatID, "properties": props}, "chat_properties_updated")
	if string(res.Payload) != `{"chat_id":"`+chatID+`","properties":{"gift":{"note":"Happy birthday","wrap":true}}}` {
		t.Fatal(string(res.Payload))
	}
	other.expectPush("chat_properties_updated")
	c.indirect("update_chat_properties", map[string]any{"chat_id": chatID, "properties": map[string]any{"gift": map[string]any{"paper": "blue"}}}, "chat_properties_updated")
	other.expectPush("chat_properties_updated")
	ci, _ := s.Chat(chatID)
	if string(ci.Properties) != `{"gift":{"note":"Happy birthday","paper":"blue","wrap":true}}` {
		t.Fatalf("merged %s", ci.Properties)
	}
	c.callErr("update_chat_properties", map[string]any{"chat_id": chatID}, "validation")
	c.callErr("update_chat_properties", map[string]any{"chat_id": "NOPE", "properties": props}, "not_found")

	res = c.indirect("update_chat_thread_properties", map[string]any{"chat_id": chatID, "thread_id": thID, "properties": map[string]any{"rating": map[string]any{"score": 1}}}, "chat_thread_properties_updated")
	if string(res.Payload) != `{"chat_id":"`+chatID+`","properties":{"rating":{"score":1}},"thread_id":"`+thID+`"}` {
		t.Fatal(string(res.Payload))
	}
	other.expectPush("chat_thread_properties_updated")
	c.callErr("update_chat_thread_properties", map[string]any{"chat_id": chatID, "thread_id": "NOPE", "properties": props}, "not_found")
	c.callErr("update_chat_thread_properties", map[string]any{"chat_id": chatID, "properties": props}, "validation")

	res = c.indirect("update_last_seen_timestamp", map[string]any{"chat_id": chatID, "timestamp": 1532000455}, "last_seen_timestamp_updated")
	if string(res.Payload) != `{"chat_id":"`+chatID+`","timestamp":1532000455,"user_id":"`+cust+`"}` {
		t.Fatal(string(res.Payload))
	}
	other.expectPush("last_seen_timestamp_updated")
	res = c.indirect("update_last_seen_timestamp", map[string]any{"chat_id": chatID}, "last_seen_timestamp_updated")
	var ls struct{ Timestamp int64 }
	res.decode(t, &ls)
	if ls.Timestamp < 1700000000 {
		t.Fatalf("default timestamp %d", ls.Timestamp)
	}
	other.expectPush("last_seen_timestamp_updated")
	c.callErr("update_last_seen_timestamp", map[string]any{"chat_id": chatID, "timestamp": "now"}, "validation")
	f := c.callOK("get_chats_summary", nil)
	if !strings.Contains(string(f.Payload), `"last_seen_timestamp":`+itoa(ls.Timestamp)) {
		t.Fatalf("summary without last seen: %s", f.Payload)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestUpdateCustomerAndSneakPeek(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	other := dial(t, base)
	other.login("tok")

	id := c.send("update_customer", map[string]any{"customer": map[string]any{"name": "Priya Raman", "fields": map[string]string{"delivery": "express"}}})
	f := c.next()
	if f.reqID() != id || f.Type != "response" || string(f.Payload) != `{"success":true}` {
		t.Fatalf("response %s %s", f.Type, f.Payload)
	}
	f = c.next()
	if f.reqID() != id || f.Action != "customer_updated" || f.Type != "push" {
		t.Fatalf("push %s %s", f.Action, f.Payload)
	}
	want := `{"customer":{"id":"` + cust + `","type":"customer","name":"Priya Raman","fields":{"delivery":"express"}}}`
	if string(f.Payload) != want {
		t.Fatalf("customer_updated %s", f.Payload)
	}
	if o := other.expectPush("customer_updated"); string(o.Payload) != want {
		t.Fatal(o.Payload)
	}
	c.callErr("update_customer", map[string]any{}, "validation")
	c.callErr("update_customer", map[string]any{"customer": map[string]any{"email": 5}}, "validation")

	chatID, _ := c.newChat()
	other.expectPush("incoming_chat_thread")
	f = c.callOK("send_sneak_peek", map[string]any{"chat_id": chatID, "sneak_peek_text": "I am typ"})
	if string(f.Payload) != `{"success":true}` {
		t.Fatal(f.Payload)
	}
	if ci, _ := s.Chat(chatID); ci.SneakPeek != "I am typ" {
		t.Fatalf("sneak peek %q", ci.SneakPeek)
	}
	c.callErr("send_sneak_peek", map[string]any{"chat_id": chatID}, "validation")
	c.callErr("send_sneak_peek", map[string]any{"chat_id": "NOPE", "sneak_peek_text": "x"}, "not_found")
	other.noFrame(50e6)
}

func TestWatch(t *testing.T) {
	s, base := start(t, Config{})
	acts, cancel := s.Watch(16)
	defer cancel()
	c := dial(t, base)
	cust := c.login("tok")
	chatID, _ := c.newChat()
	c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "hello"}}, "incoming_event")
	want := []string{"login", "start_chat", "send_event"}
	for _, w := range want {
		a := <-acts
		if a.Action != w || a.CustomerID != cust {
			t.Fatalf("activity %+v, want %s", a, w)
		}
		if w == "send_event" && (a.ChatID != chatID || len(a.Events) != 1 || a.Events[0].Text != "hello") {
			t.Fatalf("activity %+v", a)
		}
		if w == "login" && strings.Contains(string(a.Payload), "Bearer") {
			t.Fatal("token leaked into activity")
		}
	}
}
