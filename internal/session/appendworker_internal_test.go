package session

import (
	"context"
	"testing"
	"testing/synctest"
)

// readyPool is a pool with the append workers' ready list and n workers
// counted but none started: the test plays them.
func readyPool(ctx context.Context, n int) *Pool {
	return &Pool{ctx: ctx, readyWake: make(chan struct{}, appendWorkers), readyWorkers: n}
}

// TestAppendersWaitForWorkers: a burst of appenders with events waits on
// the ready list, oldest first, for the append workers: no goroutine is
// made for any of them.
func TestAppendersWaitForWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := readyPool(t.Context(), appendWorkers)
		var as []*logAppender
		for range 100 {
			a := &logAppender{s: &Session{pool: p}, started: true, done: make(chan struct{})}
			a.mu.Lock()
			a.queue = append(a.queue, logged{local: 1})
			a.spawnLocked()
			if !a.running {
				t.Fatal("the appender is not marked running")
			}
			a.spawnLocked() // running: not listed twice
			a.mu.Unlock()
			as = append(as, a)
		}
		synctest.Wait()
		for i, want := range as {
			if got := p.nextReady(false); got != want {
				t.Fatalf("ready list entry %d is not the %d-th appender spawned", i, i)
			}
		}
		if p.nextReady(false) != nil {
			t.Fatal("the ready list holds more than the appenders spawned")
		}
		if n := len(p.readyWake); n != appendWorkers {
			t.Errorf("%d wake-ups pending, want one per worker (%d)", n, appendWorkers)
		}
	})
}

// TestAppendWorkerRunsReady: a waiting worker is woken for an appender
// put on the list and runs it; once the pool's context ends, the workers
// run what is left and leave, and an appender made ready after that runs
// on a goroutine of its own.
func TestAppendWorkerRunsReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p := readyPool(ctx, 1)
		p.wg.Add(1)
		go p.appendWorker()
		synctest.Wait()

		newRunning := func() *logAppender {
			// Nothing queued: run finds no work and marks it idle.
			return &logAppender{s: &Session{pool: p}, started: true, running: true, done: make(chan struct{})}
		}
		isRunning := func(a *logAppender) bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.running
		}
		a := newRunning()
		p.ready(a)
		synctest.Wait()
		if isRunning(a) {
			t.Fatal("the waiting worker did not run the appender made ready")
		}

		cancel()
		p.wg.Wait() // the worker left
		if p.readyWorkers != 0 {
			t.Fatalf("%d workers counted after every worker left", p.readyWorkers)
		}
		b := newRunning()
		p.ready(b)
		p.wg.Wait()
		if isRunning(b) {
			t.Fatal("an appender made ready after the workers left did not run")
		}
	})
}
