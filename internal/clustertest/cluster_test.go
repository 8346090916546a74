package clustertest

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	customers     = 12
	streamsPer    = 2
	agentEvery    = 200 * time.Millisecond
	customerEvery = 900 * time.Millisecond
	settleWithin  = 15 * time.Second
)

// TestClusterSIGKILLOwner: three replicas on one JetStream; the replica
// owning the most sessions is killed (SIGKILL) while agents and customers
// talk. Every stream (each connection to a random replica, resuming with
// Last-Event-ID) gets every message once, in order; the simulator never
// sees two live sockets for one token.
func TestClusterSIGKILLOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateway processes")
	}
	r := newRun(t)
	r.startCluster(3)
	r.addCustomers("kill", customers, streamsPer)
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)

	time.Sleep(2 * time.Second)
	victim, counts := r.mostOwned()
	t.Logf("owned sessions per replica before the kill: %v; killing %s", counts, victim.name)
	killed := time.Now()
	victim.signal(syscall.SIGKILL)
	victim.wait(t, 5*time.Second)
	time.Sleep(6 * time.Second) // lease (2 s) lapses, the others take over, traffic goes on
	r.endTraffic()
	r.verdict("sigkill", settleWithin)
	worst, who := r.worstLatency(killed.Add(-time.Second))
	t.Logf("sigkill: worst delivery time of an agent message sent from 1 s before the kill on: %v (%s)", worst.Round(time.Millisecond), who)
	if limit := 2*time.Second + 3*time.Second; worst > limit {
		t.Errorf("sigkill: an agent message took %v to reach a stream of %s, beyond lease TTL + 3 s (%v)", worst.Round(time.Millisecond), who, limit)
	}
	r.endSampler()
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}

// TestClusterRollingUpdate: each replica in turn gets SIGTERM, exits
// (its sessions released, its sockets closed) and is started again on the
// same port, while agents and customers talk: every message once, in
// order, on every stream; never two live sockets for one token.
func TestClusterRollingUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateway processes")
	}
	r := newRun(t)
	r.startCluster(3)
	r.addCustomers("roll", customers, streamsPer)
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)

	time.Sleep(1500 * time.Millisecond)
	for _, p := range r.procs {
		_, counts := r.mostOwned()
		t.Logf("owned sessions per replica: %v; SIGTERM to %s", counts, p.name)
		p.signal(syscall.SIGTERM)
		p.wait(t, 10*time.Second)
		p.start(t)
		time.Sleep(1500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	r.endTraffic()
	r.verdict("rolling", settleWithin)
	worst, who := r.worstLatency(time.Time{})
	t.Logf("rolling: worst delivery time of an agent message: %v (%s)", worst.Round(time.Millisecond), who)
	r.endSampler()
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}

// TestClusterSIGSTOPOwner: the owner of the most sessions is stopped
// (SIGSTOP) for three times its lease, then continued (SIGCONT). Two
// sockets for a token are excused only while it is stopped (a frozen
// process cannot close its socket); once awake it must close them itself,
// within a second and a half; nothing it read while fenced reaches a
// stream (no duplicate, every message once, in order).
func TestClusterSIGSTOPOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateway processes")
	}
	sigstopScenario(t, "sigstop", false)
}

// TestClusterSIGSTOPTakeover is TestClusterSIGSTOPOwner that also wants the
// stopped owner's sessions taken over by the other replicas while it is
// stopped: within the lease TTL and 3 s (issue 16's takeover target), the
// two live replicas own every session.
//
// A frozen owner keeps its NATS connection (the server pings a client
// every 2 minutes), so its subscription to the sessions' op subjects stays
// and a forwarded call gets no "no responders": the forwarding replica
// watches the owner's lease while it waits and takes the session over once
// the lease has lapsed (session/cluster.go, forward). The stopped owner's
// socket stays open at the simulator until it wakes and closes it itself
// (fenced): those two sockets are logged, not counted as a failure; its
// process reads and writes nothing meanwhile.
func TestClusterSIGSTOPTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateway processes")
	}
	sigstopScenario(t, "sigstop-takeover", true)
}

