package chatiosim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAgentAPI(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	other := dial(t, base)
	other.login("tok")
	chatID, threadID := c.newChat()
	other.expectPush("incoming_chat_thread")
	ag := s.Agent("oskar@harbor-books.example", "Oskar Lindqvist")
	both := []*wsClient{c, other}
	each := func(action string, check func(f frame)) {
		t.Helper()
		for _, x := range both {
			check(x.expectPush(action))
		}
	}

	if err := ag.Join(chatID); err != nil {
		t.Fatal(err)
	}
	each("chat_users_updated", func(f frame) {
		want := `{"chat_id":"` + chatID + `","updated_users":{"added":[{"id":"oskar@harbor-books.example","type":"agent","name":"Oskar Lindqvist","email":"oskar@harbor-books.example","avatar":"https://cdn.chatio-sim.example/avatars/oskar@harbor-books.example.png"}],"removed_ids":[]}}`
		if string(f.Payload) != want {
			t.Fatalf("join %s", f.Payload)
		}
	})
	if err := ag.Join(chatID); err != nil { // already in: no push
		t.Fatal(err)
	}
	if err := ag.Typing(chatID, true); err != nil {
		t.Fatal(err)
	}
	each("incoming_typing_indicator", func(f frame) {
		if string(f.Payload) != `{"chat_id":"`+chatID+`","typing_indicator":{"author_id":"oskar@harbor-books.example","is_typing":true}}` {
			t.Fatalf("typing %s", f.Payload)
		}
	})
	evID, err := ag.SendMessage(chatID, "Hello! No, they never expire.")
	if err != nil || evID != threadID+"_1" {
		t.Fatalf("send: %q %v", evID, err)
	}
	each("incoming_event", func(f frame) {
		var ie incomingEvent
		f.decode(t, &ie)
		if ie.Event.ID != evID || ie.Event.AuthorID != ag.ID() || ie.Event.Text != "Hello! No, they never expire." || ie.ThreadID != threadID {
			t.Fatalf("message %s", f.Payload)
		}
	})
	if _, err := ag.SendImage(chatID, "https://cdn.example/a.png", "image/png", 640, 480); err != nil {
		t.Fatal(err)
	}
	each("incoming_event", func(f frame) {
		var ie incomingEvent
		f.decode(t, &ie)
		if ie.Event.Type != "file" || ie.Event.URL != "https://cdn.example/a.png" || ie.Event.Width == nil || *ie.Event.Width != 640 {
			t.Fatalf("file %s", f.Payload)
		}
	})
	if _, err := ag.SendEvent(chatID, json.RawMessage(`{"type":"system_message","text":"Agent joined"}`)); err != nil {
		t.Fatal(err)
	}
	each("incoming_event", func(f frame) {})
	if err := ag.UpdateChatProperties(chatID, map[string]any{"routing": map[string]any{"team": "gift-wrap"}}); err != nil {
		t.Fatal(err)
	}
	each("chat_properties_updated", func(f frame) {
		if string(f.Payload) != `{"chat_id":"`+chatID+`","properties":{"routing":{"team":"gift-wrap"}}}` {
			t.Fatalf("props %s", f.Payload)
		}
	})
	if err := ag.UpdateThreadProperties(chatID, "", map[string]any{"tags": map[string]any{"vip": true}}); err != nil {
		t.Fatal(err)
	}
	each("chat_thread_properties_updated", func(f frame) {
		if !strings.Contains(string(f.Payload), `"thread_id":"`+threadID+`"`) {
			t.Fatalf("thread props %s", f.Payload)
		}
	})
	if err := ag.MarkSeen(chatID, time.Unix(1532000455, 0)); err != nil {
		t.Fatal(err)
	}
	each("last_seen_timestamp_updated", func(f frame) {
		if string(f.Payload) != `{"chat_id":"`+chatID+`","timestamp":1532000455,"user_id":"oskar@harbor-books.example"}` {
			t.Fatalf("seen %s", f.Payload)
		}
	})
	if err := ag.CloseThread(chatID); err != nil {
		t.Fatal(err)
	}
	each("thread_closed", func(f frame) {
		if string(f.Payload) != `{"chat_id":"`+chatID+`"}` {
			t.Fatalf("closed %s", f.Payload)
		}
	})
	if err := ag.CloseThread(chatID); !errors.Is(err, ErrNoActiveThread) {
		t.Fatalf("close again: %v", err)
	}
	// a message to a chat without an active thread opens one
	if _, err := ag.SendMessage(chatID, "Anything else?"); err != nil {
		t.Fatal(err)
	}
	each("incoming_chat_thread", func(f frame) {
		var p newThreadPush
		f.decode(t, &p)
		th := p.Chat.Thread
		if th.Order != 2 || !th.Active || len(th.Events) != 1 || th.Events[0].AuthorID != ag.ID() || len(p.Chat.Users) != 2 || p.Chat.Users[1]["type"] != "agent" {
			t.Fatalf("new thread %s", f.Payload)
		}
	})
	if err := ag.Leave(chatID); err != nil {
		t.Fatal(err)
	}
	each("chat_users_updated", func(f frame) {
		if string(f.Payload) != `{"chat_id":"`+chatID+`","updated_users":{"added":[],"removed_ids":["oskar@harbor-books.example"]}}` {
			t.Fatalf("leave %s", f.Payload)
		}
	})
	if err := ag.Leave(chatID); !errors.Is(err, ErrNotInChat) {
		t.Fatalf("leave again: %v", err)
	}
	// auto-join on write
	if err := ag.Typing(chatID, false); err != nil {
		t.Fatal(err)
	}
	each("chat_users_updated", func(f frame) {})
	each("incoming_typing_indicator", func(f frame) {})

	if _, err := ag.SendMessage("NOPE", "x"); !errors.Is(err, ErrChatNotFound) {
		t.Fatalf("unknown chat: %v", err)
	}
	if _, err := ag.SendMessage(chatID, " "); !errors.Is(err, ErrBadEvent) {
		t.Fatalf("empty: %v", err)
	}
	if err := ag.UpdateChatProperties(chatID, map[string]any{"ns": 1}); err == nil {
		t.Fatal("non-namespaced properties accepted")
	}

	// observation
	chats := s.Chats(cust)
	if len(chats) != 1 || chats[0].ID != chatID || len(chats[0].Threads) != 2 || !chats[0].Active || chats[0].Users[1] != ag.ID() {
		t.Fatalf("chats %+v", chats)
	}
	evs := s.Events(chatID)
	if len(evs) != 4 || evs[0].ID != evID || evs[3].Text != "Anything else?" || evs[3].Order != 1 {
		t.Fatalf("events %+v", evs)
	}
	// the customer reads it back
	f := c.callOK("get_chat_threads", map[string]any{"chat_id": chatID, "thread_ids": []string{threadID}})
	if !strings.Contains(string(f.Payload), `"properties":{"tags":{"vip":true}}`) || !strings.Contains(string(f.Payload), `"type":"agent"`) {
		t.Fatalf("threads %s", f.Payload)
	}
	f = c.callOK("get_chats_summary", nil)
	if !strings.Contains(string(f.Payload), `"last_seen_timestamp":1532000455`) || !strings.Contains(string(f.Payload), `"system_message"`) {
		t.Fatalf("summary %s", f.Payload)
	}
	other.noFrame(50e6)
}

