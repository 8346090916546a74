package clustertest

import (
	"cmp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestClusterR3LeaderSIGKILL: three replicas on a three-server NATS
// cluster run as child processes (streams and buckets R3); the server
// leading every log stream and every KV bucket (node leases, owner
// records, one-time ids; and gw1's only seed) is killed (SIGKILL) mid-run
// while agents and customers talk, and started again on its store once
// the others elected new leaders: writes pause while they are elected
// (no lease can be renewed: every replica is fenced and takes its
// sessions back) and resume; every message once, in order, on every
// stream, the slowest within the election + lease TTL + 3 s; no stream
// resynced; never two live sockets for one token.
//
// Found by it: a JetStream API request that reaches a stream whose leader
// was killed gets no answer at all, and the engine waited for one until
// the caller's deadline (a takeover's, 30 s), every call of that customer
// waiting behind it (engine.retryUnavailable now bounds each attempt).
func TestClusterR3LeaderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns nats-server and gateway processes")
	}
	r := newRun(t)
	nodes, urls := r.startNATS(3)
	victim := nodes[0]
	// gw1 on the server that goes: a reconnect too (it learns the others from it)
	r.startGateways(3, urls, func(i int) string {
		if i == 0 {
			return victim.base
		}
		return urls
	})
	r.addCustomers("r3kill", customers, streamsPer)

	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	led := leadAll(t, nc, victim.name)
	if led == 0 {
		t.Fatalf("%s leads none of the log streams", victim.name)
	}
	r.startSampler()
	r.startTraffic(agentEvery, customerEvery)
	time.Sleep(2 * time.Second)
	_, owned := r.mostOwned()
	t.Logf("owned sessions per replica: %v; SIGKILL to %s, leader of %d of the %d streams (R3: %d log streams, the KV buckets' %d); bucket leaders: %s",
		owned, victim.name, led, len(leaderStreams), logStreams, len(leaderStreams)-logStreams, bucketLeaders(nc))
	down := time.Now()
	victim.signal(syscall.SIGKILL)
	victim.wait(t, 5*time.Second)

	// New leaders for every log stream, among the two left.
	var leaders []string
	if !waitFor(20*time.Second, func() bool {
		leaders = leaders[:0]
		for i := range logStreams {
			si, err := logStreamInfo(nc, i)
			if err != nil || si.Cluster.Leader == "" || si.Cluster.Leader == victim.name {
				return false
			}
			leaders = append(leaders, si.Cluster.Leader)
		}
		return true
	}) {
		t.Fatalf("20 s after %s was killed, not every log stream has a new leader", victim.name)
	}
	leadersAfter := time.Since(down)
	t.Logf("r3-leader-sigkill: new leaders %v, %v after the kill", leaders, leadersAfter.Round(100*time.Millisecond))
	time.Sleep(time.Until(down.Add(6 * time.Second)))
	restarted := time.Now()
	victim.start(t) // same ports, same store
	t.Logf("r3-leader-sigkill: %s restarted on its store, healthy (streams current) in %v", victim.name, time.Since(restarted).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second)
	r.endTraffic()
	c := r.verdict("r3-leader-sigkill", settleWithin)
	r.endSampler()
	worst, who := r.worstLatency(down.Add(-time.Second))
	t.Logf("r3-leader-sigkill: worst delivery time of an agent message sent from 1 s before the kill on: %v (%s)", worst.Round(time.Millisecond), who)
	if limit := leadersAfter + 2*time.Second + 3*time.Second; worst > limit {
		t.Errorf("r3-leader-sigkill: an agent message took %v to reach a stream of %s, beyond the election (%v) + lease TTL + 3 s",
			worst.Round(time.Millisecond), who, leadersAfter.Round(100*time.Millisecond))
	}
	if t.Failed() {
		r.lateReport(down.Add(-time.Second), down, 10)
	}
	if c.resyncs > 0 {
		t.Errorf("r3-leader-sigkill: %d stream resumes fell back to a snapshot", c.resyncs)
	}
	if d := r.doubleSockets(); len(d) > 0 {
		t.Errorf("%d samples with two live sockets for one token, first %s ×%d at %s", len(d), d[0].token, d[0].n, d[0].at.Format("15:04:05.000"))
	}
	_, after := r.mostOwned()
	t.Logf("owned sessions per replica after: %v", after)
}

// lateReport logs, for debugging, the n slowest agent-message deliveries
// sent at or after from: sent and arrival relative to ref.
func (r *run) lateReport(from, ref time.Time, n int) {
	type late struct {
		who        string
		stream     int
		sent, took time.Duration
		conn       int
	}
	var ls []late
	r.deliveries(from, func(c *customer, stream int, sent time.Time, m msg) {
		ls = append(ls, late{c.token, stream, sent.Sub(ref), m.At.Sub(sent), m.Conn})
	})
	slices.SortFunc(ls, func(a, b late) int { return cmp.Compare(b.took, a.took) })
	for _, l := range ls[:min(n, len(ls))] {
		r.t.Logf("late: %s stream %d sent at %v took %v (connection %d)", l.who, l.stream, l.sent.Round(time.Millisecond), l.took.Round(time.Millisecond), l.conn)
	}
}