func sigstopScenario(t *testing.T, name string, wantTakeover bool) {
	const lease = 2 * time.Second
	r := newRun(t)
	r.startCluster(3)
	r.addCustomers(name, customers, streamsPer)
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)

	time.Sleep(2 * time.Second)
	victim, counts := r.mostOwned()
	owned := counts[slicesIndex(r.procs, victim)]
	t.Logf("owned sessions per replica before the stop: %v; stopping %s", counts, victim.name)
	stopped := time.Now()
	victim.signal(syscall.SIGSTOP)
	time.Sleep(lease + 3*time.Second)
	during, others := []int{}, 0
	for _, p := range r.procs {
		if p == victim {
			during = append(during, -1)
			continue
		}
		n := p.ownedSessions()
		during = append(during, n)
		others += n
	}
	time.Sleep(time.Until(stopped.Add(3 * lease)))
	victim.signal(syscall.SIGCONT)
	woke := time.Now()
	t.Logf("owned sessions per replica %v after the stop (-1: the stopped one); continued after %v",
		during, woke.Sub(stopped).Round(time.Millisecond))
	if wantTakeover && others < customers {
		t.Errorf("%s: lease TTL + 3 s after %s stopped, the live replicas own %d of %d sessions (%v)", name, victim.name, others, customers, during)
	}
	time.Sleep(4 * time.Second)
	_, afterWake := r.mostOwned()
	fenced, sockets := victim.metric("gateway_cluster_fenced_sessions_total"), r.sim.OpenSockets()
	t.Logf("owned sessions per replica 4 s after SIGCONT: %v; %s closed %d sessions itself as fenced; sockets at the simulator: %d",
		afterWake, victim.name, fenced, sockets)
	// Every session it owned was fenced, and counted once, whichever found
	// it first: the lease watcher or a refused append. (Before, only the
	// watcher's counted: owned 5 and 4 or even 0 counted were seen.)
	if fenced != owned {
		t.Errorf("%s: %s owned %d sessions when stopped, counted %d as fenced (gateway_cluster_fenced_sessions_total)", name, victim.name, owned, fenced)
	}
	// The simulator's side: one socket per customer.
	if sockets > customers {
		t.Errorf("%s: %d sockets open at the simulator 4 s after SIGCONT, for %d customers", name, sockets, customers)
	}
	r.endTraffic()
	r.verdict(name, settleWithin)
	r.endSampler()
	excused := [2]time.Time{stopped, woke.Add(1500 * time.Millisecond)}
	all := r.doubleSockets()
	if d := r.doubleSockets(excused); len(d) > 0 {
		t.Errorf("%s: %d samples with two live sockets for one token outside the stop (+1.5 s after SIGCONT), first %s ×%d at %s (stopped %s, continued %s)",
			name, len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"), stopped.Format("15:04:05.000"), woke.Format("15:04:05.000"))
	}
	if len(all) > 0 {
		t.Logf("two sockets for one token sampled %d times in all (the stopped owner's and a new one), the last %v after SIGCONT",
			len(all), all[len(all)-1].at.Sub(woke).Round(time.Millisecond))
	} else {
		t.Logf("two sockets for one token sampled 0 times")
	}
}

// TestEmbeddedKill9Restart: one gateway on its embedded engine (no
// GATEWAY_NATS_URL, GATEWAY_DATA_DIR its own) is killed (SIGKILL) while
// agents and customers talk, and started again on the same data dir and
// port: the streams resume with Last-Event-ID and get every message once,
// in order, those sent while it was down included; never two live sockets
// for one token.
func TestEmbeddedKill9Restart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a gateway process")
	}
	r := newRun(t)
	p := newProc(t, "embedded", "CHATIO_URL="+r.simURL, "GATEWAY_DATA_DIR="+t.TempDir())
	r.procs, r.reps = []*proc{p}, bases{p.base}
	p.start(t)
	r.addCustomers("embedded", customers, streamsPer)
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)

	time.Sleep(2 * time.Second)
	t.Logf("owned sessions before the kill: %d", p.ownedSessions())
	p.signal(syscall.SIGKILL)
	p.wait(t, 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // down: agents go on talking
	p.start(t)
	time.Sleep(4 * time.Second)
	r.endTraffic()
	r.verdict("embedded-kill9", settleWithin)
	r.endSampler()
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	t.Logf("owned sessions after the restart: %d", p.ownedSessions())
}

// TestClusterR3StreamLeaderLoss: three replicas on a three-server NATS
// cluster (streams and buckets R3); the server leading the most of the
// customers' log streams is shut down mid-run while agents and customers
// talk: writes pause and resume, every message once, in order, on every
// stream; never two live sockets for one token.
func TestClusterR3StreamLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns gateway processes")
	}
	r := newRun(t)
	srvs, urls := runNATSCluster(t)
	victim := srvs[0]
	for i := range 3 {
		nurl := urls
		if i == 0 {
			nurl = victim.ClientURL() // gw1 on the server that goes: a reconnect too (it learns the others from it)
		}
		p := newProc(t, fmt.Sprintf("gw%d", i+1),
			"CHATIO_URL="+r.simURL,
			"GATEWAY_NATS_URL="+nurl,
			"GATEWAY_CLUSTER_KEY="+clusterKey,
			"GATEWAY_DATA_DIR="+t.TempDir(),
		)
		r.procs = append(r.procs, p)
		r.reps = append(r.reps, p.base)
	}
	for _, p := range r.procs {
		p.start(t)
	}
	r.addCustomers("r3", customers, streamsPer)

	// The server that goes leads every log stream.
	nc, err := nats.Connect(victim.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	leads := func() int {
		n := 0
		for i := range 4 {
			if victim.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, fmt.Sprintf("CGW_EV_%d", i)) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for leads() < 4 && time.Now().Before(deadline) {
		for i := range 4 {
			name := fmt.Sprintf("CGW_EV_%d", i)
			if !victim.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, name) {
				_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+name, []byte(fmt.Sprintf(`{"placement":{"preferred":%q}}`, victim.Name())), time.Second)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	nc.Close()
	most := leads()
	if most == 0 {
		t.Fatalf("%s leads none of the log streams", victim.Name())
	}
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)
	time.Sleep(2 * time.Second)
	_, counts := r.mostOwned()
	t.Logf("owned sessions per replica: %v; shutting down %s, leader of %d of the 4 log streams", counts, victim.Name(), most)
	down := time.Now()
	victim.Shutdown()
	time.Sleep(6 * time.Second)
	r.endTraffic()
	r.verdict("r3-leader-loss", settleWithin)
	r.endSampler()
	worst, who := r.worstLatency(down.Add(-time.Second))
	t.Logf("r3-leader-loss: worst delivery time of an agent message sent from 1 s before the loss on: %v (%s)", worst.Round(time.Millisecond), who)
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}
