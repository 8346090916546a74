package session

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatio-gateway/chatio-gateway/internal/promreg"
)

// Reasons used as label values (never an id or a token).
const (
	reasonSlow      = "slow_subscriber"
	reasonEncode    = "encode"
	reasonConvert   = "convert"
	reasonDuplicate = "duplicate"
	reasonClosed    = "session_closed"
)

type metrics struct {
	sessions       prometheus.Gauge
	subscribers    prometheus.Gauge
	connects       prometheus.Counter
	reconnects     prometheus.Counter
	dialFailures   *prometheus.CounterVec
	published      prometheus.Counter
	delivered      prometheus.Counter
	dropped        *prometheus.CounterVec
	subscribersCut *prometheus.CounterVec
	framesIgnored  *prometheus.CounterVec
	replayBytes    prometheus.Gauge
	gapIncomplete  *prometheus.CounterVec

	// Cluster mode (registered only then: newMetrics' cluster).
	owned         prometheus.Gauge
	forwarded     *prometheus.CounterVec // by kind: forwardKinds
	forwardS      prometheus.Histogram
	takeovers     prometheus.Counter
	refused       prometheus.Counter
	fenced        prometheus.Counter
	fencedAppends prometheus.Counter
	appendS       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics { return newPoolMetrics(reg, false) }

// newPoolMetrics is newMetrics, with the cluster mode's counters
// registered when cluster is set.
func newPoolMetrics(reg prometheus.Registerer, cluster bool) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_sessions", Help: "Sessions in the pool (one upstream socket each).",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_subscribers", Help: "Open event-stream subscribers.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_upstream_connects_total", Help: "Successful upstream dials and logins.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_upstream_reconnects_total", Help: "Upstream connections restored after a drop.",
		}),
		dialFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_dial_failures_total", Help: "Failed upstream dials, by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_events_published_total", Help: "Events appended to session logs.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_events_delivered_total", Help: "Events queued to subscribers (replays included).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_events_dropped_total", Help: "Events not published or not delivered, by reason.",
		}, []string{"reason"}),
		subscribersCut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_subscribers_cut_total", Help: "Subscribers cut off by the gateway, by reason.",
		}, []string{"reason"}),
		framesIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_frames_ignored_total",
			Help: "Upstream frames ignored by the client: malformed, unknown_id (an answer to no request in flight), dropped (as the SDK drops them).",
		}, []string{"reason"}),
		replayBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_replay_bytes",
			Help: "Bytes of event data kept by the sessions' replay rings, all together.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_cluster_owned_sessions",
			Help: "Sessions this replica owns in the engine: from engine.Own until the ownership is given back (cluster mode).",
		}),
		gapIncomplete: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_gap_fill_incomplete_total",
			Help: "Chats whose missed events a gap fill after a reconnect could not read back whole, by reason: unreadable, too_many_threads, thread_unknown.",
		}, []string{"reason"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_cluster_forwarded_calls_total",
			Help: "Requests forwarded to the replica owning the session, by kind: call (an SDK call), info (GET /v1/session, and the keep-alive of a customer whose streams are here while its owner is not known yet), snapshot (a stream's first events), keep (one keep-alive of the sessions one owner holds for the streams here) (cluster mode).",
		}, []string{"kind"}),
		forwardS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gateway_cluster_forward_duration_seconds", Help: "Time of a call forwarded to the session's owner, engine round trip and the owner's work (cluster mode).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cluster_takeovers_total", Help: "Sessions this replica took ownership of because nobody served them (cluster mode).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cluster_takeovers_refused_total",
			Help: "Takeovers the engine refused because the session's recorded owner still held its lease: mostly an owner that is gone (killed, cut off) and answers nothing until its lease lapses or is reaped (requests then wait for that once per owner); also the losers of a race to open a session (cluster mode).",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cluster_fenced_sessions_total",
			Help: "Sessions this replica closed because it was fenced: its lease was lost, or the engine refused an append of theirs (cluster mode).",
		}),
		fencedAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cluster_fenced_appends_total",
			Help: "Appends to a customer's log the engine refused because this replica is not its owner any more (cluster mode).",
		}),
		appendS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_cluster_append_duration_seconds",
			Help:    "Time from an owned session's event to the engine's acknowledgement of its append to the customer's log: what the log adds before the event reaches any stream (cluster mode).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}),
	}
	if reg != nil {
		m.register(reg)
		if cluster {
			m.owned = promreg.Register(reg, m.owned)
			m.forwarded = promreg.Register(reg, m.forwarded)
			m.forwardS = promreg.Register(reg, m.forwardS)
			m.takeovers = promreg.Register(reg, m.takeovers)
			m.refused = promreg.Register(reg, m.refused)
			m.fenced = promreg.Register(reg, m.fenced)
			m.fencedAppends = promreg.Register(reg, m.fencedAppends)
			m.appendS = promreg.Register(reg, m.appendS)
		}
	}
	// Every documented series exists from the start, at 0: a counter that
	// appears at its first increment hides that increment from rate() and
	// increase().
	for _, r := range dialFailureReasons {
		m.dialFailures.WithLabelValues(r)
	}
	for _, r := range ignoredFrameReasons {
		m.framesIgnored.WithLabelValues(r)
	}
	for _, r := range droppedReasons {
		m.dropped.WithLabelValues(r)
	}
	m.subscribersCut.WithLabelValues(reasonSlow)
	for _, r := range gapIncompleteReasons {
		m.gapIncomplete.WithLabelValues(r)
	}
	for _, k := range forwardKinds {
		m.forwarded.WithLabelValues(k)
	}
	return m
}

