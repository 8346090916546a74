package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// TestClusterFencedAppend: an owner whose append the engine refuses
// (another writer appended to the customer's log: the owner is not its
// owner any more) while its lease is valid closes the session itself, and
// counts it: one fenced append, one fenced session (the lease watcher,
// which counted them alone before, never sees it). The owned-sessions
// gauge follows the ownership: 1 on the owner, 0 elsewhere, 0 once given
// back.
func TestClusterFencedAppend(t *testing.T) {
	c := newCluster(t, 2, 3*time.Second)
	chat, _ := c.nodes[0].startChat("fa")
	if o := c.owner("fa"); o != 0 {
		t.Fatalf("owner %d, want 0", o)
	}
	if n := metricValue(t, c.nodes[0], "gateway_cluster_owned_sessions"); n != 1 {
		t.Errorf("owner: %v owned sessions", n)
	}
	if n := metricValue(t, c.nodes[1], "gateway_cluster_owned_sessions"); n != 0 {
		t.Errorf("the other replica: %v owned sessions", n)
	}

	// Another writer appends after the log's last event, as a new owner's
	// marker would.
	sid := engine.CustomerKey(clusterKey, "1", "fa")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		last, err := c.engs[1].LastSeq(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.engs[1].Append(ctx, sid, last, "intruder", session.EncodeLogEvent("intruder", []byte("{}")))
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrFenced) || i > 20 {
			t.Fatal(err) // ErrFenced: the owner appended meanwhile
		}
	}
	// The owner's next event is refused: the session ends, its socket
	// closes. (The next event may be one of startChat's still on its way
	// to the log; then the agent's message below meets no socket. A
	// customer's call instead would open the session again.)
	if _, err := c.sim.Agent("agent-fa", "Agent").SendMessage(chat, "refused"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the owner closes its socket", func() bool { return c.sockets("fa") == 0 })
	if !c.engs[0].LeaseValid() {
		t.Fatal("the owner's lease lapsed: the test proves nothing")
	}
	testwait.For(t, 5*time.Second, "the ownership given back", func() bool {
		return metricValue(t, c.nodes[0], "gateway_cluster_owned_sessions") == 0
	})
	if n := metricValue(t, c.nodes[0], "gateway_cluster_fenced_appends_total"); n != 1 {
		t.Errorf("fenced appends: %v, want 1", n)
	}
	if n := metricValue(t, c.nodes[0], "gateway_cluster_fenced_sessions_total"); n != 1 {
		t.Errorf("fenced sessions: %v, want 1", n)
	}
}

// labelledValue is the value of a replica's counter name in its series
// with label = value.
func labelledValue(t *testing.T, e *env, name, label, value string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// TestClusterForwardedKinds: the requests a replica forwards to the owner
// are counted by kind (every kind a series from the start): an SDK call,
// GET /v1/session (info), a stream's snapshot (keep: TestClusterKeepBatched).
func TestClusterForwardedKinds(t *testing.T) {
	c := newCluster(t, 2, 3*time.Second)
	fwd := func(kind string) float64 {
		return labelledValue(t, c.nodes[1], "gateway_cluster_forwarded_calls_total", "kind", kind)
	}
	for _, k := range []string{"call", "info", "snapshot", "keep"} {
		if n := fwd(k); n != 0 {
			t.Errorf("%s: %v at start", k, n)
		}
	}
	c.nodes[0].startChat("fk")
	if o := c.owner("fk"); o != 0 {
		t.Fatalf("owner %d, want 0", o)
	}
	expect(t, c.nodes[1].do("GET", "/v1/chats", "fk", nil), 200, "")
	if n := fwd("call"); n != 1 {
		t.Errorf("calls forwarded: %v, want 1", n)
	}
	expect(t, c.nodes[1].do("GET", "/v1/session", "fk", nil), 200, "")
	if n := fwd("info"); n < 1 {
		t.Errorf("info requests forwarded: %v", n)
	}
	st := c.nodes[1].openStream("/v1/events", "fk")
	st.waitEvent("connected")
	if n := fwd("snapshot"); n != 1 {
		t.Errorf("snapshots forwarded: %v, want 1", n)
	}
	if n := fwd("call"); n != 1 {
		t.Errorf("calls forwarded: %v, want 1 (a stream forwards no call)", n)
	}
}

// TestClusterKeepBatched: a replica with streams of customers another
// replica owns keeps those sessions alive with one keep request per round
// for all of them once it has learnt their owner (kind "keep"), not one
// info request per customer; the owner's sessions outlive many idle
// timeouts without a call, and the streams still get every event.
func TestClusterKeepBatched(t *testing.T) {
	idle := 600 * time.Millisecond // keep rounds every 200 ms
	c := newClusterWith(t, 2, 3*time.Second, func(o *envOptions) { o.pool.IdleTimeout = idle })
	fwd := func(kind string) float64 {
		return labelledValue(t, c.nodes[1], "gateway_cluster_forwarded_calls_total", "kind", kind)
	}
	tokens := []string{"kb1", "kb2", "kb3"}
	chats := map[string]string{}
	streams := map[string]*sseStream{}
	for _, tok := range tokens {
		chats[tok], _ = c.nodes[0].startChat(tok)
		if o := c.owner(tok); o != 0 {
			t.Fatalf("%s: owner %d, want 0", tok, o)
		}
		streams[tok] = c.nodes[1].openStream("/v1/events", tok)
		streams[tok].waitEvent("connected")
	}
	testwait.For(t, 10*time.Second, "keep requests from the replica with the streams", func() bool { return fwd("keep") >= 3 })
	info, keep := fwd("info"), fwd("keep")
	start := time.Now()
	testwait.For(t, 20*time.Second, "five idle timeouts of keep rounds", func() bool {
		return time.Since(start) > 5*idle && fwd("keep") >= keep+10
	})
	if n := fwd("info"); n != info {
		t.Errorf("info requests forwarded while the owner was known: %v → %v", info, n)
	}
	// One keep per round (every idle/3) for the three: not one each.
	if n, rounds := fwd("keep")-keep, float64(time.Since(start)/(idle/3)); n > rounds+1 {
		t.Errorf("%v keep requests in %v: more than one per round (≤ %v rounds)", n, time.Since(start), rounds)
	}
	for _, tok := range tokens {
		if o := c.owner(tok); o != 0 {
			t.Errorf("%s: owner %d after %v without a call, want 0 (kept alive)", tok, o, time.Since(start))
		}
	}
	agent := c.sim.Agent("agent-kb", "Agent")
	for _, tok := range tokens {
		if _, err := agent.SendMessage(chats[tok], "kept "+tok); err != nil {
			t.Fatal(err)
		}
		if got, _ := messages(t, streams[tok], 1); got[0] != "kept "+tok {
			t.Errorf("%s: stream got %q", tok, got)
		}
	}
}
