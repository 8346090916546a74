package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatio-gateway/chatio-gateway/web"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/api"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// fileBodyOverhead is what a multipart body may carry beside the file: the
// boundaries, part headers and the customId field.
const fileBodyOverhead = 64 << 10

// Server is the gateway's HTTP surface. Build it with New; serve Handler.
type Server struct {
	cfg        Config        // immutable, defaults filled in
	pool       *session.Pool // immutable
	log        *zap.Logger   // immutable
	m          *metrics      // immutable; collectors are goroutine-safe
	gatherer   prometheus.Gatherer
	router     chi.Router      // immutable: the routes with their middleware
	engine     *engine.Engine  // immutable; nil: no engine (tickets single-use in this process)
	tickets    *ticketSealer   // immutable
	once       onceStore       // the engine, or a localOnce
	limiter    *rateLimiter    // guarded by its own mutex
	origins    map[string]bool // immutable: allowed CORS origins
	anyOrigin  bool            // immutable: "*" was allowed
	retryAfter string          // immutable: Retry-After value in seconds
	retryField string          // immutable: the stream's "retry: N\n" line

	streams atomic.Int64 // open event streams

	drainOnce sync.Once
	drain     chan struct{} // closed by SetDraining

	uploads     context.Context         // ended by StopUploads (files.go)
	stopUploads context.CancelCauseFunc // immutable
}

// New builds the server. A nil log logs nothing; a nil reg registers no
// metrics. cfg is taken with its defaults filled in; New panics when
// cfg.Validate fails (a programming error: validate configuration first).
func New(cfg Config, pool *session.Pool, log *zap.Logger, reg prometheus.Registerer) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg:     cfg,
		pool:    pool,
		log:     log,
		m:       newMetrics(reg),
		engine:  cfg.Engine,
		tickets: newTicketSealer(cfg.TicketKey),
		limiter: newRateLimiter(cfg.RateLimit, cfg.RateBurst, maxRateBuckets),
		drain:   make(chan struct{}),
	}
	s.once = &localOnce{ttl: cfg.TicketTTL, now: time.Now, seen: make(map[string]bool)}
	if cfg.Engine != nil {
		s.once = cfg.Engine
	}
	s.uploads, s.stopUploads = context.WithCancelCause(context.Background())
	cors := newCORSPolicy(cfg.AllowedOrigins)
	s.origins, s.anyOrigin = cors.origins, cors.anyOrigin
	s.gatherer = cfg.Gatherer
	if s.gatherer == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			s.gatherer = g
		} else {
			s.gatherer = prometheus.DefaultGatherer
		}
	}
	s.retryAfter = strconv.Itoa(int(math.Ceil(cfg.RetryHint.Seconds())))
	s.retryField = "retry: " + strconv.FormatInt(cfg.RetryHint.Milliseconds(), 10) + "\n"
	if pool != nil && pool.Clustered() {
		// The owner of a customer's session counts the calls other
		// replicas forward to it in the customer's bucket here too: the
		// limit holds cluster-wide for the calls (session/limit.go).
		pool.SetCallLimit(s.limiter.allow)
	}
	s.router = s.routes()
	return s
}

// Handler is the server as an http.Handler (ServeHTTP): every route and
// middleware, and where the event streams wait.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP serves the router with every route and middleware. An event
// stream's request goes through it too, then waits for its events here,
// once the router has returned (park.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == eventsPath && r.Method == http.MethodGet {
		if p := s.routeStream(w, r); p != nil {
			p.serve()
		}
		return
	}
	s.router.ServeHTTP(w, r)
}

// SetDraining turns readiness off and ends every open event stream with a
// retry hint; new streams are refused (503 OVERLOADED). REST calls go on.
// Idempotent.
func (s *Server) SetDraining() {
	s.drainOnce.Do(func() { close(s.drain) })
}

// Ready reports whether the server takes new work (false once draining).
// Readiness (/readyz) also asks for the engine (EngineReady).
func (s *Server) Ready() bool {
	select {
	case <-s.drain:
		return false
	default:
		return true
	}
}

// OpenStreams is the number of event streams open now.
func (s *Server) OpenStreams() int { return int(s.streams.Load()) }

