package loadgen

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPushSentProbe(t *testing.T) {
	at := time.Unix(0, 1712345678123456789)
	for _, c := range []struct {
		text  string
		probe bool
	}{{agentText(at), false}, {probeText(at), true}} {
		data := []byte(`{"event":{"type":"message","text":"` + c.text + `"}}`)
		got, probe, ok := pushSent(data)
		if !ok || !got.Equal(at) || probe != c.probe {
			t.Errorf("pushSent(%s) = %v, %v, %v; want %v, %v", c.text, got, probe, ok, at, c.probe)
		}
		if got, ok := pushSentAt(data); !ok || !got.Equal(at) {
			t.Errorf("pushSentAt(%s) = %v, %v", c.text, got, ok)
		}
	}
	for _, bad := range []string{`{"text":"lg:p"}`, `{"text":"lg:12pp"}`, `{"text":"lg:12p`, `{"text":"lg:12q"}`} {
		if _, _, ok := pushSent([]byte(bad)); ok {
			t.Errorf("pushSent(%s) found a time", bad)
		}
	}
}

// placement is the same for the same session, within range, and spreads
// owners and streams evenly and independently over the replicas.
func TestPlacement(t *testing.T) {
	const n, k = 3, 9000
	var grid [n][n]int
	for i := range k {
		o, s := placement("lg-gateway-abc-", i, n)
		if o < 0 || o >= n || s < 0 || s >= n {
			t.Fatalf("placement(%d) = %d, %d", i, o, s)
		}
		if o2, s2 := placement("lg-gateway-abc-", i, n); o2 != o || s2 != s {
			t.Fatalf("placement(%d) changed: %d,%d then %d,%d", i, o, s, o2, s2)
		}
		grid[o][s]++
	}
	// Each of the 9 cells expects 1000; allow ±20 %.
	for o := range n {
		for s := range n {
			if c := grid[o][s]; c < 800 || c > 1200 {
				t.Errorf("owner %d, stream %d: %d sessions of %d, want about %d", o, s, c, k, k/(n*n))
			}
		}
	}
	if o, s := placement("x", 5, 1); o != 0 || s != 0 {
		t.Errorf("one replica: %d, %d", o, s)
	}
}

func TestTakeoverCase(t *testing.T) {
	seen := map[string]bool{}
	for i := range 300 {
		o, s := placement("p", i, 3)
		got := takeoverCase("p", i, 3, 1)
		want := ""
		switch {
		case o == 1 && s == 1:
			want = caseOwnerAndStream
		case o == 1:
			want = caseOwnerStreamElsewhere
		case s == 1:
			want = caseStreamOnly
		}
		if got != want {
			t.Fatalf("session %d (owner %d, stream %d): %q, want %q", i, o, s, got, want)
		}
		seen[got] = true
	}
	if len(seen) != 4 {
		t.Errorf("cases seen: %v", seen)
	}
}

func TestParseMetricSums(t *testing.T) {
	m := parseMetricSums(`# HELP gateway_sessions Sessions.
# TYPE gateway_sessions gauge
gateway_sessions 42
gateway_cluster_forwarded_calls_total 7
gateway_events_dropped_total{reason="a"} 2
gateway_events_dropped_total{reason="b b"} 3
gateway_cluster_forward_duration_seconds_bucket{le="0.001"} 5
gateway_cluster_forward_duration_seconds_sum 0.0125
bad line
`)
	for name, want := range map[string]float64{
		mSessions: 42, mForwarded: 7, "gateway_events_dropped_total": 5, mForwardSum: 0.0125,
		"gateway_cluster_forward_duration_seconds_bucket": 5,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

// A call is classed by the replica that answered and the session's owner,
// and as owner-killed once the owner refused a connection.
func TestWhere(t *testing.T) {
	f := newGatewayFleet([]string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}, "w-", ProtoH2, 2)
	defer f.Close()
	owner, _ := placement("w-", 7, 3)
	if got := f.where(7, owner); got != whereOwner {
		t.Errorf("on the owner: %q", got)
	}
	if got := f.where(7, (owner+1)%3); got != whereForwarded {
		t.Errorf("elsewhere: %q", got)
	}
	if f.pick(-1) < 0 {
		t.Fatal("pick")
	}
	// A refused connection marks the replica down: it is no longer
	// picked, and its sessions' calls are classed apart.
	_, err := f.restAt(context.Background(), owner, 7, "GET", "/healthz", "", nil)
	if err == nil {
		t.Skip("something listens on 127.0.0.1:1-3")
	}
	f.noteDown(owner, err)
	if !f.down[owner].Load() {
		t.Fatalf("replica %d not marked down after %v", owner, err)
	}
	if got := f.where(7, (owner+1)%3); got != whereOwnerKilled {
		t.Errorf("owner down: %q", got)
	}
	for range 50 {
		if r := f.pick(-1); r == owner {
			t.Fatalf("picked the replica that is down")
		}
	}
}

func TestSSEParserLastID(t *testing.T) {
	var got []string
	p := sseParser{}
	p.message = func(event, data []byte) { got = append(got, string(event)+"@"+p.lastID) }
	if err := p.feed([]byte("id: 7\nevent: a\ndata: x\n\nevent: b\ndata: y\n\nid:9\nevent: c\ndata: z\n\n")); err != nil {
		t.Fatal(err)
	}
	if want := "a@7 b@7 c@9"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestClusterReportText(t *testing.T) {
	m := &ModeReport{Mode: ModeGateway, Calls: map[string]Latency{
		"sendMessage@owner: POST": {Count: 3, P50: 1}, "sendMessage: POST": {Count: 9},
	}, Cluster: &ClusterReport{Replicas: 3, LeaseTTL: "2s", Engine: "a child process",
		PerReplica: []ReplicaReport{{Name: "lg-gw1", OwnerGuess: 5}, {Name: "lg-gw2", Killed: true}},
		Kill: &KillReport{Replica: "lg-gw2", Probed: 4, Resumed: 4, TargetMs: 5000, WithinTarget: 4,
			ByCase: map[string]Latency{caseStreamOnly: {Count: 1}}}}}
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		m.writeCluster(&b, md)
		for _, want := range []string{"3 replicas", "lg-gw2 (killed)", "sendMessage@owner", "SIGKILL of lg-gw2", caseStreamOnly, "within lease TTL + 3 s"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("md=%v: no %q in\n%s", md, want, b.String())
			}
		}
		if strings.Contains(b.String(), "sendMessage: POST") {
			t.Errorf("md=%v: the unsplit row is in the cluster section", md)
		}
	}
}

