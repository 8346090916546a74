package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// loginWithoutID makes the upstream's login answer carry no customer id,
// as chat.io 0.5 answers it ({}).
func loginWithoutID(o *envOptions) {
	o.pool.Dial = func(ctx context.Context, cfg chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
		c, login, err := chatio.Dial(ctx, cfg)
		login.CustomerID = ""
		return c, login, err
	}
}

// sessionCustomerID is GET /v1/session's customerId.
func (e *env) sessionCustomerID(token string, headers ...string) string {
	e.t.Helper()
	m := expect(e.t, e.do("GET", "/v1/session", token, nil, headers...), 200, "")
	id, ok := m["customerId"].(string)
	if !ok {
		e.t.Fatalf("session %v: no customerId", m)
	}
	return id
}

// customerIDEvent is the data of a customer_id event, decoded.
func customerIDEvent(t *testing.T, m sseMsg) string {
	t.Helper()
	var id string
	if m.Event != "customer_id" || json.Unmarshal([]byte(m.Data), &id) != nil {
		t.Fatalf("got %s %q, want customer_id", m.Event, m.Data)
	}
	return id
}

// A customer without chats, behind an upstream whose login tells no id:
// the X-Customer-Id of the request that opened the session is the id, on
// REST and on the stream; a later request's other id changes nothing.
func TestCustomerIDFromHeader(t *testing.T) {
	e := newEnv(t, loginWithoutID)
	if id := e.sessionCustomerID("tok-a", "X-Customer-Id: ent-a"); id != "ent-a" {
		t.Fatalf("customerId %q, want ent-a", id)
	}
	s := e.openStream("/v1/events", "tok-a")
	if id := customerIDEvent(t, s.event()); id != "ent-a" {
		t.Fatalf("stream customer_id %q, want ent-a", id)
	}
	if id := e.sessionCustomerID("tok-a", "X-Customer-Id: someone-else"); id != "ent-a" {
		t.Fatalf("a later header changed the id to %q", id)
	}

	// The stream's own header opens a session just as well.
	s2 := e.openStream("/v1/events", "tok-b", "X-Customer-Id: ent-b")
	if id := customerIDEvent(t, s2.event()); id != "ent-b" {
		t.Fatalf("stream customer_id %q, want ent-b", id)
	}
	if id := e.sessionCustomerID("tok-b"); id != "ent-b" {
		t.Fatalf("customerId %q, want ent-b", id)
	}
}

// A session opened without the header and without any other source of the
// id adopts the first header that comes later, and tells open streams.
func TestCustomerIDAdoptedLater(t *testing.T) {
	e := newEnv(t, loginWithoutID)
	if id := e.sessionCustomerID("tok"); id != "" {
		t.Fatalf("customerId %q with nothing to tell it", id)
	}
	s := e.openStream("/v1/events", "tok")
	if id := customerIDEvent(t, s.event()); id != "" {
		t.Fatalf("stream customer_id %q, want empty", id)
	}
	s.waitEvent("connected")

	expect(t, e.do("GET", "/v1/chats", "tok", nil, "X-Customer-Id: ent-late"), 200, "")
	if id := customerIDEvent(t, s.waitEvent("customer_id")); id != "ent-late" {
		t.Fatalf("live customer_id %q, want ent-late", id)
	}
	if id := e.sessionCustomerID("tok", "X-Customer-Id: ent-later"); id != "ent-late" {
		t.Fatalf("customerId %q, want ent-late", id)
	}
	s2 := e.openStream("/v1/events", "tok")
	if id := customerIDEvent(t, s2.event()); id != "ent-late" {
		t.Fatalf("new stream's customer_id %q, want ent-late", id)
	}
}

// The upstream's own answer outranks the header.
func TestCustomerIDLoginWins(t *testing.T) {
	e := newEnv(t)
	if id := e.sessionCustomerID("tok", "X-Customer-Id: not-me"); id != chatiosim.CustomerIDForToken("tok") {
		t.Fatalf("customerId %q, want the login's", id)
	}
}

// A ticket stream counts the header sent on POST /v1/tickets, even when
// the session that request opened is gone by the time the stream opens.
func TestCustomerIDTicket(t *testing.T) {
	e := newEnv(t, loginWithoutID)
	m := expect(t, e.do("POST", "/v1/tickets", "tok", nil, "X-Customer-Id: ent-t"), 200, "")
	expect(t, e.do("DELETE", "/v1/session", "tok", nil), http.StatusNoContent, "")
	if e.pool.Len() != 0 {
		t.Fatal("session not ended")
	}
	s := e.openStream("/v1/events?ticket="+m["ticket"].(string), "")
	if id := customerIDEvent(t, s.event()); id != "ent-t" {
		t.Fatalf("ticket stream customer_id %q, want ent-t", id)
	}
	if id := e.sessionCustomerID("tok"); id != "ent-t" {
		t.Fatalf("customerId %q, want ent-t", id)
	}
}