// routes builds the router. Every route here is in api/openapi.yaml and the
// reverse (TestRoutesMatchSpec).
//
// A middleware with work to do after the handler returns must check
// parked: an event stream's handler returns before the stream ends
// (park.go), and the work is for the stream's end (see observe).
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(requestIDs, s.observe, s.recoverer, s.cors)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", s.healthz)
	r.Head("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Head("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	r.Get("/openapi.yaml", s.openapi)

	// The demo widget and the API reference (package web).
	widget, docs := web.Handler(), web.DocsHandler()
	for _, p := range []string{"/", "/index.html", "/app.js", "/customer-sdk.js", "/style.css"} {
		r.Method(http.MethodGet, p, widget)
	}
	r.Method(http.MethodGet, "/docs", docs)
	r.Method(http.MethodGet, "/docs/{asset}", docs)

	// The stream (park.go): no body, no deadline. Not under the /v1
	// sub-router, whose wildcard match would be one more path value for
	// each open stream to hold.
	r.Get(eventsPath, s.events)

	r.Route("/v1", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(bounded(s.cfg.RequestTimeout, s.cfg.BodyTimeout), s.limitBody(s.cfg.MaxBodyBytes))
			r.Post("/tickets", s.rest(s.postTicket))
			r.Get("/session", s.rest(s.getSession))
			r.Delete("/session", s.rest(s.deleteSession))
			r.Patch("/customer", s.rest(s.updateCustomer))

			r.Post("/chats", s.rest(s.startChat))
			r.Get("/chats", s.rest(s.getChatsSummary))
			r.Get("/chats/{chat}/threads", s.rest(s.getChatThreads))
			r.Get("/chats/{chat}/threads-summary", s.rest(s.getChatThreadsSummary))
			r.Get("/chats/{chat}/history", s.rest(s.getChatHistory))
			r.Post("/chats/{chat}/events", s.rest(s.sendEvent))
			r.Post("/chats/{chat}/messages", s.rest(s.sendMessage))
			r.Post("/chats/{chat}/rating", s.rest(s.sendRating))
			r.Put("/chats/{chat}/sneak-peek", s.rest(s.setSneakPeek))
			r.Post("/chats/{chat}/close-thread", s.rest(s.closeThread))
			r.Patch("/chats/{chat}/properties", s.rest(s.updateChatProperties))
			r.Patch("/chats/{chat}/threads/{thread}/properties", s.rest(s.updateChatThreadProperties))
			r.Post("/chats/{chat}/last-seen", s.rest(s.updateLastSeenTimestamp))
		})

		// The file upload has its own body limit and deadlines.
		r.Group(func(r chi.Router) {
			r.Use(bounded(s.cfg.UploadTimeout, s.cfg.UploadBodyTimeout))
			r.Post("/chats/{chat}/files", s.sendFile)
		})
	})
	return r
}

// notFound answers a path no route has: 404 REQUEST_FAILED not_found.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Code: CodeRequestFailed, Type: "not_found", Message: "no such route"})
}

// allowMethods are the methods an Allow header may list, in its order.
var allowMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodNotAllowed answers a method no route of the path has (or one the
// router does not know): 405 REQUEST_FAILED method_not_allowed, with the
// path's methods in Allow; 404 when no route has the path.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var allow []string
	for _, m := range allowMethods {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 { // a method chi does not know, on a path no route has
		s.notFound(w, r)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: CodeRequestFailed, Type: "method_not_allowed",
		Message: "method not allowed on this route"})
}

// healthz and readyz answer GET and HEAD (net/http drops a HEAD's body).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// EngineReady reports whether the engine is connected and this node's
// lease valid (no round trip; true without an engine).
func (s *Server) EngineReady() bool {
	return s.engine == nil || s.engine.Ready()
}

// readyz: 503 draining once SetDraining was called, 503
// engine_unavailable while the engine is not reachable, else 200.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() {
		w.Header().Set("Retry-After", s.retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if !s.EngineReady() {
		w.Header().Set("Retry-After", s.retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "engine_unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(api.OpenAPI)
}