func TestBot(t *testing.T) {
	s, base := start(t, Config{Bot: true, BotDelay: 20 * time.Millisecond})
	c := dial(t, base)
	c.callOK("login", map[string]any{"token": "Bearer tok", "customer": map[string]any{"name": "Jonas"}})
	f := c.indirect("start_chat", map[string]any{}, "incoming_chat_thread")
	var p newThreadPush
	f.decode(t, &p)
	chatID := p.Chat.ID
	if len(p.Chat.Users) != 2 || p.Chat.Users[1]["id"] != BotID || p.Chat.Users[1]["name"] != BotName || len(p.Chat.Thread.UserIDs) != 2 {
		t.Fatalf("bot not routed in: %s", f.Payload)
	}
	if t1 := c.expectPush("incoming_typing_indicator"); !strings.Contains(string(t1.Payload), `"is_typing":true`) {
		t.Fatal(t1.Payload)
	}
	if t2 := c.expectPush("incoming_typing_indicator"); !strings.Contains(string(t2.Payload), `"is_typing":false`) {
		t.Fatal(t2.Payload)
	}
	g := c.expectPush("incoming_event")
	var ie incomingEvent
	g.decode(t, &ie)
	if ie.Event.AuthorID != BotID || !strings.HasPrefix(ie.Event.Text, "Hi Jonas!") {
		t.Fatalf("greeting %s", g.Payload)
	}
	c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Do gift cards expire?"}}, "incoming_event")
	r := c.waitFor("bot reply", func(f frame) bool { return f.Action == "incoming_event" })
	r.decode(t, &ie)
	if ie.Event.AuthorID != BotID || !strings.Contains(ie.Event.Text, "You said: “Do gift cards expire?”") {
		t.Fatalf("reply %s", r.Payload)
	}
	// after a close, a customer message opens a thread with the bot routed in again
	c.indirect("close_thread", map[string]any{"chat_id": chatID}, "thread_closed")
	f = c.indirect("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "back"}}, "incoming_chat_thread")
	f.decode(t, &p)
	if len(p.Chat.Thread.UserIDs) != 2 || p.Chat.Thread.UserIDs[1] != BotID {
		t.Fatalf("thread users %s", f.Payload)
	}
	c.waitFor("bot reply", func(f frame) bool { return f.Action == "incoming_event" })
	if st := s.Stats(); st.BotDropped != 0 {
		t.Fatalf("bot dropped %d", st.BotDropped)
	}
}

func TestBotStopsOnClose(t *testing.T) {
	s, base := start(t, Config{Bot: true, BotDelay: time.Hour})
	c := dial(t, base)
	c.login("tok")
	c.newChat()
	c.expectPush("incoming_typing_indicator") // the bot is now waiting an hour
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs on the bot")
	}
}
