package httpapi

import "testing"

// A history cursor is bound to the customer's token: another token's
// replay is 400 INVALID_ARGS without asking the upstream; the last page
// has no cursor.
func TestHistoryCursorBoundToToken(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok-a")
	agent := e.sim.Agent("agent-x", "")
	for i := range 3 {
		if i > 0 {
			if err := agent.CloseThread(chat); err != nil {
				t.Fatal(err)
			}
		}
		for range 30 {
			if _, err := agent.SendMessage(chat, "m"); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := expect(t, e.do("GET", "/v1/chats/"+chat+"/history", "tok-a", nil), 200, "")
	cursor, _ := h["cursor"].(string)
	if h["done"] != false || cursor == "" {
		t.Fatalf("first page %v", h)
	}
	expect(t, e.do("GET", "/v1/session", "tok-b", nil), 200, "") // tok-b's session is open
	before := e.sim.Stats().Requests
	m := expect(t, e.do("GET", "/v1/chats/"+chat+"/history?cursor="+cursor, "tok-b", nil), 400, CodeInvalidArgs)
	if m["message"] != "invalid history cursor" {
		t.Fatalf("message %v", m["message"])
	}
	if n := e.sim.Stats().Requests - before; n != 0 {
		t.Fatalf("the upstream was asked %d times for another customer's cursor", n)
	}
	// The owner follows it to the end: the last page has no cursor.
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatal("history does not end")
		}
		h = expect(t, e.do("GET", "/v1/chats/"+chat+"/history?cursor="+cursor, "tok-a", nil), 200, "")
		if h["done"] == true {
			if _, ok := h["cursor"]; ok {
				t.Fatalf("done page with a cursor: %v", h)
			}
			break
		}
		cursor, _ = h["cursor"].(string)
		if cursor == "" {
			t.Fatalf("page not done without a cursor: %v", h)
		}
	}
}