// A malformed X-Customer-Id is 400 INVALID_ARGS on REST and on the stream
// (header or ticket), and opens no session.
func TestCustomerIDMalformed(t *testing.T) {
	e := newEnv(t)
	tk := expect(t, e.do("POST", "/v1/tickets", "tok-t", nil), 200, "")["ticket"].(string)
	before := e.pool.Len()
	// (Other C0 controls and DEL never get past net/http's own checks.)
	bad := []string{
		strings.Repeat("a", 129),
		"a\tb",     // a control character HTTP lets through
		"a\u0085b", // C1 control (NEL)
		"a\xffb",   // not UTF-8
	}
	for i, v := range bad {
		for _, path := range []string{"/v1/session", "/v1/chats"} {
			expect(t, e.do("GET", path, "tok", nil, "X-Customer-Id: "+v), 400, CodeInvalidArgs)
		}
		expect(t, e.do("DELETE", "/v1/session", "tok", nil, "X-Customer-Id: "+v), 400, CodeInvalidArgs)
		expect(t, e.do("POST", "/v1/tickets", "tok", nil, "X-Customer-Id: "+v), 400, CodeInvalidArgs)
		if _, r := e.tryStream("/v1/events", "tok", "X-Customer-Id: "+v); r.status != 400 || r.json(t)["code"] != CodeInvalidArgs {
			t.Fatalf("stream, bad id %d: %d %s", i, r.status, r.body)
		}
		if _, r := e.tryStream("/v1/events?ticket="+tk, "", "X-Customer-Id: "+v); r.status != 400 {
			t.Fatalf("ticket stream, bad id %d: %d %s", i, r.status, r.body)
		}
	}
	// Every /v1 route checks it.
	for _, rt := range everyV1Route {
		expect(t, e.do(rt[0], rt[1], "tok", `{}`, "X-Customer-Id: "+bad[1]), 400, CodeInvalidArgs)
	}
	// Twice is once too many.
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/session", nil)
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Add("X-Customer-Id", "a")
	req.Header.Add("X-Customer-Id", "b")
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("two X-Customer-Id: %d", res.StatusCode)
	}
	if n := e.pool.Len(); n != before {
		t.Fatalf("%d sessions after bad ids, want %d", n, before)
	}
	// The ticket was not used up by the refused streams.
	s := e.openStream("/v1/events?ticket="+tk, "")
	s.waitEvent("connected")

	// At the limits: 128 bytes, any printable UTF-8, surrounding spaces
	// trimmed by HTTP; an empty header is no header.
	for _, v := range []string{strings.Repeat("é", 64), "a\u200bb", "  x  ", ""} {
		expect(t, e.do("GET", "/v1/session", "tok-ok", nil, "X-Customer-Id: "+v), 200, "")
	}
	// A missing bearer is still 401 first.
	expect(t, e.do("GET", "/v1/session", "", nil, "X-Customer-Id: "+bad[0]), 401, CodeAuthentication)
}

// DELETE /v1/session without a session answers 204 at once and dials
// nothing, as often as it is sent.
func TestDeleteSessionWithoutSession(t *testing.T) {
	e := newEnv(t)
	for range 2 {
		r := e.do("DELETE", "/v1/session", "tok-none", nil)
		expect(t, r, http.StatusNoContent, "")
	}
	if st := e.sim.Stats(); st.Requests != 0 || st.Sockets != 0 {
		t.Fatalf("the simulator saw %d requests, %d sockets", st.Requests, st.Sockets)
	}
	if n := e.pool.Len(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gateway_upstream_connects_total" && mf.GetMetric()[0].GetCounter().GetValue() != 0 {
			t.Fatalf("upstream connects: %v", mf.GetMetric()[0])
		}
	}
}

// A browser may send X-Customer-Id across origins.
func TestCustomerIDCORS(t *testing.T) {
	e := newEnv(t)
	r := e.do("OPTIONS", "/v1/session", "", nil, "Origin: https://shop.example",
		"Access-Control-Request-Method: GET", "Access-Control-Request-Headers: authorization, x-customer-id")
	if r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "X-Customer-Id") {
		t.Fatalf("preflight %d %v", r.status, r.header)
	}
}
