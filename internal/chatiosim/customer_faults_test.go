package chatiosim

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestStallCustomer: one customer's socket stops answering requests and
// pings while another customer is served; pushes still reach the stalled
// one; turning it off answers what waited, in order.
func TestStallCustomer(t *testing.T) {
	s, base := start(t, Config{RequestTimeout: 5 * time.Second})
	a, b := dial(t, base), dial(t, base)
	idA := a.login("tok-a")
	b.login("tok-b")
	chat, _ := a.newChat()
	s.StallCustomer(idA, true)

	waiting := a.send("ping", nil)
	a.noFrame(100 * time.Millisecond)
	b.callOK("ping", nil) // the other customer is served

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	if err := a.conn.Ping(ctx); err == nil {
		t.Error("pong from a stalled customer's socket")
	}
	cancel()
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	if err := b.conn.Ping(ctx); err != nil {
		t.Errorf("no pong for the other customer: %v", err)
	}
	cancel()

	if _, err := s.Agent("ag", "Agent").SendMessage(chat, "during the stall"); err != nil {
		t.Fatal(err)
	}
	a.waitFor("push while stalled", func(f frame) bool { return f.Action == "incoming_event" })

	s.StallCustomer(idA, false)
	if f := a.waitFor("the waiting answer", func(f frame) bool { return f.reqID() == waiting }); !f.ok() {
		t.Fatalf("answer after the stall: %s", f.Payload)
	}
	a.callOK("ping", nil)
}

// TestInjectFrame: a raw frame reaches every socket of the customer only.
func TestInjectFrame(t *testing.T) {
	s, base := start(t, Config{})
	a1, a2, b := dial(t, base), dial(t, base), dial(t, base)
	id := a1.login("tok-a")
	a2.login("tok-a")
	b.login("tok-b")
	if n := s.InjectFrame(id, []byte(`{"action":"mystery_push","type":"push","payload":{"x":1}}`)); n != 2 {
		t.Fatalf("queued to %d sockets, want 2", n)
	}
	for _, c := range []*wsClient{a1, a2} {
		if f := c.next(); f.Action != "mystery_push" {
			t.Fatalf("got %s", f.Action)
		}
	}
	b.noFrame(100 * time.Millisecond)
	if n := s.InjectFrame("nobody", []byte(`{}`)); n != 0 {
		t.Fatalf("queued to %d sockets of an unknown customer", n)
	}
}

// TestClientCloses counts sockets the client closed with a normal close
// frame, not those it dropped or the server closed.
func TestClientCloses(t *testing.T) {
	s, base := start(t, Config{})
	a, b, c := dial(t, base), dial(t, base), dial(t, base)
	a.login("tok-a")
	b.login("tok-b")
	idC := c.login("tok-c")
	if err := a.conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	_ = b.conn.CloseNow()          // vanishes
	s.DisconnectCustomer(idC, "x") // the server closes
	_ = c.closed()
	eventually(t, "sockets gone", func() bool { return s.OpenSockets() == 0 })
	if n := s.Stats().ClientCloses; n != 1 {
		t.Fatalf("ClientCloses = %d, want 1", n)
	}
}
