package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// engineSetup is what the engine needs beyond the configuration: resolved
// once, before anything starts.
type engineSetup struct {
	cfg    engine.Config
	keys   keys
	dir    string // the embedded engine's store ("" with GATEWAY_NATS_URL)
	newKey bool   // the cluster key was generated now, in dir
}

// keys are the subkeys derived from the cluster key, one per purpose.
type keys struct {
	ticket, cursor []byte
}

// prepareEngine resolves the node id, the data dir and the cluster key,
// and derives the subkeys.
func prepareEngine(c config) (engineSetup, error) {
	var s engineSetup
	node, err := c.nodeID()
	if err != nil {
		return s, err
	}
	if c.NATSURL == "" {
		if s.dir, err = c.dataDir(); err != nil {
			return s, err
		}
	}
	master, generated, err := c.clusterKey(s.dir)
	if err != nil {
		return s, err
	}
	s.newKey = generated
	s.keys = keys{ticket: subkey(master, "ticket"), cursor: subkey(master, "cursor")}
	s.cfg = engine.Config{
		URL:        c.NATSURL,
		DataDir:    s.dir,
		NodeID:     node,
		ClusterKey: subkey(master, "engine"),
		LeaseTTL:   c.LeaseTTL,
		Streams:    c.LogStreams,
		Replicas:   c.StreamReplicas,
		MaxAge:     c.LogMaxAge,
		MaxBytes:   c.LogMaxBytes,
		// The embedded server listens on nothing: no other replica can
		// read the log, so its streams need not republish appends.
		SingleNode: c.NATSURL == "",
	}
	return s, nil
}

// engineMetrics: the engine's connection state and round trip.
type engineMetrics struct {
	connected prometheus.Gauge
	roundTrip prometheus.Histogram
	failures  prometheus.Counter
}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	m := &engineMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_engine_connected",
			Help: "1 while this replica is connected to the cluster engine (NATS JetStream), else 0.",
		}),
		roundTrip: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_engine_round_trip_seconds",
			Help:    "Round trip of the engine health probe (a JetStream account info request), every 5s; failed probes are not in it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_engine_probe_failures_total",
			Help: "Engine health probes that failed (unreachable, timed out).",
		}),
	}
	reg.MustRegister(m.connected, m.roundTrip, m.failures)
	return m
}

// onState is engine.Config.OnState: the gauge follows the connection.
func (m *engineMetrics) onState(s engine.State) {
	if s == engine.StateConnected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// probeInterval is how often the engine's round trip is measured.
const probeInterval = 5 * time.Second

// probeEngine measures the engine's round trip every probeInterval until
// stop is called (which waits for it).
func probeEngine(e *engine.Engine, m *engineMetrics, log *zap.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		failing := false
		for {
			start := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			err := e.Probe(pctx)
			pcancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				m.failures.Inc()
				if !failing {
					log.Warn("engine unreachable", zap.Error(err))
				}
				failing = true
			default:
				m.roundTrip.Observe(time.Since(start).Seconds())
				if failing {
					log.Info("engine reachable again")
				}
				failing = false
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
	})
}

// Backoff of the retried start against GATEWAY_NATS_URL.
const (
	engineRetryMin     = 250 * time.Millisecond
	engineRetryMax     = 5 * time.Second
	engineStartAttempt = 30 * time.Second
)

// startEngine starts the engine. The embedded one is started once (a
// failure is the gateway's); against GATEWAY_NATS_URL, a failed start is
// retried with jittered backoff for up to timeout (the engine may come up
// after the gateway), and ends early when ctx does.
func startEngine(ctx context.Context, cfg engine.Config, timeout time.Duration, log *zap.Logger) (*engine.Engine, error) {
	if cfg.URL == "" {
		sctx, cancel := context.WithTimeout(ctx, engineStartAttempt)
		defer cancel()
		e, err := engine.Start(sctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("embedded engine in %s: %w", cfg.DataDir, err)
		}
		return e, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := engineRetryMin
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, engineStartAttempt)
		e, err := engine.Start(actx, cfg)
		acancel()
		if err == nil {
			return e, nil
		}
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return nil, fmt.Errorf("engine at %s not reachable within %v: %w", cfg.URL, timeout, err)
			}
			return nil, ctx.Err()
		}
		log.Warn("engine not reachable; retrying", zap.Int("attempt", attempt),
			zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, engineRetryMax)
	}
}

// swapHandler serves whichever handler was set last: httpapi.Starting
// while the engine starts, then the API.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
