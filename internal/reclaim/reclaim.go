package reclaim

import (
	"context"
	"runtime/debug"
	"time"
)

// Config configures Run. The zero value of each field means the default
// given beside it.
type Config struct {
	// Count is how many things that hold memory are live now (for the
	// gateway: open event streams plus sessions). Required; called once
	// per Interval, so it must be cheap.
	Count func() int
	// Interval is how often Count is looked at. 0 → 1s.
	Interval time.Duration
	// MinGap is the least time between two reclaims. 0 → 3s.
	MinGap time.Duration
	// MinDrop is the least fall of Count, from its highest value since the
	// last reclaim, worth a reclaim. 0 → 500.
	MinDrop int
	// Reclaim gives the memory back. nil → debug.FreeOSMemory (a full
	// collection, then every free page returned to the operating system).
	Reclaim func()
}

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultMinGap   = 3 * time.Second
	DefaultMinDrop  = 500
)

// Run looks at Count every Interval until ctx ends. It reclaims when Count
// has fallen to at most half of its highest value since the last reclaim
// (or since Run started), by at least MinDrop, and at least MinGap after
// the last reclaim; the highest value then starts again from Count. When
// nothing changes it costs one Count per Interval.
func Run(ctx context.Context, cfg Config) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinGap <= 0 {
		cfg.MinGap = DefaultMinGap
	}
	if cfg.MinDrop <= 0 {
		cfg.MinDrop = DefaultMinDrop
	}
	if cfg.Reclaim == nil {
		cfg.Reclaim = debug.FreeOSMemory
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	w := watch{peak: cfg.Count(), last: time.Now().Add(-cfg.MinGap)}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if w.due(cfg, cfg.Count(), now) {
				cfg.Reclaim()
			}
		}
	}
}

// watch is Run's state.
type watch struct {
	peak int       // the highest count since the last reclaim
	last time.Time // when the last reclaim was (MinGap ago at the start)
}

// due takes the count n seen at now and tells whether to reclaim.
func (w *watch) due(cfg Config, n int, now time.Time) bool {
	w.peak = max(w.peak, n)
	if w.peak-n < cfg.MinDrop || n > w.peak/2 || now.Sub(w.last) < cfg.MinGap {
		return false
	}
	w.peak, w.last = n, now
	return true
}
