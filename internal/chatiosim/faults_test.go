package chatiosim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestPendingLimitWithStall(t *testing.T) {
	s, base := start(t, Config{MaxPending: 10, RequestTimeout: 5 * time.Second})
	c := dial(t, base)
	c.login("tok")
	s.Stall(true)
	var ids []string
	for range 10 {
		ids = append(ids, c.send("ping", nil))
	}
	c.noFrame(100 * time.Millisecond) // stalled: no answers
	over := c.send("ping", nil)
	f := c.next()
	if f.reqID() != over || f.ok() || f.errType() != "pending_requests_limit_reached" {
		t.Fatalf("11th: %s %s", f.RequestID, f.Payload)
	}
	s.Stall(false)
	for _, id := range ids { // answered in order once the stall ends
		f := c.next()
		if f.reqID() != id || !f.ok() {
			t.Fatalf("want answer to %s, got %s %s", id, f.RequestID, f.Payload)
		}
	}
	c.callOK("ping", nil)
}

func TestRequestTimeoutWhileStalled(t *testing.T) {
	s, base := start(t, Config{RequestTimeout: 200 * time.Millisecond})
	c := dial(t, base)
	c.login("tok")
	s.Stall(true)
	start := time.Now()
	f := c.call("get_chats_summary", nil)
	if f.ok() || f.errType() != "request_timeout" {
		t.Fatalf("%s", f.Payload)
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	s.Stall(false)
	c.callOK("get_chats_summary", nil)
}

func TestStallStopsPongs(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	c.login("tok")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	if err := c.conn.Ping(ctx); err != nil {
		t.Fatalf("ping before stall: %v", err)
	}
	cancel()
	s.Stall(true)
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := c.conn.Ping(ctx); err == nil {
		t.Fatal("pong while stalled")
	}
	s.Stall(false)
}

func TestLatency(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	c.login("tok")
	s.SetLatency(150 * time.Millisecond)
	start := time.Now()
	a := c.send("ping", nil)
	b := c.send("get_chats_summary", nil)
	if f := c.next(); f.reqID() != a {
		t.Fatalf("order: %s", f.RequestID)
	}
	if f := c.next(); f.reqID() != b || !f.ok() {
		t.Fatalf("order: %s", f.RequestID)
	}
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	s.SetLatency(0)
	start = time.Now()
	c.callOK("ping", nil)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("latency still on: %v", d)
	}
	if st := s.Stats(); st.LatencyMillis != 0 || st.Stalled {
		t.Fatalf("stats %+v", st)
	}
}

func TestDisconnectCustomer(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	d := dial(t, base)
	d.login("tok")
	bystander := dial(t, base)
	bystander.login("other")
	if n := s.DisconnectCustomer(cust, "access_token_revoked"); n != 2 {
		t.Fatalf("disconnected %d", n)
	}
	for _, x := range []*wsClient{c, d} {
		f := x.expectPush("customer_disconnected")
		if string(f.Payload) != `{"reason":"access_token_revoked"}` {
			t.Fatal(f.Payload)
		}
		err := x.closed()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "access_token_revoked" {
			t.Fatalf("close: %v", err)
		}
	}
	bystander.callOK("ping", nil)
	eventually(t, "customer sockets gone", func() bool { return s.CustomerSockets(cust) == 0 })
}

func TestDropAllAndDropCustomer(t *testing.T) {
	s, base := start(t, Config{})
	a := dial(t, base)
	custA := a.login("a")
	b := dial(t, base)
	b.login("b")
	unlogged := dial(t, base)

	if n := s.DropCustomer(custA); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if err := a.closed(); websocket.CloseStatus(err) != -1 {
		t.Fatalf("drop sent a close frame: %v", err)
	}
	b.callOK("ping", nil)
	unlogged.callOK("ping", nil) // answered: the server has registered it (ping needs no login)
	if n := s.DropAll(); n != 2 {
		t.Fatalf("dropped %d", n)
	}
	for _, x := range []*wsClient{b, unlogged} {
		if err := x.closed(); websocket.CloseStatus(err) != -1 {
			t.Fatalf("drop sent a close frame: %v", err)
		}
	}
	eventually(t, "no sockets", func() bool { return s.OpenSockets() == 0 })
	// the state survives: reconnect and find the chat
	c := dial(t, base)
	c.login("a")
	c.callOK("get_chats_summary", nil)
}

func TestRefuseConnections(t *testing.T) {
	s, base := start(t, Config{})
	s.RefuseConnections(200 * time.Millisecond)
	if _, err := dialRaw(t, base, 1); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("dial during refusal: %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	c := dial(t, base)
	c.login("x")
	s.RefuseConnections(time.Minute)
	s.RefuseConnections(0)
	dial(t, base).login("y")
}

func TestSlowConsumerCut(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	cust := c.login("tok")
	chatID, _ := c.newChat()
	ag := s.Agent("agent-1", "Agent One")
	c.close()
	eventually(t, "first socket gone", func() bool { return s.CustomerSockets(cust) == 0 })
	// a socket that is never read: its TCP buffers, then its queue fill up
	raw, _, err := websocket.Dial(t.Context(), wsURL(base, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.CloseNow()
	if err := raw.Write(t.Context(), websocket.MessageText, []byte(`{"request_id":"1","action":"login","payload":{"token":"Bearer tok"}}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "raw socket logged in", func() bool { return s.CustomerSockets(cust) == 1 })
	big := strings.Repeat("x", 16<<10)
	for range 2000 {
		if _, err := ag.SendMessage(chatID, big); err != nil {
			t.Fatal(err)
		}
		if s.Stats().SlowSockets > 0 {
			break
		}
	}
	eventually(t, "slow socket cut", func() bool { return s.Stats().SlowSockets > 0 && s.CustomerSockets(cust) == 0 })
}
