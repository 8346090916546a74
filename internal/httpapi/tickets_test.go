package httpapi

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

var (
	testClusterKey = bytes.Repeat([]byte{0x5a}, 32)
	testTicketKey  = bytes.Repeat([]byte{0xa5}, TicketKeyLen)
)

// natsServer runs a JetStream nats-server on 127.0.0.1 (port 0: any; else
// that port) with its store in dir.
func natsServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "s1", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// startEngine connects a node of the engine to url.
func startEngine(t *testing.T, url, node string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := engine.Start(ctx, engine.Config{
		URL: url, NodeID: node, ClusterKey: testClusterKey,
		LeaseTTL: time.Second, ReconnectWait: 100 * time.Millisecond, OpTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

// replicasOn starts n gateways, each with its own session pool and engine
// node on the one nats-server s, sharing the ticket key.
func replicasOn(t *testing.T, s *server.Server, n int, mod func(*envOptions)) []*env {
	t.Helper()
	out := make([]*env, n)
	for i := range out {
		eng := startEngine(t, s.ClientURL(), "node"+string(rune('a'+i)))
		out[i] = newEnv(t, func(o *envOptions) {
			o.cfg.Engine = eng
			o.cfg.TicketKey = testTicketKey
			if mod != nil {
				mod(o)
			}
		})
	}
	return out
}

// TestTicketAnyReplicaOnce: a ticket issued by one gateway opens its
// customer's stream on another (with the X-Customer-Id it was issued
// with), once: after that neither gateway accepts it. Another customer's
// ticket opens only that customer's stream.
func TestTicketAnyReplicaOnce(t *testing.T) {
	gw := replicasOn(t, natsServer(t, 0, t.TempDir()), 2, loginWithoutID)
	a, b := gw[0], gw[1]

	tk := expect(t, a.do("POST", "/v1/tickets", "tok-a", nil, "X-Customer-Id: ent-a"), 200, "")["ticket"].(string)
	s := b.openStream("/v1/events?ticket="+tk, "")
	if c := s.event(); c.Event != "customer_id" || c.Data != `"ent-a"` {
		t.Fatalf("first event %+v", c)
	}
	for _, e := range gw {
		_, r := e.tryStream("/v1/events?ticket="+tk, "")
		expect(t, r, 401, CodeAuthentication)
	}

	tb := expect(t, b.do("POST", "/v1/tickets", "tok-b", nil, "X-Customer-Id: ent-b"), 200, "")["ticket"].(string)
	s = a.openStream("/v1/events?ticket="+tb, "")
	if c := s.event(); c.Event != "customer_id" || c.Data != `"ent-b"` {
		t.Fatalf("another customer's ticket: first event %+v", c)
	}
	if a.pool.Len() != 2 || b.pool.Len() != 2 { // each: the customer it issued for, the one whose stream it serves
		t.Fatalf("sessions: %d on a, %d on b", a.pool.Len(), b.pool.Len())
	}
}

// TestTicketExpiry: a ticket is refused once its lifetime is over, on any
// gateway.
func TestTicketExpiry(t *testing.T) {
	gw := replicasOn(t, natsServer(t, 0, t.TempDir()), 2, func(o *envOptions) { o.cfg.TicketTTL = time.Second })
	m := expect(t, gw[0].do("POST", "/v1/tickets", "tok", nil), 200, "")
	if m["expiresIn"] != float64(1) {
		t.Fatalf("expiresIn %v", m["expiresIn"])
	}
	time.Sleep(1100 * time.Millisecond)
	for _, e := range gw {
		_, r := e.tryStream("/v1/events?ticket="+m["ticket"].(string), "")
		expect(t, r, 401, CodeAuthentication)
	}
}

// TestTicketForged: a ticket not sealed with the shared key, or altered
// anywhere, is 401, and opens no session.
func TestTicketForged(t *testing.T) {
	gw := replicasOn(t, natsServer(t, 0, t.TempDir()), 1, nil)[0]
	other := newTicketSealer(bytes.Repeat([]byte{1}, TicketKeyLen))
	good := expect(t, gw.do("POST", "/v1/tickets", "tok", nil), 200, "")["ticket"].(string)
	raw, err := b64.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		other.seal("tok", "", time.Minute), // another key
		"unknown", strings.Repeat("A", 100), strings.Repeat("A", maxTicketLen+4), good + "A", good[:len(good)-2],
	}
	for _, i := range []int{0, ticketNonceLen, ticketNonceLen + 5, len(raw) - 1} { // nonce, version, expiry, tag
		alt := bytes.Clone(raw)
		alt[i] ^= 1
		bad = append(bad, b64.EncodeToString(alt))
	}
	for i, tk := range bad {
		_, r := gw.tryStream("/v1/events?ticket="+tk, "")
		if r.status != 401 {
			t.Fatalf("forged ticket %d: %d %s", i, r.status, r.body)
		}
	}
	if n := gw.pool.Len(); n != 1 { // the good ticket's
		t.Fatalf("%d sessions", n)
	}
	gw.openStream("/v1/events?ticket="+good, "") // the good one still works
}

// TestTicketHoldsNothing: an outstanding ticket holds no memory in the
// gateway (it is sealed, not stored), whatever its token's length; a
// ticket is single-use across gateways all the same (TestTicketAnyReplicaOnce).
func TestTicketHoldsNothing(t *testing.T) {
	gw := replicasOn(t, natsServer(t, 0, t.TempDir()), 1, func(o *envOptions) {
		o.cfg.RateLimit, o.cfg.RateBurst = 1e6, 1e6
		o.log = zap.NewNop() // an observer keeps every access log entry
	})[0]
	token := strings.Repeat("k", maxTokenLen)
	issue := func(n int) {
		for range n {
			r := gw.do("POST", "/v1/tickets", token, nil, "X-Customer-Id: "+strings.Repeat("c", 128))
			if r.status != 200 || len(r.body) > maxTicketLen+64 {
				t.Fatalf("ticket: %d, %d bytes", r.status, len(r.body))
			}
		}
	}
	issue(100) // the session, connections and pools are in place
	const n = 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	issue(n)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("held per outstanding ticket (2 KiB token): %.0f bytes", per)
	if per > 64 {
		t.Fatalf("an outstanding ticket holds %.0f bytes", per)
	}
}

// TestTicketSize: the longest token and customer id make a ticket under
// maxTicketLen, ≈ 3 KiB.
func TestTicketSize(t *testing.T) {
	ts := newTicketSealer(testTicketKey)
	tk := ts.seal(strings.Repeat("k", maxTokenLen), strings.Repeat("c", 128), time.Minute)
	if len(tk) > maxTicketLen || maxTicketLen > 3072 {
		t.Fatalf("ticket %d bytes, bound %d", len(tk), maxTicketLen)
	}
	o, ok := ts.open(tk)
	if !ok || o.token != strings.Repeat("k", maxTokenLen) || o.customerID != strings.Repeat("c", 128) {
		t.Fatal("the longest ticket does not open")
	}
}

// TestEngineDownReadyzAndTickets: while the engine's server is down,
// /readyz is 503 engine_unavailable with Retry-After and a ticket cannot
// be redeemed (503 OVERLOADED with Retry-After: the client gets a new
// ticket, as that one may be used up when the engine returns); once the
// server is back on the same port, both recover by themselves.
func TestEngineDownReadyzAndTickets(t *testing.T) {
	dir := t.TempDir()
	s := natsServer(t, 0, dir)
	port := s.Addr().(*net.TCPAddr).Port
	gw := replicasOn(t, s, 1, nil)[0]
	expect(t, gw.do("GET", "/readyz", "", nil), 200, "")
	tk := expect(t, gw.do("POST", "/v1/tickets", "tok", nil), 200, "")["ticket"].(string)

	s.Shutdown()
	s.WaitForShutdown()
	testwait.For(t, 10*time.Second, "readyz 503", func() bool { return gw.do("GET", "/readyz", "", nil).status == 503 })
	r := gw.do("GET", "/readyz", "", nil)
	if m := r.json(t); m["status"] != "engine_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("readyz while down: %s %v", r.body, r.header)
	}
	_, r = gw.tryStream("/v1/events?ticket="+tk, "")
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}

	natsServer(t, port, dir)
	testwait.For(t, 15*time.Second, "readyz 200", func() bool { return gw.do("GET", "/readyz", "", nil).status == 200 })
	tk = expect(t, gw.do("POST", "/v1/tickets", "tok", nil), 200, "")["ticket"].(string)
	gw.openStream("/v1/events?ticket="+tk, "")
}

// TestLocalOnce: without an engine, a ticket is single-use within the
// process; its id is dropped when its lifetime is over.
func TestLocalOnce(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &localOnce{ttl: time.Minute, now: func() time.Time { return now }, seen: map[string]bool{}}
	for i, want := range []bool{true, false} {
		if got, err := l.Once(t.Context(), "x", 0); err != nil || got != want {
			t.Fatalf("call %d: %v %v", i, got, err)
		}
	}
	now = now.Add(2 * time.Minute)
	if got, _ := l.Once(t.Context(), "y", 0); !got || len(l.seen) != 1 {
		t.Fatalf("expired ids kept: %d", len(l.seen))
	}
}
