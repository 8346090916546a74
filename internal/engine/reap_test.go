package engine

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLeaseReaped: another node takes a node whose renewals stopped for
// gone once that node's own deadline has passed, never while it renews,
// and by deleting its lease at the last revision, before the bucket's
// MaxAge would have expired it (an expiry leaves no delete marker); the
// reaped node's next renewal is refused, and it takes a new epoch.
func TestLeaseReaped(t *testing.T) {
	s := runServer(t)
	ttl := 3 * time.Second
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a", LeaseTTL: ttl})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b", LeaseTTL: ttl})
	ctx := ctxT(t, 60*time.Second)
	self := a.Self()

	// While a renews, b never takes it for gone: over two TTLs, that is
	// six renewals.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); <-tick.C {
		if alive, err := b.Alive(ctx, self); err != nil || !alive {
			t.Fatalf("b.Alive(a) while a renews: %v %v", alive, err)
		}
	}

	// a stops renewing: b takes it for gone once a's own clock says so.
	lost := a.LeaseLost()
	a.lease.partitioned.Store(true)
	a.lease.mu.Lock()
	rev := a.lease.rev
	a.lease.mu.Unlock()
	testwait.For(t, 2*ttl, "b takes a for gone", func() bool {
		alive, err := b.Alive(ctx, self)
		return err == nil && !alive
	})
	if a.LeaseValid() {
		t.Fatal("a's lease was taken for gone while a's own deadline had not passed")
	}
	select {
	case <-lost:
	default:
		t.Fatal("a's LeaseLost not closed when b took it for gone")
	}
	h, err := b.nodes.History(ctx, "a")
	if err != nil {
		t.Fatalf("a's lease history: %v (expired by MaxAge, not reaped?)", err)
	}
	if last := h[len(h)-1]; last.Operation() != jetstream.KeyValueDelete || last.Revision() <= rev {
		t.Fatalf("a's lease: last entry %v at %d, want a delete after %d", last.Operation(), last.Revision(), rev)
	}

	// a's renewals reach the engine again: a new epoch, alive; the old
	// one stays gone.
	a.lease.partitioned.Store(false)
	testwait.For(t, 3*ttl, "a's new epoch", func() bool { return a.LeaseValid() && a.Self() != self })
	if alive, err := b.Alive(ctx, self); err != nil || alive {
		t.Fatalf("a's old epoch: alive %v %v", alive, err)
	}
	if alive, err := b.Alive(ctx, a.Self()); err != nil || !alive {
		t.Fatalf("a's new epoch: alive %v %v", alive, err)
	}
	// A node never reaps its own lease, whatever its table says.
	if alive, err := a.Alive(ctx, a.Self()); err != nil || !alive {
		t.Fatalf("a.Alive(a): %v %v", alive, err)
	}
}

// TestSightingsBounded: the sightings table keeps the first sighting of a
// revision, ignores older revisions, and holds at most maxSightings nodes,
// dropping stale sightings when full.
func TestSightingsBounded(t *testing.T) {
	var s sightings
	t0 := time.Now()
	if got, ok := s.see("n", "e", 5, t0, time.Minute); !ok || got.at != t0 {
		t.Fatalf("first sighting: %+v %v", got, ok)
	}
	if got, _ := s.see("n", "e", 5, t0.Add(time.Second), time.Minute); got.at != t0 {
		t.Fatalf("a later sighting of the same revision replaced the first: %+v", got)
	}
	if _, ok := s.see("n", "e", 4, t0, time.Minute); ok {
		t.Fatal("an older revision was taken")
	}
	if got, _ := s.see("n", "e", 6, t0.Add(time.Second), time.Minute); got.rev != 6 || got.at != t0.Add(time.Second) {
		t.Fatalf("a newer revision: %+v", got)
	}
	if got, ok := s.see("n", "e2", 2, t0.Add(2*time.Second), time.Minute); !ok || got.rev != 2 || got.epoch != "e2" {
		t.Fatalf("another epoch at a lower revision (the bucket made again): %+v %v", got, ok)
	}
	s.forget("n", 7)
	if _, ok := s.m["n"]; ok {
		t.Fatal("forget kept the node")
	}
	// Full: a new node is refused while every sighting is recent, and
	// taken once the old ones are stale (dropped, all of them).
	for i := range maxSightings {
		if _, ok := s.see(fmt.Sprint("n", i), "e", 1, t0, time.Minute); !ok {
			t.Fatalf("node %d refused", i)
		}
	}
	if _, ok := s.see("one-more", "e", 1, t0.Add(time.Minute), time.Minute); ok || len(s.m) != maxSightings {
		t.Fatalf("table over its bound, or a recent sighting dropped: %d", len(s.m))
	}
	s.see("n0", "e", 2, t0.Add(90*time.Second), time.Minute) // seen again: recent
	later := t0.Add(2 * time.Minute)
	if got, ok := s.see("one-more", "e", 1, later, time.Minute); !ok || got.at != later || len(s.m) != 2 {
		t.Fatalf("stale sightings kept: %+v %v, %d in the table", got, ok, len(s.m))
	}
	if _, ok := s.m["n0"]; !ok {
		t.Fatal("a recent sighting was dropped")
	}
}

// TestLeaseWatchAfterRestart: the lease watch starts again when the
// engine restarts (same port and store): b's table learns a's renewals
// from the watch again, soon, without any read of a's lease on b's side.
func TestLeaseWatchAfterRestart(t *testing.T) {
	s := runServer(t)
	ttl := 3 * time.Second
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a", LeaseTTL: ttl, ReconnectWait: 50 * time.Millisecond})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b", LeaseTTL: ttl, ReconnectWait: 50 * time.Millisecond})
	seesRenewal := func(after uint64) func() bool {
		return func() bool {
			a.lease.mu.Lock()
			rev := a.lease.rev
			a.lease.mu.Unlock()
			b.seen.mu.Lock()
			defer b.seen.mu.Unlock()
			got := b.seen.m["a"]
			return rev > after && got.rev == rev
		}
	}
	testwait.For(t, 2*ttl, "b's watch sees a's renewal", seesRenewal(0))

	o2 := server.Options{ServerName: "s1", Host: "127.0.0.1", Port: s.Addr().(*net.TCPAddr).Port,
		JetStream: true, StoreDir: s.StoreDir(), NoLog: true, NoSigs: true}
	s.Shutdown()
	s.WaitForShutdown()
	s2, err := server.NewServer(&o2)
	if err != nil {
		t.Fatal(err)
	}
	s2.Start()
	t.Cleanup(func() { s2.Shutdown(); s2.WaitForShutdown() })
	if !s2.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	testwait.For(t, 10*time.Second, "a reconnected and renewing", func() bool { return a.State() == StateConnected && a.LeaseValid() })
	a.lease.mu.Lock()
	before := a.lease.rev
	a.lease.mu.Unlock()
	t0 := time.Now()
	// Within 8 s: the ordered consumer alone restarted after 20 s here
	// (its heartbeats missed); the watch started again on the reconnect
	// sees a renewal within about a second.
	testwait.For(t, 8*time.Second, "b's watch sees a's renewals after the restart", seesRenewal(before))
	t.Logf("b's watch saw a renewal %v after the restart", time.Since(t0).Round(time.Millisecond))
}
