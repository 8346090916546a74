package clustertest

import (
	"syscall"
	"testing"
	"time"
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
	victim.signal(syscall.SIGKILL)
	victim.wait(t, 5*time.Second)
	time.Sleep(6 * time.Second) // lease (2 s) lapses, the others take over, traffic goes on
	r.endTraffic()
	r.verdict("sigkill", settleWithin)
	r.endSampler()
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}
