package clustertest

import (
	"syscall"
	"testing"
	"time"
)

// TestClusterEngineKill9: three replicas on one nats-server child process;
// the engine is killed (SIGKILL) while agents and customers go on
// talking. While it is down: every replica's /readyz is 503
// engine_unavailable, the customers' calls are answered 503 OVERLOADED
// with Retry-After once the owners' leases lapsed (API.md: the engine
// unavailable), and every stream ends with a retry hint (its reconnections
// refused the same way). The engine is started again on the same store
// and port: the replicas are ready again by themselves, the streams
// resume with Last-Event-ID and get every message once and in order,
// those the agents sent while the engine was down included (gap filling);
// never two live sockets for one token.
func TestClusterEngineKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns nats-server and gateway processes")
	}
	const lease = 2 * time.Second
	r := newRun(t)
	nodes, url := r.startNATS(1)
	eng := nodes[0]
	r.startGateways(3, url, nil)
	r.addCustomers("engdown", customers, streamsPer)
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)
	time.Sleep(2 * time.Second)
	_, owned := r.mostOwned()
	t.Logf("owned sessions per replica: %v; SIGKILL to the engine", owned)
	down := time.Now()
	eng.signal(syscall.SIGKILL)
	eng.wait(t, 5*time.Second)

	// Every replica not ready.
	if !waitFor(lease+3*time.Second, func() bool {
		for _, p := range r.procs {
			if st, s := readyz(p.base); st != 503 || s != "engine_unavailable" {
				return false
			}
		}
		return true
	}) {
		for _, p := range r.procs {
			st, s := readyz(p.base)
			t.Errorf("%s /readyz %d %q, %v after the engine was killed", p.name, st, s, time.Since(down).Round(time.Millisecond))
		}
	}
	t.Logf("engine-kill9: every /readyz 503 engine_unavailable %v after the kill", time.Since(down).Round(100*time.Millisecond))

	// Every stream open at the kill ends with a retry hint: the replicas
	// end their streams at two rounds of keepMirrors (≤ 2 s each) without
	// the engine.
	fenced := down.Add(lease + time.Second) // every owner's lease lapsed
	if !waitFor(8*time.Second, func() bool {
		for _, c := range r.cs {
			for _, rec := range c.recs {
				if !hintedSince(rec, down) {
					return false
				}
			}
		}
		return true
	}) {
		for _, c := range r.cs {
			for si, rec := range c.recs {
				if !hintedSince(rec, down) {
					t.Errorf("engine-kill9: stream %d of %s: no end with a retry hint since the kill: %+v", si, c.token, rec.endsSince(down))
				}
			}
		}
	}
	t.Logf("engine-kill9: every stream ended with a retry hint %v after the kill", time.Since(down).Round(100*time.Millisecond))
	// Calls on every replica, once the leases lapsed.
	time.Sleep(time.Until(fenced))
	for _, p := range r.procs {
		for _, c := range r.cs[:3] {
			st, b, h := doH(r.rest, "GET", p.base+"/v1/chats", c.token, "")
			if st != 503 || h.Get("Retry-After") == "" || jsonField(b, "code") != "OVERLOADED" {
				t.Errorf("engine-kill9: GET /v1/chats on %s with the engine down: %d Retry-After %q %s", p.name, st, h.Get("Retry-After"), b)
			}
		}
	}
	time.Sleep(time.Until(down.Add(8 * time.Second)))

	up := time.Now()
	eng.start(t) // same port, same store
	if !waitFor(15*time.Second, func() bool {
		for _, p := range r.procs {
			if st, _ := readyz(p.base); st != 200 {
				return false
			}
		}
		return true
	}) {
		t.Errorf("engine-kill9: 15 s after the engine was back, not every replica is ready")
	}
	t.Logf("engine-kill9: engine down %v; every replica ready again %v after the engine was",
		up.Sub(down).Round(100*time.Millisecond), time.Since(up).Round(100*time.Millisecond))

	// What the customers got while it was down (after the leases lapsed).
	calls, bad := r.callsIn(fenced, up), 0
	for _, cl := range calls {
		if cl.status != 503 || cl.retryAfter == "" || cl.code != "OVERLOADED" {
			bad++
			if bad <= 5 {
				t.Errorf("engine-kill9: a message POST at %s with the engine down: %d %q Retry-After %q",
					cl.start.Format("15:04:05.000"), cl.status, cl.code, cl.retryAfter)
			}
		}
	}
	var refused, refusedBad int
	for _, c := range r.cs {
		for _, rec := range c.recs {
			for _, f := range rec.refusedIn(fenced, up) {
				refused++
				if f.status != 503 || f.retryAfter == "" || f.code != "OVERLOADED" {
					refusedBad++
					if refusedBad <= 5 {
						t.Errorf("engine-kill9: a stream connection at %s with the engine down: %d %q Retry-After %q",
							f.at.Format("15:04:05.000"), f.status, f.code, f.retryAfter)
					}
				}
			}
		}
	}
	t.Logf("engine-kill9: with the engine down: %d message POSTs (%d not 503 OVERLOADED with Retry-After), %d stream connections refused (%d not so)",
		len(calls), bad, refused, refusedBad)
	if len(calls) == 0 {
		t.Errorf("engine-kill9: no message POST was answered while the engine was down")
	}

	time.Sleep(4 * time.Second)
	r.endTraffic()
	c := r.verdict("engine-kill9", settleWithin)
	r.endSampler()
	worst, who := r.worstLatency(down)
	t.Logf("engine-kill9: worst delivery time of an agent message sent from the kill on: %v (%s)", worst.Round(time.Millisecond), who)
	if limit := up.Sub(down) + lease + 3*time.Second; worst > limit {
		t.Errorf("engine-kill9: an agent message took %v to reach a stream of %s, beyond the outage (%v) + lease TTL + 3 s",
			worst.Round(time.Millisecond), who, up.Sub(down).Round(100*time.Millisecond))
	}
	if c.resyncs > 0 {
		t.Errorf("engine-kill9: %d stream resumes fell back to a snapshot", c.resyncs)
	}
	meanwhile := 0
	for _, cu := range r.cs {
		cu.mu.Lock()
		for _, at := range cu.sentAt {
			if !at.Before(down) && at.Before(up) {
				meanwhile++
			}
		}
		cu.mu.Unlock()
	}
	t.Logf("engine-kill9: %d agent messages were sent while the engine was down (each required once, in order, on every stream)", meanwhile)
	if meanwhile == 0 {
		t.Errorf("engine-kill9: no agent message was sent while the engine was down")
	}
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}

// hintedSince: one of rec's connections ended with a retry hint at or
// after from.
func hintedSince(rec *recorder, from time.Time) bool {
	for _, e := range rec.endsSince(from) {
		if e.hinted {
			return true
		}
	}
	return false
}
