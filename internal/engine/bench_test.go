package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// reportPercentiles adds p50 and p99 (µs) of the samples to b's report.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	us := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}

// BenchmarkAppend: acked appends with the per-customer CAS, embedded
// server, file storage, one customer's chain.
func BenchmarkAppend(b *testing.B) { benchmarkAppend(b, nil) }

// BenchmarkAppendSingleNode: BenchmarkAppend with Config.SingleNode (the
// gateway's embedded engine: no RePublish, one log stream).
func BenchmarkAppendSingleNode(b *testing.B) {
	benchmarkAppend(b, func(c *Config) { c.SingleNode = true })
}

func benchmarkAppend(b *testing.B, mod func(*Config)) {
	b.ReportAllocs()
	e := embedded(b, mod)
	ctx := context.Background()
	sid := sidOf("bench-append")
	data := make([]byte, 256)
	var last uint64
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s, err := e.Append(ctx, sid, last, fmt.Sprint(i), data)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		last = s
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkAppendLive: from Append's call to the event's arrival at a live
// subscriber (republish, core subject), embedded.
func BenchmarkAppendLive(b *testing.B) {
	e := embedded(b, nil)
	ctx := context.Background()
	sid := sidOf("bench-live")
	got := make(chan time.Time, 1)
	sub, err := e.Subscribe(sid, func(Live) { got <- time.Now() })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()
	data := make([]byte, 256)
	var last uint64
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s, err := e.Append(ctx, sid, last, fmt.Sprint(i), data)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(t0))
		last = s
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkRead: a direct batch get of one customer's last 100 events
// among 20 customers' in the same stream.
func BenchmarkRead(b *testing.B) {
	e := embedded(b, func(c *Config) { c.Streams = 1 })
	ctx := context.Background()
	lasts := map[SID]uint64{}
	sid := sidOf("bench-read-0")
	for i := range 2000 {
		s := sidOf(fmt.Sprint("bench-read-", i%20))
		seq, err := e.Append(ctx, s, lasts[s], "", make([]byte, 256))
		if err != nil {
			b.Fatal(err)
		}
		lasts[s] = seq
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		p, err := e.Read(ctx, sid, 0, 0)
		if err != nil || len(p.Events) != 100 {
			b.Fatal(len(p.Events), err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkRequest: request/reply to the session's owner, in process.
func BenchmarkRequest(b *testing.B) {
	e := embedded(b, nil)
	ctx := context.Background()
	sid := sidOf("bench-op")
	if _, err := e.Own(ctx, sid); err != nil {
		b.Fatal(err)
	}
	sub, err := e.Serve(sid, func(r Request) { _ = r.Respond(r.Data) }, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := e.Request(ctx, sid, []byte("x")); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkAppendR3: acked CAS appends on a three-node cluster in process
// (R3 streams, routes over 127.0.0.1).
func BenchmarkAppendR3(b *testing.B) {
	srvs := runCluster(b)
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.ClientURL())
	}
	e := startEngine(b, Config{URL: strings.Join(urls, ","), NodeID: "bench-r3", Streams: 1})
	ctx := context.Background()
	sid := sidOf("bench-r3")
	data := make([]byte, 256)
	var last uint64
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s, err := e.Append(ctx, sid, last, fmt.Sprint(i), data)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		last = s
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkAppendParallel: many customers appending at once (each
// goroutine its own customers' chains), embedded, 4 streams: the
// throughput one embedded engine gives.
func BenchmarkAppendParallel(b *testing.B) {
	e := embedded(b, nil)
	ctx := context.Background()
	var next atomic.Int64
	data := make([]byte, 256)
	b.SetParallelism(16)
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1)
		lasts := map[SID]uint64{}
		i := 0
		for pb.Next() {
			sid := sidOf(fmt.Sprint("par-", g, "-", i%8))
			s, err := e.Append(ctx, sid, lasts[sid], "", data)
			if err != nil {
				b.Error(err)
				return
			}
			lasts[sid] = s
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "appends/s")
}
