package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

var testTicketKey = []byte("0123456789abcdef-shared-ticket-key")

// replicas starts n gateways with their own session pools against one
// simulator, sharing testTicketKey, each advertising its own address.
func replicas(t *testing.T, n int) (*chatiosim.Server, []*env) {
	t.Helper()
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	out := make([]*env, n)
	for i := range out {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, sim: sim, reg: prometheus.NewRegistry()}
		e.pool = session.NewPool(session.Config{
			Upstream:      chatio.Config{URL: url, License: 1, RequestTimeout: 3 * time.Second},
			ReconnectWait: 500 * time.Millisecond,
			DialTimeout:   3 * time.Second,
			ReconnectMin:  20 * time.Millisecond,
			ReconnectMax:  100 * time.Millisecond,
		}, zap.NewNop(), e.reg)
		e.api = New(Config{
			AllowedOrigins: []string{"https://shop.example"},
			AdvertiseAddr:  ln.Addr().String(),
			TicketKey:      testTicketKey,
		}, e.pool, nil, e.reg)
		e.srv = httptest.NewUnstartedServer(e.api.Handler())
		_ = e.srv.Listener.Close()
		e.srv.Listener = ln
		e.srv.Start()
		e.client = &http.Client{Transport: &http.Transport{}}
		t.Cleanup(func() {
			e.api.SetDraining()
			e.client.CloseIdleConnections()
			e.srv.CloseClientConnections()
			e.srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.pool.Shutdown(ctx); err != nil {
				t.Errorf("pool shutdown: %v", err)
			}
		})
		out[i] = e
	}
	return sim, out
}

// acceptCounter is a listener that counts and drops every connection.
func acceptCounter(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), &n
}

func (e *env) ticket(token string) string {
	e.t.Helper()
	m := expect(e.t, e.do("POST", "/v1/tickets", token, nil), 200, "")
	tk, _ := m["ticket"].(string)
	if strings.Count(tk, ".") != 2 {
		e.t.Fatalf("ticket %q is not <id>.<issuer>.<mac>", tk)
	}
	return tk
}

// signed is a ticket for issuer signed with key.
func signed(key []byte, id, issuer string) string {
	return id + "." + b64.EncodeToString([]byte(issuer)) + "." + b64.EncodeToString(ticketMAC(key, id, issuer))
}

func TestTicketStreamOnAnotherReplica(t *testing.T) {
	sim, gw := replicas(t, 2)
	a, b := gw[0], gw[1]
	chat, _ := a.startChat("tok")
	tk := a.ticket("tok")

	s, r := b.tryStream("/v1/events?ticket="+tk, "", "Origin: https://shop.example")
	if s == nil {
		t.Fatalf("forwarded stream: %d %s", r.status, r.body)
	}
	if v := r.header.Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "https://shop.example" {
		t.Errorf("Access-Control-Allow-Origin %q", v)
	}
	if v := r.header.Values("X-Request-Id"); len(v) != 1 {
		t.Errorf("X-Request-Id %q", v)
	}
	if c := s.event(); c.Event != "customer_id" || c.Data != `"`+chatiosim.CustomerIDForToken("tok")+`"` {
		t.Fatalf("first event %+v", c)
	}
	s.waitEvent("connected")
	expect(t, a.do("POST", "/v1/chats/"+chat+"/messages", "tok", `{"text":"via A"}`), 201, "")
	for {
		m := s.waitEvent("new_event")
		if ev, _ := m.data(t)["event"].(map[string]any); ev["text"] == "via A" {
			break
		}
	}
	if n := sim.CustomerSockets(chatiosim.CustomerIDForToken("tok")); n != 1 {
		t.Fatalf("%d upstream sockets for the customer, want 1", n)
	}

	// Single use, on either replica.
	for _, e := range []*env{a, b} {
		_, r := e.tryStream("/v1/events?ticket="+tk, "")
		expect(t, r, 401, CodeAuthentication)
	}

	// A draining B ends the streams it forwards.
	b.api.SetDraining()
	s.ended(3 * time.Second)
}

