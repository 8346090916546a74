package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A node whose renewals stopped is taken for gone by the others before the
// bucket's MaxAge expires its lease: the lease is reaped.
//
// A node's lease is valid, by its own monotonic clock, until LeaseTTL
// minus a margin (30 % of it) after it sent its last renewal that was
// stored (leaseState.extend); after that it appends nothing and closes its
// upstream sockets by itself. Another node that saw the lease at revision
// rev at time t (its own monotonic clock) knows that the renewal of rev
// was sent before t. So once rev is still the lease's revision at
// t + reapAfter (LeaseTTL − margin + grace), its node's own deadline for
// it has passed, by grace at least, whichever clock each node has (only
// their rates matter); and a later renewal either is stored already (the
// revision moved: no reap) or is refused from now on, because the lease
// is deleted at revision rev by compare-and-set. The grace is the
// stopped node's time to close its sockets after its deadline.
//
// Waiting for the bucket's MaxAge instead costs the rest of the margin and
// however late the server's expiry timer runs (up to a second and more was
// measured): with the sightings of a watch on the bucket, a killed owner's
// lease is gone 75 % of the TTL after its last renewal at the default 10 s
// lease (7.5 s; the expiry came at 10–11.3 s), and never later.

// maxSightings bounds the sightings table (one entry per node).
const maxSightings = 1024

// reapAfter is how long after a sighting of a lease revision that lease
// may be reaped when it is still at that revision: a grace of a twentieth
// of the TTL (at least 250 ms; 500 ms at the default 10 s) after its
// node's own deadline, for the node to close its sockets (its deadline's
// timer closes LeaseLost's channel, and the pool then closes them all:
// TestClusterNothingLost counts the sockets at a 1 s lease, whose grace
// is 250 ms).
func (l *leaseState) reapAfter(e *Engine) time.Duration {
	return l.ttl(e) - l.margin(e) + max(l.ttl(e)/20, 250*time.Millisecond)
}

// staleAfter is the age of a sighting that a full sightings table drops:
// twice the lease TTL, eight renewals.
func (l *leaseState) staleAfter(e *Engine) time.Duration { return 2 * l.ttl(e) }

// sighting is the first time this engine saw a node's lease at rev.
type sighting struct {
	epoch string
	rev   uint64
	at    time.Time // monotonic
}

// sightings is the table of other nodes' lease revisions, fed by the
// lease watch and by every read of a node lease (nodeAlive).
type sightings struct {
	mu sync.Mutex
	m  map[string]sighting // by node; at most maxSightings
}

// see records that node's lease was at rev (of epoch) at the latest at
// now, and returns the earliest sighting of that revision; ok false when
// the table is full and holds nothing of node. A full table first drops
// the sightings older than stale: a node that renews is seen again every
// quarter of the lease, so those are of leases gone (expired, reaped, or
// of nodes that never came back: node ids change with every pod), and a
// lease still there is only seen again later, which reaps it later,
// never sooner.
func (s *sightings) see(node, epoch string, rev uint64, now time.Time, stale time.Duration) (sighting, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[node]
	switch {
	case had && old.rev == rev && old.epoch == epoch:
		return old, true
	case had && old.rev > rev && old.epoch == epoch:
		// A stale read (the watch is ahead): nothing to learn from it.
		// (Another epoch at a lower revision is taken: a bucket made
		// again after the engine lost its store counts from 1 again; a
		// sighting replaced so only comes later.)
		return sighting{}, false
	case !had && len(s.m) >= maxSightings:
		for n, o := range s.m {
			if now.Sub(o.at) > stale {
				delete(s.m, n)
			}
		}
		if len(s.m) >= maxSightings {
			return sighting{}, false
		}
	}
	if s.m == nil {
		s.m = make(map[string]sighting)
	}
	n := sighting{epoch, rev, now}
	s.m[node] = n
	return n, true
}

// forget drops node's sighting of a revision before rev (its lease was
// deleted or purged at rev).
func (s *sightings) forget(node string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[node]; ok && old.rev < rev {
		delete(s.m, node)
	}
}

// watchLeases feeds the sightings table from a watch on the nodes bucket
// (an ordered consumer), so that a lease's revision is seen when it is
// stored, not when it is first read. It watches again after a pause when
// the watch ends, and at once when the connection is back after a loss
// (the ordered consumer would restart by itself only once its heartbeats
// are missed: 20 s after an engine restart, measured), until ctx ends.
// Start runs it on a goroutine of the Engine's. While it is blind, the
// table only ages: reaps come later, never sooner.
func (e *Engine) watchLeases(ctx context.Context) {
	back := 100 * time.Millisecond
	for ctx.Err() == nil {
		if e.watchOnce(ctx) {
			back = 100 * time.Millisecond // started again on a reconnect
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-e.rewatch:
		case <-time.After(back):
		}
		back = min(back*2, 5*time.Second)
	}
}

// watchOnce runs one watch until it ends (false) or the connection comes
// back after a loss (true); either way the watch is stopped and drained
// when it returns.
func (e *Engine) watchOnce(ctx context.Context) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := e.nodes.WatchAll(wctx)
	if err != nil {
		return false
	}
	// Stopping the watch (wctx) closes its channel once its subscription
	// is gone; it is drained until then, so that nats.go's handler, which
	// sends to it, never blocks. Bounded, in case the close never comes.
	defer func() {
		cancel()
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case _, ok := <-w.Updates():
				if !ok {
					return
				}
			case <-t.C:
				return
			}
		}
	}()
	for {
		select {
		case <-e.rewatch:
			return true
		case upd, ok := <-w.Updates():
			if !ok {
				return false
			}
			if upd == nil || upd.Key() == e.cfg.NodeID {
				continue // the end of the initial values; our own lease
			}
			if upd.Operation() == jetstream.KeyValuePut {
				e.seen.see(upd.Key(), string(upd.Value()), upd.Revision(), time.Now(), e.lease.staleAfter(e))
			} else {
				e.seen.forget(upd.Key(), upd.Revision())
			}
		}
	}
}

// reap deletes rec's node lease at rev when its node's own deadline for
// that revision has passed (see reapAfter): it reports whether the lease
// is gone now. A failed delete leaves it to the next look.
func (e *Engine) reap(ctx context.Context, rec ownerRec, rev uint64) bool {
	if rec.node == e.cfg.NodeID {
		return false // our own lease: leaseState knows better
	}
	s, ok := e.seen.see(rec.node, rec.epoch, rev, time.Now(), e.lease.staleAfter(e))
	if !ok || time.Since(s.at) < e.lease.reapAfter(e) {
		return false
	}
	err := e.nodes.Delete(ctx, rec.node, jetstream.LastRevision(rev))
	if err == nil {
		e.seen.forget(rec.node, rev+1)
		return true
	}
	if isWrongLast(err) || errors.Is(err, jetstream.ErrKeyExists) {
		// Renewed meanwhile, or reaped by another node: read it again.
		ent, gerr := e.nodes.Get(ctx, rec.node)
		return errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) ||
			gerr == nil && string(ent.Value()) != rec.epoch
	}
	return false
}
