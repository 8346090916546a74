package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// Upstream faults, each on its own: malformed frames, a refused re-login,
// refused connections under a mass reconnect, a stalled socket.

// TestMalformedUpstreamFrames: frames a faithful chat.io never sends (bad
// JSON, not an object, no action, unknown actions, missing fields, answers
// to request ids nobody asked, request ids of the wrong type) are counted
// and skipped: the session stays connected, its stream stays open, the
// next real event is delivered once. A frame over the read limit costs the
// socket, not the session: it is redialed and the gap filled.
func TestMalformedUpstreamFrames(t *testing.T) {
	t.Parallel()
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		session: func(c *session.Config) { c.Upstream.ReadLimit = 64 << 10 },
	})
	client := relClient(t)
	const token = "malformed-frames"
	id := chatiosim.CustomerIDForToken(token)
	chat := relStartChat(t, client, gw.URL, token)
	rec := relRecord(t, client, gw.URL, token, false)
	rec.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))

	frames := []string{
		`{not json`,
		`[1,2,3]`,
		`"a string"`,
		`null`,
		`{"type":"push","payload":{}}`, // no action
		`{"action":42,"type":"push"}`,  // action not a string
		`{"action":"send_event","type":"response","success":true,"payload":{}}`, // response without id
		`{"request_id":"424242","action":"send_event","type":"response","success":true,"payload":{}}`,
		`{"request_id":"424243","action":"incoming_event","type":"push","payload":{"chat_id":"` + chat + `"}}`,
		`{"request_id":17,"action":"incoming_event","type":"push","payload":{}}`,
		`{"action":"incoming_event","type":"strange","payload":{}}`,
		`{"action":"incoming_event","type":"push"}`,                                      // no payload
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"` + chat + `"}}`, // no event
		`{"action":"incoming_event","type":"push","payload":{"chat_id":5,"event":"x"}}`,
		`{"action":"incoming_chat_thread","type":"push","payload":{"chat":{"id":"` + chat + `","thread":null}}}`,
		`{"action":"chat_users_updated","type":"push","payload":{"updated_users":17}}`,
		`{"action":"thread_closed","type":"push","payload":[]}`,
		"{\"action\":\"incoming_event\",\"type\":\"push\",\"payload\":{\"chat_id\":\"\xff\xfe\"}}",
	}
	for _, f := range frames {
		if n := sim.InjectFrame(id, []byte(f)); n != 1 {
			t.Fatalf("injected into %d sockets", n)
		}
	}
	agent := sim.Agent("frames-agent", "Agent")
	evID, err := agent.SendMessage(chat, "after the garbage")
	if err != nil {
		t.Fatal(err)
	}
	delivered := func(ms []relMsg) bool {
		for _, m := range ms {
			if ne, ok := parseNewEvent(m); ok && ne.Event.ID == evID {
				return true
			}
		}
		return false
	}
	rec.waitFor(t, "the message after the garbage", 10*time.Second, delivered)
	for _, m := range rec.messages() {
		if m.Event == "connection_lost" {
			t.Fatal("a malformed frame cost the socket")
		}
	}
	st, _, b := relDo(client, "GET", gw.URL+"/v1/session", token, "")
	if st != 200 || jsonField(b, "status") != "connected" {
		t.Fatalf("session after the garbage: %d %s", st, b)
	}
	for reason, min := range map[string]float64{"malformed": 7, "unknown_id": 2, "dropped": 2} {
		if n := metricSum(t, gw.Reg, "gateway_upstream_frames_ignored_total", "reason", reason); n < min {
			t.Errorf("frames ignored as %s: %.0f, want ≥ %.0f", reason, n, min)
		}
	}
	t.Logf("ignored frames: malformed %.0f, unknown_id %.0f, dropped %.0f; conversion failures %.0f",
		metricSum(t, gw.Reg, "gateway_upstream_frames_ignored_total", "reason", "malformed"),
		metricSum(t, gw.Reg, "gateway_upstream_frames_ignored_total", "reason", "unknown_id"),
		metricSum(t, gw.Reg, "gateway_upstream_frames_ignored_total", "reason", "dropped"),
		metricSum(t, gw.Reg, "gateway_events_dropped_total", "reason", "convert"))

	// Over the read limit: the socket goes, the session and stream stay,
	// and a message sent meanwhile is filled in.
	big := `{"action":"mystery","type":"push","payload":{"x":"` + strings.Repeat("x", 100<<10) + `"}}`
	sim.InjectFrame(id, []byte(big))
	evID2, err := agent.SendMessage(chat, "after the oversized frame")
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "connection_restored", 10*time.Second, hasEvent("connection_restored"))
	rec.waitFor(t, "the message after the big frame", 10*time.Second, func(ms []relMsg) bool {
		n := 0
		for _, m := range ms {
			if ne, ok := parseNewEvent(m); ok && ne.Event.ID == evID2 {
				n++
			}
		}
		return n == 1
	})
	time.Sleep(200 * time.Millisecond) // a window for a duplicate to show: absence is the thing under test
	seen := map[string]int{}
	for _, m := range rec.messages() {
		if ne, ok := parseNewEvent(m); ok {
			seen[ne.Event.ID]++
			if seen[ne.Event.ID] > 1 {
				t.Errorf("%s delivered twice", ne.Event.ID)
			}
		}
	}
}

// TestReloginRefused: when the token stops being accepted while the socket
// is down, the re-login's "authentication" error ends the session: every
// stream gets "disconnected" {"reason":"authentication"} and ends (no
// retry hint, no retry loop upstream), and the next call answers 401.
func TestReloginRefused(t *testing.T) {
	t.Parallel()
	var revoked sync.Map
	sim, url := chatiotest.Start(t, chatiosim.Config{Tokens: func(token string) (string, error) {
		if _, ok := revoked.Load(token); ok {
			return "", chatiosim.ErrTokenExpired
		}
		return chatiosim.AnyToken(token)
	}})
	gw := startGatewayWith(t, url, 1, gatewayOptions{})
	client := relClient(t)
	const token = "soon-revoked"
	relStartChat(t, client, gw.URL, token)
	recs := []*relRecorder{relRecord(t, client, gw.URL, token, false), relRecord(t, client, gw.URL, token, false)}
	for _, r := range recs {
		r.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
	}
	revoked.Store(token, true)
	sim.DropCustomer(chatiosim.CustomerIDForToken(token))
	for _, r := range recs {
		r.waitFor(t, "disconnected", 10*time.Second, hasEvent("disconnected"))
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("stream still open after disconnected")
		}
		ms := r.messages()
		last := ms[len(ms)-1]
		if last.Event != "disconnected" || !sameJSON(json.RawMessage(last.Data), json.RawMessage(`{"reason":"authentication"}`)) {
			t.Fatalf("last event %s %s", last.Event, last.Data)
		}
	}
	authFailures := func() float64 {
		return metricSum(t, gw.Reg, "gateway_upstream_dial_failures_total", "reason", "authentication")
	}
	// Absence is the thing under test: a retry loop (ReconnectMin 20ms)
	// would have dialled several times in this window.
	time.Sleep(300 * time.Millisecond)
	if n := authFailures(); n != 1 {
		t.Fatalf("%.0f refused logins, want 1 (no retrying a refused token)", n)
	}
	st, _, b := relDo(client, "GET", gw.URL+"/v1/session", token, "")
	if st != 401 || jsonField(b, "code") != httpapi.CodeAuthentication {
		t.Fatalf("next call: %d %s", st, b)
	}
	if n := gw.Pool.Len(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

// TestMassReconnectAgainstRefusingUpstream: 24 sessions lose their sockets
// at once while the upstream refuses connections for 1.5 s. The pool never
// has more than MaxConcurrentDials dials in progress, each session backs
// off (jittered, capped) instead of hammering, the first retries are
// spread out, and every session is back — streams intact — once the
// upstream accepts again.
func TestMassReconnectAgainstRefusingUpstream(t *testing.T) {
	t.Parallel()
	const (
		sessions = 24
		maxDials = 4
		refuse   = 1500 * time.Millisecond
	)
	var inFlight, peak, attempts atomic.Int64
	var mu sync.Mutex
	var starts []time.Time
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		session: func(c *session.Config) {
			c.MaxConcurrentDials = maxDials
			c.ReconnectMin = 50 * time.Millisecond
			c.ReconnectMax = 400 * time.Millisecond
			c.Dial = func(ctx context.Context, cfg chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				attempts.Add(1)
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
				return chatio.Dial(ctx, cfg)
			}
		},
	})
	client := relClient(t)
	var recs []*relRecorder
	for i := range sessions {
		tok := "mass-" + string(rune('a'+i))
		relStartChat(t, client, gw.URL, tok)
		r := relRecord(t, client, gw.URL, tok, false)
		r.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
		recs = append(recs, r)
	}
	attempts.Store(0)
	peak.Store(0)
	mu.Lock()
	starts = nil
	mu.Unlock()

	sim.RefuseConnections(refuse)
	dropAt := time.Now()
	sim.DropAll()
	for _, r := range recs {
		r.waitFor(t, "connection_restored", 15*time.Second, hasEvent("connection_restored"))
	}
	back := time.Since(dropAt)
	mu.Lock()
	first := append([]time.Time(nil), starts...)
	mu.Unlock()

	if p := peak.Load(); p > maxDials {
		t.Errorf("%d dials at once, limit %d", p, maxDials)
	}
	// Without backoff each session would dial every few ms for 1.5 s.
	perSession := float64(attempts.Load()) / sessions
	if perSession > 16 { // ~10 expected (full jitter, 50ms doubling to 400ms)
		t.Errorf("%.1f dials per session during a %v refusal: no backoff", perSession, refuse)
	}
	// Jitter: the first retries after the drop do not all start together.
	var spread time.Duration
	if len(first) >= sessions {
		lo, hi := first[0], first[0]
		for _, s := range first[:sessions] {
			if s.Before(lo) {
				lo = s
			}
			if s.After(hi) {
				hi = s
			}
		}
		spread = hi.Sub(lo)
	}
	if spread < 10*time.Millisecond {
		t.Errorf("first %d redials within %v: no jitter", sessions, spread)
	}
	if back > refuse+5*time.Second {
		t.Errorf("back after %v", back)
	}
	for i, r := range recs {
		r.mu.Lock()
		ended := len(r.ends)
		r.mu.Unlock()
		if ended != 0 {
			t.Errorf("stream %d ended", i)
		}
	}
	t.Logf("mass reconnect: %d sessions, refusal %v; %d dials (%.1f per session), at most %d at once (limit %d); first redials spread over %v; all back after %v",
		sessions, refuse, attempts.Load(), perSession, peak.Load(), maxDials, spread.Round(time.Millisecond), back.Round(time.Millisecond))
}

// TestStalledUpstream: a socket that stays open but answers nothing (no
// responses, no pongs). A call on it fails with TIMEOUT; that call's
// timeout makes the client ping at once, and the missing pong replaces
// the socket within PongTimeout — long before the next keepalive ping
// would have noticed. While the stall lasts the session keeps retrying;
// when it ends, the session is back and a message sent during the stall is
// delivered once.
func TestStalledUpstream(t *testing.T) {
	t.Parallel()
	const (
		requestTimeout = 400 * time.Millisecond
		pongTimeout    = 300 * time.Millisecond
	)
	sim, url := chatiotest.Start(t, chatiosim.Config{RequestTimeout: 3 * time.Second})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		session: func(c *session.Config) {
			c.Upstream.PingInterval = time.Minute // only the call's timeout can reveal the stall
			c.Upstream.PongTimeout = pongTimeout
			c.Upstream.RequestTimeout = requestTimeout
			c.ReconnectWait = 200 * time.Millisecond
		},
	})
	client := relClient(t)
	const token = "stalled"
	id := chatiosim.CustomerIDForToken(token)
	chat := relStartChat(t, client, gw.URL, token)
	rec := relRecord(t, client, gw.URL, token, false)
	rec.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))

	sim.StallCustomer(id, true)
	start := time.Now()
	st, _, b := relDo(client, "GET", gw.URL+"/v1/chats", token, "")
	took := time.Since(start)
	if st != 504 || jsonField(b, "code") != httpapi.CodeTimeout {
		t.Fatalf("call on a stalled socket: %d %s", st, b)
	}
	rec.waitFor(t, "connection_lost", 5*time.Second, hasEvent("connection_lost"))
	detected := time.Since(start)
	requestsAtLoss := sim.Stats().Requests
	if detected > requestTimeout+pongTimeout+2*time.Second {
		t.Errorf("stall confirmed after %v", detected)
	}
	evID, err := sim.Agent("stall-agent", "Agent").SendMessage(chat, "during the stall")
	if err != nil {
		t.Fatal(err)
	}
	// While the stall lasts the session redials: the login is answered,
	// the summary that follows it is not.
	eventuallyE2E(t, "a redial's login and summary upstream", func() bool {
		return sim.CustomerSockets(id) > 0 && sim.Stats().Requests >= requestsAtLoss+2
	})
	sim.StallCustomer(id, false)
	rec.waitFor(t, "connection_restored", 10*time.Second, hasEvent("connection_restored"))
	rec.waitFor(t, "the message sent during the stall", 5*time.Second, func(ms []relMsg) bool {
		for _, m := range ms {
			if ne, ok := parseNewEvent(m); ok && ne.Event.ID == evID {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond) // a window for a duplicate to show: absence is the thing under test
	n := 0
	for _, m := range rec.messages() {
		if ne, ok := parseNewEvent(m); ok && ne.Event.ID == evID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("message sent during the stall delivered %d times", n)
	}
	st, _, b = relDo(client, "GET", gw.URL+"/v1/chats", token, "")
	if st != 200 {
		t.Fatalf("after the stall: %d %s", st, b)
	}
	t.Logf("stall: call answered TIMEOUT after %v; socket replaced %v after the call began (ping interval 1m)",
		took.Round(time.Millisecond), detected.Round(time.Millisecond))
}
