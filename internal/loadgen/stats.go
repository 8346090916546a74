package loadgen

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// recorder collects latency samples. Safe for concurrent use; every sample is
// kept (a run is bounded, so this is at most a few hundred thousand int64s),
// so percentiles are exact.
type recorder struct {
	mu sync.Mutex
	v  []int64 // nanoseconds; guarded by mu
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.v = append(r.v, int64(d))
	r.mu.Unlock()
}

// samples returns a copy of the samples.
func (r *recorder) samples() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.v)
}

// Latency summarises a set of samples; durations in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(ns []int64) Latency {
	if len(ns) == 0 {
		return Latency{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	q := func(p float64) float64 {
		// nearest rank
		i := int(p*float64(len(ns))+0.999999) - 1
		i = max(0, min(i, len(ns)-1))
		return ms(ns[i])
	}
	return Latency{
		Count: len(ns),
		Mean:  sum / float64(len(ns)) / 1e6,
		P50:   q(0.50),
		P90:   q(0.90),
		P99:   q(0.99),
		P999:  q(0.999),
		Max:   ms(ns[len(ns)-1]),
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// recorders is a set of recorders by name (a REST route, an upstream action).
type recorders struct {
	mu sync.Mutex
	m  map[string]*recorder // guarded by mu
}

func (rs *recorders) get(name string) *recorder {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = make(map[string]*recorder)
	}
	r := rs.m[name]
	if r == nil {
		r = &recorder{}
		rs.m[name] = r
	}
	return r
}

func (rs *recorders) all() map[string][]int64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make(map[string][]int64, len(rs.m))
	for k, r := range rs.m {
		out[k] = r.samples()
	}
	return out
}

// errorCounts counts errors by kind. Safe for concurrent use.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64 // guarded by mu
}

func (e *errorCounts) add(kind string, n int64) {
	if n == 0 {
		return
	}
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[kind] += n
	e.mu.Unlock()
}

func (e *errorCounts) inc(kind string) { e.add(kind, 1) }

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.m)
}

func totalErrors(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pacer spaces events at a fixed rate from a start time: next returns how
// long to wait before event n (0 when late; late events are not skipped,
// so the achieved rate is reported separately).
type pacer struct {
	start time.Time
	every time.Duration
}

func newPacer(rate float64) pacer {
	return pacer{start: time.Now(), every: time.Duration(float64(time.Second) / rate)}
}

func (p pacer) wait(n int) time.Duration {
	return time.Until(p.start.Add(time.Duration(n) * p.every))
}