// TestClusterSmoke runs three replicas on a nats-server in this process,
// clients in a worker, and SIGKILLs the owner of the most sessions
// mid-run (a 3 s lease: a shorter one lapses on a busy 2-core machine, and
// the fenced sessions answer 503): every session opened where it was meant to, calls ran on the
// owner and forwarded, every probed stream resumed within the lease TTL
// + 3 s, nothing lost or twice, no error.
func TestClusterSmoke(t *testing.T) {
	ctx, bin, log := smokeSetup(t)
	t.Setenv(workerEnv, "1") // for the worker, which inherits it
	cfg := Config{
		Mode: ModeGateway, Proto: ProtoH2, H2Conns: 4, K: 30, Ramp: 300, R: 60, S: 30,
		Duration: 6 * time.Second, Settle: 200 * time.Millisecond, DrainTimeout: 5 * time.Second,
		Replicas: 3, LeaseTTL: 3 * time.Second, KillOwnerAt: 1500 * time.Millisecond,
		GatewayBin: bin, Log: log, GatewayStderr: log, Worker: []string{os.Args[0]},
		// A call that waits for the dead owner fails in 5 s, not 30, and
		// so within the run.
		GatewayEnv: []string{"GATEWAY_REQUEST_TIMEOUT=5s"},
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var md bytes.Buffer
			_ = rep.Markdown(&md)
			t.Logf("report:\n%s", md.String())
		}
	})
	g := rep.mode(ModeGateway)
	if g == nil || g.Cluster == nil || g.Cluster.Kill == nil {
		t.Fatalf("no cluster report: %+v", g)
	}
	if g.Opened != cfg.K {
		t.Errorf("%d/%d sessions open", g.Opened, cfg.K)
	}
	if g.Duplicates != 0 || g.AgentSent == 0 || g.Lost != 0 {
		t.Errorf("%d agent messages sent, %d received (%d lost, %d duplicated)", g.AgentSent, g.AgentReceived, g.Lost, g.Duplicates)
	}
	// Not even a call forwarded to the owner as it is killed fails: its
	// wait ends when the session is taken over (session.Pool.forward).
	for kind, n := range g.Errors {
		t.Errorf("error %s: %d", kind, n)
	}
	c := g.Cluster
	if len(c.PerReplica) != 3 || c.OwnerGuessMismatch != 0 {
		t.Errorf("replicas %+v, owner guess off by %d", c.PerReplica, c.OwnerGuessMismatch)
	}
	k := c.Kill
	notResumed := 0
	for _, n := range k.NotResumed {
		notResumed += n
	}
	if k.Probed == 0 || k.Resumed == 0 || k.Resumed+notResumed != k.Probed || k.WithinTarget != k.Resumed {
		t.Errorf("kill: %+v", k)
	}
	if notResumed > 0 {
		// A resume whose forwarded look-up reached the killed owner just
		// before another replica took the session over waited for
		// fwdTimeout (55 s) before session.Pool.forward watched the
		// owner's incarnation.
		t.Errorf("streams not resumed before the run ended: %v", k.NotResumed)
	}
	if k.AfterKillS <= 0 || k.MachineCPU <= 0 || k.SurvivorsCPU <= 0 {
		t.Errorf("CPU after the kill not measured: %+v", k)
	}
	if k.ByCase[caseStreamOnly].Count+k.ByCase[caseOwnerAndStream].Count > 0 && c.Resumes == 0 {
		t.Errorf("streams on the killed replica, none resumed")
	}
	for _, w := range []string{whereOwner, whereForwarded} {
		found := false
		for name, l := range g.Calls {
			if strings.Contains(name, w+":") && l.Count > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no sendMessage row %s: %v", w, g.Calls)
		}
	}
	if c.ForwardedMetric <= 0 {
		t.Errorf("the replicas counted no forwarded call")
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "Takeover: SIGKILL of") {
		t.Errorf("markdown lacks the takeover:\n%s", md.String())
	}
}

// A process gone between two readings (a replica killed mid-run) is left
// out of the sums, not counted as CPU given back.
func TestProcSetGone(t *testing.T) {
	self := os.Getpid()
	const gone = 1 << 30 // no such pid
	p, err := readProcs([]int{self, gone})
	if err != nil || p.rss <= 0 {
		t.Fatalf("readProcs: %+v, %v", p, err)
	}
	if _, err := readProcs([]int{gone}); err == nil {
		t.Error("readProcs of no live process: no error")
	}
	a := procSet{self: {at: time.Unix(0, 0), cpu: time.Second}, gone: {at: time.Unix(0, 0), cpu: 50 * time.Second}}
	b := procSet{self: {at: time.Unix(10, 0), cpu: 3 * time.Second}}
	if got := shareSet(a, b); got != 0.2 {
		t.Errorf("shareSet = %v, want 0.2 (2 s of CPU in 10 s, the gone process left out)", got)
	}
}
