package session

import (
	"context"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// Waiting out a gone owner's lease, once per owner.
//
// An owner that was killed, or cut off from the engine, keeps its node
// lease until the lease lapses or another replica reaps it (engine,
// reap.go). Meanwhile nothing answers the calls forwarded to its
// sessions (no responders) and no replica may take them over
// (engine.Own: ErrOwned). Everything here that waits for such an owner,
// the keep round's batches of its sessions and the requests for its
// customers, waits on one lapseWatch for that owner's incarnation: one
// engine read every twentieth of a lease (at most 100 ms) for all of
// them, instead of each looking for itself (a request retried forward
// and Own every 200 ms: four engine round trips each, for every waiting
// request, while the engine was busiest).
//
// The table (Pool.lapses, under Pool.mu) holds at most maxLapseWatches
// owners; past that, a waiter looks for itself (pollLapse), as all did
// before. Each watch's goroutine is the pool's (Pool.wg, started under
// Pool.mu while not draining) and ends with the watch: the lease gone,
// the engine connection down, a lease TTL and a keep interval passed, or
// the pool shut down.

// maxLapseWatches bounds the owners watched at once: owners are
// replicas, and more than a few gone at once is a cluster in trouble.
const maxLapseWatches = 64

// lapseWatch is one owner's watch: done is closed when it ends.
type lapseWatch struct{ done chan struct{} }

// lapseOf returns a channel closed once owner's lease is no longer alive
// (or the watch ended otherwise: see above); nil when no watch can be
// started (the pool is draining, or maxLapseWatches run): the caller
// looks for itself.
func (p *Pool) lapseOf(owner string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return nil
	}
	if w := p.lapses[owner]; w != nil {
		return w.done
	}
	if len(p.lapses) >= maxLapseWatches {
		return nil
	}
	w := &lapseWatch{done: make(chan struct{})}
	p.lapses[owner] = w
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pollLapse(owner)
		p.mu.Lock()
		delete(p.lapses, owner)
		p.mu.Unlock()
		close(w.done)
	}()
	return w.done
}

// awaitLapse waits while owner's lease is alive, at most a lease TTL and
// a keep interval (an owner that keeps its lease and answered no Keep is
// asked one by one after that); at once while this replica's engine
// connection is down.
func (p *Pool) awaitLapse(owner string) {
	if done := p.lapseOf(owner); done != nil {
		select {
		case <-done:
		case <-p.ctx.Done():
		}
		return
	}
	p.pollLapse(owner)
}

// pollLapse is awaitLapse's look: the owner's lease every twentieth of a
// lease (at most 100 ms: one engine read each).
func (p *Pool) pollLapse(owner string) {
	eng := p.cfg.Engine
	ctx, cancel := context.WithTimeout(p.ctx, eng.LeaseTTL()+p.keepInterval())
	defer cancel()
	every := min(max(eng.LeaseTTL()/20, 10*time.Millisecond), 100*time.Millisecond)
	for {
		if eng.State() != engine.StateConnected {
			return
		}
		if alive, err := eng.Alive(ctx, owner); err == nil && !alive {
			return
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