func TestTicketForgedNeverDialled(t *testing.T) {
	_, gw := replicas(t, 2)
	a, b := gw[0], gw[1]
	evil, accepts := acceptCounter(t)
	tk := a.ticket("tok")
	parts := strings.Split(tk, ".")
	id, mac := parts[0], parts[2]
	evilIssuer := b64.EncodeToString([]byte(evil))

	for name, forged := range map[string]string{
		"issuer changed":  id + "." + evilIssuer + "." + mac,
		"mac altered":     id + "." + parts[1] + "." + strings.Repeat("A", len(mac)),
		"mac truncated":   id + "." + evilIssuer + "." + mac[:10],
		"mac too long":    id + "." + evilIssuer + "." + mac + "AAAA",
		"other key":       signed([]byte("another-key-of-16-bytes-or-more"), id, evil),
		"id changed":      "x" + id[1:] + "." + evilIssuer + "." + mac,
		"not three parts": id + "." + evilIssuer,
		"bare id":         id,
		"bad base64":      id + ".!!." + mac,
	} {
		_, r := b.tryStream("/v1/events?ticket="+forged, "")
		if r.status != 401 {
			t.Errorf("%s: status %d %s", name, r.status, r.body)
		}
	}
	if n := accepts.Load(); n != 0 {
		t.Fatalf("%d connections to the forged issuer", n)
	}
	// The real ticket was not used up by the forgeries.
	b.openStream("/v1/events?ticket="+tk, "").waitEvent("connected")
}

func TestTicketForwardLoopGuard(t *testing.T) {
	_, gw := replicas(t, 2)
	a, b := gw[0], gw[1]
	far, accepts := acceptCounter(t)

	// A forwarded request is never forwarded again: refused, nothing dialled,
	// the ticket left for its issuer.
	tk := a.ticket("tok")
	_, r := b.tryStream("/v1/events?ticket="+tk, "", forwardedHeader+": 1")
	expect(t, r, 401, CodeAuthentication)
	farTk := signed(testTicketKey, "someid", far)
	_, r = b.tryStream("/v1/events?ticket="+farTk, "", forwardedHeader+": 1")
	expect(t, r, 401, CodeAuthentication)
	if n := accepts.Load(); n != 0 {
		t.Fatalf("%d connections despite %s", n, forwardedHeader)
	}
	a.openStream("/v1/events?ticket="+tk, "", forwardedHeader+": 1").waitEvent("connected")

	// Without the header a validly signed issuer is dialled; one that fails
	// → 503, get a new ticket.
	_, r = b.tryStream("/v1/events?ticket="+farTk, "")
	expect(t, r, 503, CodeOverloaded)
	if n := accepts.Load(); n != 1 {
		t.Fatalf("%d connections to a signed issuer, want 1", n)
	}
}

func TestTicketForwardedExpired(t *testing.T) {
	_, gw := replicas(t, 2)
	a, b := gw[0], gw[1]
	a.api.tickets.mu.Lock()
	a.api.tickets.now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	a.api.tickets.mu.Unlock()
	tk := a.ticket("tok")
	a.api.tickets.mu.Lock()
	a.api.tickets.now = time.Now
	a.api.tickets.mu.Unlock()
	_, r := b.tryStream("/v1/events?ticket="+tk, "")
	expect(t, r, 401, CodeAuthentication)
	_, r = a.tryStream("/v1/events?ticket="+tk, "")
	expect(t, r, 401, CodeAuthentication)
}

func TestTicketRouteConfig(t *testing.T) {
	key := make([]byte, 16)
	for _, c := range []Config{
		{AdvertiseAddr: "10.0.0.1:8080"},                        // no key
		{AdvertiseAddr: "10.0.0.1:8080", TicketKey: key[:15]},   // short key
		{TicketKey: key[:8]},                                    // short key
		{AdvertiseAddr: "10.0.0.1", TicketKey: key},             // no port
		{AdvertiseAddr: "http://10.0.0.1:8080", TicketKey: key}, // a URL
		{AdvertiseAddr: ":8080", TicketKey: key},                // no host
	} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	for _, c := range []Config{{}, {TicketKey: key}, {AdvertiseAddr: "10.0.0.1:8080", TicketKey: key}, {AdvertiseAddr: "[fd00::1]:8080", TicketKey: key}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if d := (Config{}).withDefaults(); len(d.TicketKey) < MinTicketKeyLen {
		t.Errorf("default ticket key of %d bytes", len(d.TicketKey))
	}
}