// The kinds of a forwarded request (gateway_cluster_forwarded_calls_total).
const (
	kindCall     = "call"
	kindInfo     = "info"
	kindSnapshot = "snapshot"
	kindKeep     = "keep" // one engine.Keep, for up to engine.MaxKeep sessions
)

// forwardKinds: every kind of forwarded request.
var forwardKinds = []string{kindCall, kindInfo, kindSnapshot, kindKeep}

// kind is the label value of a forwarded request.
func (r fwdRequest) kind() string {
	switch {
	case r.Call != nil:
		return kindCall
	case r.Snapshot:
		return kindSnapshot
	}
	return kindInfo
}

// stopFenced ends s because it is fenced (err: how it was told), and
// counts it in gateway_cluster_fenced_sessions_total when this call is
// what ended it: the lease watcher (fence) and the session's appender
// (a refused append) may both find the same session fenced.
func (p *Pool) stopFenced(s *Session, err error) {
	if s.stop(err, nil, nil) {
		p.m.fenced.Inc()
	}
}

// The label values of the reason labels, each a closed set (README.md,
// "Metrics").
var (
	// dialFailureReasons: every value dialReason returns.
	dialFailureReasons = []string{"authentication", "disconnected", "request", "timeout", "canceled", "network"}
	// ignoredFrameReasons: every reason chatio.Config.OnIgnored is told.
	ignoredFrameReasons = []string{"malformed", "unknown_id", "dropped"}
	// droppedReasons: why an event was not published or not delivered.
	droppedReasons = []string{reasonSlow, reasonDuplicate, reasonClosed, reasonConvert, reasonEncode}
)

// register registers m's collectors with reg, or takes those already
// registered there.
func (m *metrics) register(reg prometheus.Registerer) {
	m.sessions = promreg.Register(reg, m.sessions)
	m.subscribers = promreg.Register(reg, m.subscribers)
	m.connects = promreg.Register(reg, m.connects)
	m.reconnects = promreg.Register(reg, m.reconnects)
	m.dialFailures = promreg.Register(reg, m.dialFailures)
	m.published = promreg.Register(reg, m.published)
	m.delivered = promreg.Register(reg, m.delivered)
	m.dropped = promreg.Register(reg, m.dropped)
	m.subscribersCut = promreg.Register(reg, m.subscribersCut)
	m.framesIgnored = promreg.Register(reg, m.framesIgnored)
	m.replayBytes = promreg.Register(reg, m.replayBytes)
	m.gapIncomplete = promreg.Register(reg, m.gapIncomplete)
}
