package chatiosim

import (
	"strings"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	chatID, threadID := c.newChat()
	ag := "/control/v1/agents/ingrid"

	mustOK := func(path string, body any) map[string]any {
		t.Helper()
		status, out := postJSON(t, base, path, body)
		if status != 200 {
			t.Fatalf("POST %s: %d %v", path, status, out)
		}
		return out
	}

	mustOK(ag+"/join", map[string]any{"chat_id": chatID, "name": "Ingrid Solheim"})
	if f := c.expectPush("chat_users_updated"); !strings.Contains(string(f.Payload), `"name":"Ingrid Solheim"`) {
		t.Fatal(f.Payload)
	}
	mustOK(ag+"/typing", map[string]any{"chat_id": chatID, "is_typing": true})
	c.expectPush("incoming_typing_indicator")
	out := mustOK(ag+"/message", map[string]any{"chat_id": chatID, "text": "Let me fix that for you."})
	if out["event_id"] != threadID+"_1" {
		t.Fatalf("message: %v", out)
	}
	c.expectPush("incoming_event")
	mustOK(ag+"/file", map[string]any{"chat_id": chatID, "url": "https://cdn.example/invoice.pdf", "content_type": "application/pdf"})
	c.expectPush("incoming_event")
	mustOK(ag+"/properties", map[string]any{"chat_id": chatID, "properties": map[string]any{"loyalty": map[string]any{"tier": "silver"}}})
	c.expectPush("chat_properties_updated")
	mustOK(ag+"/properties", map[string]any{"chat_id": chatID, "thread_id": threadID, "properties": map[string]any{"rating": map[string]any{"score": 1}}})
	c.expectPush("chat_thread_properties_updated")
	mustOK(ag+"/seen", map[string]any{"chat_id": chatID, "timestamp": 1531590150})
	if f := c.expectPush("last_seen_timestamp_updated"); !strings.Contains(string(f.Payload), `"timestamp":1531590150`) {
		t.Fatal(f.Payload)
	}
	mustOK(ag+"/close", map[string]any{"chat_id": chatID})
	c.expectPush("thread_closed")
	mustOK(ag+"/leave", map[string]any{"chat_id": chatID})
	c.expectPush("chat_users_updated")

	if status, _ := postJSON(t, base, ag+"/message", map[string]any{"chat_id": "NOPE", "text": "x"}); status != 404 {
		t.Fatalf("unknown chat: %d", status)
	}
	if status, _ := postJSON(t, base, ag+"/message", map[string]any{"text": "x"}); status != 400 {
		t.Fatalf("no chat id: %d", status)
	}
	if status, _ := postJSON(t, base, ag+"/close", map[string]any{"chat_id": chatID}); status != 409 {
		t.Fatalf("close closed: %d", status)
	}
	if status, _ := postJSON(t, base, ag+"/leave", map[string]any{"chat_id": chatID}); status != 409 {
		t.Fatalf("leave twice: %d", status)
	}

	var chats struct{ Chats []ChatInfo }
	if getJSON(t, base, "/control/v1/chats?customer_id="+cust, &chats) != 200 || len(chats.Chats) != 1 || chats.Chats[0].ID != chatID {
		t.Fatalf("chats %+v", chats)
	}
	var all struct{ Chats []ChatInfo }
	getJSON(t, base, "/control/v1/chats", &all)
	if len(all.Chats) != 1 {
		t.Fatalf("all chats %+v", all)
	}
	var one ChatInfo
	if getJSON(t, base, "/control/v1/chats/"+chatID, &one) != 200 || string(one.Properties) != `{"loyalty":{"tier":"silver"}}` || one.LastSeen["ingrid"] != 1531590150 {
		t.Fatalf("chat %+v", one)
	}
	var evs struct{ Events []Event }
	if getJSON(t, base, "/control/v1/chats/"+chatID+"/events", &evs) != 200 || len(evs.Events) != 2 || evs.Events[1].ContentType != "application/pdf" {
		t.Fatalf("events %+v", evs)
	}
	var nf map[string]any
	if getJSON(t, base, "/control/v1/chats/NOPE/events", &nf) != 404 {
		t.Fatal("events of unknown chat")
	}

	// faults
	mustOK("/control/v1/latency", map[string]any{"duration": "120ms"})
	start := time.Now()
	c.callOK("ping", nil)
	if time.Since(start) < 110*time.Millisecond {
		t.Fatal("latency not applied")
	}
	mustOK("/control/v1/latency", map[string]any{"duration": "0s"})
	if status, _ := postJSON(t, base, "/control/v1/latency", map[string]any{"duration": "soon"}); status != 400 {
		t.Fatalf("bad duration: %d", status)
	}
	mustOK("/control/v1/stall", map[string]any{"on": true})
	var st Stats
	getJSON(t, base, "/control/v1/stats", &st)
	if !st.Stalled || st.Sockets != 1 || st.LoggedIn != 1 || st.Chats != 1 {
		t.Fatalf("stats %+v", st)
	}
	mustOK("/control/v1/stall", map[string]any{"on": false})
	mustOK("/control/v1/refuse", map[string]any{"duration": "1m"})
	if _, err := dialRaw(t, base, 1); err == nil {
		t.Fatal("dial while refused")
	}
	mustOK("/control/v1/refuse", map[string]any{"duration": "0s"})

	d := dial(t, base)
	d.login("tok")
	out = mustOK("/control/v1/customers/"+cust+"/disconnect", map[string]any{"reason": "logged_out_remotely"})
	if out["sockets"] != float64(2) {
		t.Fatalf("disconnect %v", out)
	}
	c.expectPush("customer_disconnected")
	c.closed()
	d.expectPush("customer_disconnected")
	d.closed()

	e := dial(t, base)
	e.login("tok")
	eventually(t, "one socket", func() bool { return s.CustomerSockets(cust) == 1 })
	if out = mustOK("/control/v1/customers/"+cust+"/drop", nil); out["sockets"] != float64(1) {
		t.Fatalf("drop customer %v", out)
	}
	e.closed()
	g := dial(t, base)
	g.login("tok")
	eventually(t, "one socket", func() bool { return s.OpenSockets() == 1 })
	if out = mustOK("/control/v1/drop", nil); out["sockets"] != float64(1) {
		t.Fatalf("drop %v", out)
	}
	g.closed()
}
