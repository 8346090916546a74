package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/promreg"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// metrics of the HTTP layer. Labels carry routes, methods, codes, actions
// and outcomes: never a token, customer id or chat id.
type metrics struct {
	requests      *prometheus.CounterVec   // route, method, code
	duration      *prometheus.HistogramVec // route, method
	upstream      *prometheus.CounterVec   // action, outcome
	upstreamTime  *prometheus.HistogramVec // action
	streamsOpen   prometheus.Gauge
	streamsOpened prometheus.Counter
	streamEnds    *prometheus.CounterVec // reason
	tickets       *prometheus.CounterVec // outcome
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_http_request_duration_seconds", Help: "Time to answer an HTTP request (a stream: its lifetime), by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"route", "method"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_calls_total", Help: "SDK methods carried out upstream for REST calls, by action and outcome.",
		}, []string{"action", "outcome"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_upstream_call_duration_seconds", Help: "Time of an upstream call made for a REST call, by action.",
			Buckets: prometheus.DefBuckets,
		}, []string{"action"}),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_streams_open", Help: "Event streams (GET /v1/events) open in this process.",
		}),
		streamsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_streams_opened_total", Help: "Event streams opened.",
		}),
		streamEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_streams_closed_total", Help: "Event streams ended (or refused for load: refused_full), by reason.",
		}, []string{"reason"}),
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_stream_tickets_total", Help: "Stream tickets issued and redeemed, by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		m.requests = promreg.Register(reg, m.requests)
		m.duration = promreg.Register(reg, m.duration)
		m.upstream = promreg.Register(reg, m.upstream)
		m.upstreamTime = promreg.Register(reg, m.upstreamTime)
		m.streamsOpen = promreg.Register(reg, m.streamsOpen)
		m.streamsOpened = promreg.Register(reg, m.streamsOpened)
		m.streamEnds = promreg.Register(reg, m.streamEnds)
		m.tickets = promreg.Register(reg, m.tickets)
	}
	// Every documented series exists from the start, at 0: a counter that
	// appears at its first increment hides that increment from rate() and
	// increase(), and an alert on it never fires for a first occurrence.
	for _, a := range upstreamActions {
		if a == op.MethodDisconnect { // carried out locally: it never fails
			m.upstream.WithLabelValues(a, "ok")
			continue
		}
		for _, o := range callOutcomes {
			m.upstream.WithLabelValues(a, o)
		}
	}
	for _, r := range streamEndReasons {
		m.streamEnds.WithLabelValues(r)
	}
	for _, o := range ticketOutcomes {
		m.tickets.WithLabelValues(o)
	}
	return m
}

// The label values of the metrics above, each a closed set (README.md,
// "Metrics"). A value used elsewhere in the package must be listed here.
var (
	// upstreamActions: the action label of the upstream calls, one per SDK
	// method a REST call carries out (call), named as op names it.
	upstreamActions = []string{
		op.MethodStartChat, op.MethodGetChatsSummary, op.MethodGetChatThreads,
		op.MethodGetChatThreadsSummary, op.MethodGetChatHistory, op.MethodSendEvent, op.MethodSendFile,
		op.MethodSendRating, op.MethodCloseThread, op.MethodUpdateChatProperties,
		op.MethodUpdateChatThreadProperties, op.MethodUpdateCustomer,
		op.MethodUpdateLastSeenTimestamp, op.MethodDisconnect,
	}
	// callOutcomes: every value outcome returns.
	callOutcomes = []string{"ok", "authentication", "request_failed", "timeout", "canceled",
		"overloaded", "connection_lost", "too_large", "error"}
	// streamEndReasons: why an event stream ended, or refused_full.
	streamEndReasons = []string{"client_gone", "write_failed", "draining", "engine_unavailable",
		"slow_subscriber", "session_closed", "ended", "refused_full"}
	// ticketOutcomes: what became of a stream ticket.
	ticketOutcomes = []string{"issued", "redeemed", "rejected", "unavailable"}
)

// outcome is the label of an upstream call's result.
func outcome(err error) string {
	var re *chatio.RequestError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, chatio.ErrAuthentication):
		return "authentication"
	case errors.As(err, &re):
		return "request_failed"
	case errors.Is(err, chatio.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, session.ErrOverloaded):
		return "overloaded"
	case errors.Is(err, chatio.ErrConnectionLost), errors.Is(err, chatio.ErrClosed), errors.Is(err, session.ErrSessionClosed):
		return "connection_lost"
	case errors.Is(err, chatio.ErrFileTooLarge):
		return "too_large"
	default:
		return "error"
	}
}

// observeCall records one upstream call.
func (m *metrics) observeCall(action string, start time.Time, err error) {
	m.upstream.WithLabelValues(action, outcome(err)).Inc()
	m.upstreamTime.WithLabelValues(action).Observe(time.Since(start).Seconds())
}
