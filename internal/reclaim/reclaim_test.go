package reclaim

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// run starts Run in the bubble with a count set by the test; reclaims
// counts the reclaims.
func run(t *testing.T, cfg Config) (count *atomic.Int64, reclaims *atomic.Int64, stop func()) {
	t.Helper()
	count, reclaims = new(atomic.Int64), new(atomic.Int64)
	cfg.Count = func() int { return int(count.Load()) }
	cfg.Reclaim = func() { reclaims.Add(1) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	return count, reclaims, func() { cancel(); <-done }
}

// after lets d of fake time pass and Run act on it.
func after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestReclaimAfterBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		count, reclaims, stop := run(t, Config{})
		defer stop()
		after(10 * time.Second)
		if reclaims.Load() != 0 {
			t.Fatal("reclaimed with nothing live")
		}

		count.Store(2000) // a burst
		after(10 * time.Second)
		count.Store(1200) // falling, not yet by half
		after(3 * time.Second)
		if reclaims.Load() != 0 {
			t.Fatal("reclaimed before the count had halved")
		}
		count.Store(900) // halved: reclaimed within one Interval
		after(DefaultInterval)
		if reclaims.Load() != 1 {
			t.Fatalf("%d reclaims once the count halved, want 1", reclaims.Load())
		}

		count.Store(0) // the rest of the burst ends: not before MinGap
		after(DefaultMinGap - 2*DefaultInterval)
		if reclaims.Load() != 1 {
			t.Fatalf("%d reclaims within MinGap, want 1", reclaims.Load())
		}
		after(2 * DefaultInterval)
		if reclaims.Load() != 2 {
			t.Fatalf("%d reclaims after MinGap, want 2", reclaims.Load())
		}

		after(time.Minute) // quiet: nothing more
		if reclaims.Load() != 2 {
			t.Fatalf("%d reclaims while nothing changed, want 2", reclaims.Load())
		}
	})
}

func TestReclaimSmallDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		count, reclaims, stop := run(t, Config{MinDrop: 100})
		defer stop()
		count.Store(150)
		after(2 * time.Second)
		count.Store(60) // by more than half, not by MinDrop
		after(10 * time.Second)
		count.Store(10000)
		after(2 * time.Second)
		count.Store(6000) // by MinDrop, not by half
		after(10 * time.Second)
		if reclaims.Load() != 0 {
			t.Fatalf("%d reclaims for small drops, want 0", reclaims.Load())
		}
		count.Store(5000)
		after(2 * time.Second)
		if reclaims.Load() != 1 {
			t.Fatalf("%d reclaims once halved by MinDrop, want 1", reclaims.Load())
		}
	})
}

// A drop that starts while Run starts counts from the count Run first saw.
func TestReclaimFromStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		count := new(atomic.Int64)
		count.Store(4000)
		reclaims := new(atomic.Int64)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, Config{Count: func() int { return int(count.Load()) }, Reclaim: func() { reclaims.Add(1) }})
		}()
		synctest.Wait()
		count.Store(1000)
		after(DefaultInterval)
		if reclaims.Load() != 1 {
			t.Fatalf("%d reclaims, want 1", reclaims.Load())
		}
		cancel()
		<-done // Run ends with its context
	})
}
