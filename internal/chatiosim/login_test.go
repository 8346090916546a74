package chatiosim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestLoginOK(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	id := c.login("tok-1")
	if id != CustomerIDForToken("tok-1") {
		t.Fatalf("customer id %q, want %q", id, CustomerIDForToken("tok-1"))
	}
	f := c.callOK("get_chats_summary", nil)
	if string(f.Payload) != `{"chats_summary":[],"total_chats":0}` {
		t.Fatalf("summary %s", f.Payload)
	}
	if n := s.CustomerSockets(id); n != 1 {
		t.Fatalf("customer sockets %d", n)
	}
	c.callErr("login", map[string]any{"token": "Bearer tok-1"}, "validation") // once per socket
	c.callOK("ping", nil)
}

func TestLoginCustomerData(t *testing.T) {
	s, base := start(t, Config{})
	c := dial(t, base)
	f := c.callOK("login", map[string]any{"token": "Bearer t", "customer": map[string]any{
		"name": "Jonas Berg", "email": "jonas@example.org", "fields": map[string]any{"member_since": "2017"}}})
	var p struct {
		CustomerID string `json:"customer_id"`
	}
	f.decode(t, &p)
	chatID, _ := c.newChat()
	ci, _ := s.Chat(chatID)
	if ci.CustomerID != p.CustomerID {
		t.Fatal(ci)
	}
	sum := c.callOK("get_chats_summary", map[string]any{"offset": 0, "limit": 10})
	if !strings.Contains(string(sum.Payload), `{"id":"`+p.CustomerID+`","type":"customer","name":"Jonas Berg","email":"jonas@example.org","fields":{"member_since":"2017"}}`) {
		t.Fatalf("customer not in summary: %s", sum.Payload)
	}
	d := dial(t, base)
	d.callErr("login", map[string]any{"token": "Bearer t", "customer": map[string]any{"fields": map[string]any{"n": 1}}}, "validation")
}

func TestLoginBadToken(t *testing.T) {
	_, base := start(t, Config{Tokens: FixedTokens(map[string]string{"good": "cust-1"})})
	c := dial(t, base)
	f := c.callErr("login", map[string]any{"token": "Bearer bad", "customer": map[string]any{}}, "authentication")
	if f.errMessage() == "" {
		t.Fatal("no message")
	}
	c.callErr("login", map[string]any{"token": "good"}, "authentication") // not Bearer
	// The socket stays open: the client may retry.
	if id := c.login("good"); id != "cust-1" {
		t.Fatalf("id %q", id)
	}

	_, base2 := start(t, Config{})
	d := dial(t, base2)
	d.callErr("login", map[string]any{"token": "Bearer expired:abc"}, "authentication")
	d.callErr("login", map[string]any{"token": "Bearer "}, "authentication")
}

func TestRequestsBeforeLogin(t *testing.T) {
	_, base := start(t, Config{})
	c := dial(t, base)
	c.callOK("ping", nil)
	c.callErr("get_chats_summary", nil, "authentication")
	c.login("x")
	c.callErr("no_such_action", nil, "validation")
	c.callErr("get_chats_summary", []int{1}, "validation") // payload not an object
	c.sendRaw(map[string]any{"request_id": "q", "action": 5})
	if f := c.next(); f.reqID() != "q" || f.errType() != "validation" {
		t.Fatalf("%s %s", f.RequestID, f.Payload)
	}
	if err := c.conn.Write(t.Context(), websocket.MessageText, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if f := c.next(); f.RequestID != nil || f.errType() != "validation" {
		t.Fatalf("%s %s", f.RequestID, f.Payload)
	}
}

func TestLoginTimeout(t *testing.T) {
	_, base := start(t, Config{LoginTimeout: 150 * time.Millisecond})
	c := dial(t, base)
	start := time.Now()
	err := c.closed()
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != "login_timeout" {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v", d)
	}
	// A logged-in socket is not closed by the login timeout.
	d := dial(t, base)
	d.login("x")
	time.Sleep(300 * time.Millisecond)
	d.callOK("ping", nil)
}

func TestLicense(t *testing.T) {
	_, base := start(t, Config{Licenses: []int64{7}})
	if _, err := dialRaw(t, strings.Replace(base, "/customer/v0.5", "/customer/v0.5", 1), 0); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("license 0: %v", err)
	}
	c, err := dialRaw(t, base, 7)
	if err != nil {
		t.Fatal(err)
	}
	c.login("x")

	d, err := dialRaw(t, base, 8)
	if err != nil {
		t.Fatal(err)
	}
	f := d.expectPush("customer_disconnected")
	if string(f.Payload) != `{"reason":"license_not_found"}` {
		t.Fatalf("payload %s", f.Payload)
	}
	if err := d.closed(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v", err)
	}
}

func TestIdleClose(t *testing.T) {
	_, base := start(t, Config{IdleTimeout: 200 * time.Millisecond})
	silent := dial(t, base)
	silent.login("a")
	pinger := dial(t, base)
	pinger.login("b")
	stop := time.After(500 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		case <-time.After(50 * time.Millisecond):
			if err := pinger.conn.Ping(t.Context()); err != nil { // websocket pings count as activity
				t.Fatalf("ping: %v", err)
			}
		}
	}
	err := silent.closed()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != "connection_timeout" {
		t.Fatalf("silent socket: %v", err)
	}
	pinger.callOK("ping", nil)
}
