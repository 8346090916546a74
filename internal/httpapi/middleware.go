package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"
)

// writeJSON answers v as JSON (HTML characters not escaped, as
// JSON.stringify does).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":"INTERNAL","message":"internal error"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// ---- request id ----

const requestIDHeader = "X-Request-Id"

// requestIDs takes the client's X-Request-Id when it is short and made of
// safe characters, else makes one, stores it where chi's middleware.GetReqID
// finds it, and echoes it in the answer.
// A stream request's id is in its park already (park.go).
func requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := parkOf(r); p != nil {
			w.Header().Set(requestIDHeader, p.id)
			next.ServeHTTP(w, r)
			return
		}
		id := newRequestID(r)
		w.Header().Set(requestIDHeader, id)
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// newRequestID is r's X-Request-Id when it is safe, else a new random id.
func newRequestID(r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if !safeRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return id
}

func safeRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func requestID(ctx context.Context) string { return middleware.GetReqID(ctx) }

// ---- status recording ----

// statusWriter records the status and size of an answer. Unwrap lets
// http.ResponseController reach the connection (flush, write deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += int64(n)
	return n, err
}

// Flush keeps http.Flusher visible through the wrapper.
func (sw *statusWriter) Flush() {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// ---- access log and metrics ----

// quietRoutes are logged at debug: probes and scrapes.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe writes the access log line and the request metrics. It logs the
// route pattern, never the path or query (ids, tickets) nor a header. A
// parked event stream is logged when it ends (park.go).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := parked(r); p != nil {
				p.atEnd(func() { s.logRequest(r, sw, start) })
				return
			}
			s.logRequest(r, sw, start)
		}()
		next.ServeHTTP(sw, r)
	})
}

// logRequest writes the access log line and the request metrics of r,
// answered through sw, begun at start.
func (s *Server) logRequest(r *http.Request, sw *statusWriter, start time.Time) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing
	}
	route, method := routeLabel(r), methodLabel(r.Method)
	d := time.Since(start)
	s.m.requests.WithLabelValues(route, method, codeLabel(status)).Inc()
	s.m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	lvl := zap.InfoLevel
	if quietRoutes[route] {
		lvl = zap.DebugLevel
	}
	if ce := s.log.Check(lvl, "http request"); ce != nil {
		ce.Write(
			zap.String("method", method),
			zap.String("route", route),
			zap.Int("status", status),
			zap.Duration("duration", d),
			zap.Int64("bytes", sw.bytes),
			zap.String("request_id", requestID(r.Context())),
		)
	}
}

// Every label value of the request metrics comes from a closed set: a
// client chooses the method and the path, and each value it could invent
// would be one more series in every scrape.

// routeLabel is the route pattern of r (one of the router's), or
// "cors_preflight" for a preflight the CORS middleware answered, or
// "unmatched" when no route takes the request (404, 405).
func routeLabel(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		// A path that no route of a sub-router has keeps only the
		// sub-router's mount pattern ("/v1/*"): no route of ours has a
		// wildcard.
		if p := rc.RoutePattern(); p != "" && !strings.Contains(p, "*") {
			return p
		}
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		return "cors_preflight"
	}
	return "unmatched"
}

// methodLabel is method when it is one of the methods of RFC 9110 or PATCH,
// else "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// codeLabel is status in decimal; a status outside 100–599 (net/http
// accepts up to 999) is "other".
func codeLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// ---- panics ----

// recoverer turns a handler's panic into a 500 without internal detail
// (when nothing was written yet) and logs it with its stack. A parked
// event stream's panic is recovered the same way (park.go).
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.panicked(w, r, v)
				return
			}
			if p := parked(r); p != nil {
				p.atEnd(func() {
					if v := recover(); v != nil {
						s.panicked(w, r, v)
					}
				})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// panicked answers and logs the panic v of r's handler.
func (s *Server) panicked(w http.ResponseWriter, r *http.Request, v any) {
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared as net/http does
		panic(v)
	}
	s.log.Error("handler panicked",
		zap.String("request_id", requestID(r.Context())),
		zap.String("route", routeLabel(r)),
		zap.Any("panic", v), zap.Stack("stack"))
	if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
		panic(http.ErrAbortHandler) // the answer has begun: cut the connection
	}
	writeJSON(w, http.StatusInternalServerError, errorBody{Code: CodeInternal, Message: "internal error"})
}

// ---- CORS ----

const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
	corsAllowHeaders  = "Authorization, Content-Type, Last-Event-ID, X-Client-Instance, X-Customer-Id, X-Request-Id"
	corsExposeHeaders = "Retry-After, X-Request-Id"
	corsMaxAge        = "600"
)

// cors is the Server's CORS middleware (corsPolicy.wrap).
func (s *Server) cors(next http.Handler) http.Handler {
	return corsPolicy{origins: s.origins, anyOrigin: s.anyOrigin}.wrap(next)
}

// corsPolicy is the CORS policy of AllowedOrigins: the Server's answers
// and Starting's carry the same headers. Immutable.
type corsPolicy struct {
	origins   map[string]bool // allowed origins, without a trailing slash
	anyOrigin bool            // "*" was allowed
}

// newCORSPolicy is the policy of allowed (Config.AllowedOrigins, valid).
func newCORSPolicy(allowed []string) corsPolicy {
	c := corsPolicy{origins: make(map[string]bool, len(allowed))}
	for _, o := range allowed {
		if o == "*" {
			c.anyOrigin = true
		}
		c.origins[strings.TrimRight(o, "/")] = true
	}
	return c
}

// wrap answers preflights and marks answers to allowed origins. Without
// configured origins it does nothing.
func (c corsPolicy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if len(c.origins) == 0 || origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := c.anyOrigin || c.origins[strings.TrimRight(origin, "/")]
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if allowed {
			if c.anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if !preflight {
			next.ServeHTTP(w, r)
			return
		}
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		if allowed {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// ---- limits ----

// limitBody caps the request body at n bytes: a declared length above it is
// refused at once, a longer body fails its read with *http.MaxBytesError.
func (s *Server) limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				s.writeError(w, r, &http.MaxBytesError{Limit: n})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// bounded bounds a REST call: its context ends at timeout, and its body
// must arrive within bodyTimeout (else 408 TIMEOUT, see classify).
//
// The call's context holds the request's values but not its cancellation.
// net/http cancels a request's context when its connection reads EOF, and
// a client that half-closes once its request is sent (shutdown(SHUT_WR),
// as some clients and proxies do) reads the answer all the same: it must
// get the real one. A call whose client has left runs on until it ends or
// its deadline passes, and its answer is dropped. (Not chi's
// middleware.Timeout: the handler maps the deadline to TIMEOUT itself.
// Not for the event stream, which ends with its client.)
func bounded(timeout, bodyTimeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
			defer cancel()
			c := &callContext{Context: ctx}
			r = r.WithContext(c)
			c.body.bound(w, r, bodyTimeout)
			next.ServeHTTP(w, r)
		})
	}
}

// callKey is the context key of a REST call's *callContext.
type callKey struct{}

// callContext is a REST call's context (bounded): the request's values
// under the call's deadline, and the state of the call's body.
type callContext struct {
	context.Context
	body timedBody
}

// Value answers for the call's context itself.
func (c *callContext) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// What became of a REST call's body (timedBody.state).
const (
	bodyOK       int32 = iota // read to its end, or not (yet) read whole
	bodyTimedOut              // a read failed at the deadline
	bodyBroken                // a read failed otherwise: cut short, connection reset
	bodyStopped               // the gateway stopped reading it (stopReading): not the client's doing
)

// bodyState is bodyTimedOut or bodyBroken when r is a REST call whose body
// did not arrive whole by the client's doing, else bodyOK or bodyStopped.
func bodyState(r *http.Request) int32 {
	c, _ := r.Context().Value(callKey{}).(*callContext)
	if c == nil {
		return bodyOK
	}
	return c.body.state.Load()
}

// stopReading marks r's body as given up by the gateway (a shutdown), before
// the caller unblocks a read of it (a read deadline in the past): the
// failed read that follows is then not the client's timeout.
func stopReading(r *http.Request) {
	if c, _ := r.Context().Value(callKey{}).(*callContext); c != nil {
		c.body.state.CompareAndSwap(bodyOK, bodyStopped)
	}
}

// timedBody is a request body that must arrive by a deadline: the read
// deadline of the connection (HTTP/1.1) or of the stream (HTTP/2). At the
// body's end the deadline is lifted: over HTTP/1.1 the connection's read
// that notices a client leaving must not fail at it while the call goes
// on. It records a failed read, so that the call's answer says what went
// wrong whatever its handler made of the error (classify).
type timedBody struct {
	io.ReadCloser
	rc    http.ResponseController
	ended bool         // a read has failed or hit EOF; only the body's reader uses it
	state atomic.Int32 // bodyOK, bodyTimedOut or bodyBroken
}

// bound sets the read deadline of w's request r, now plus d, and has r's
// body read through b. A request without a body, or a ResponseWriter
// without read deadlines, is left alone.
func (b *timedBody) bound(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	b.rc = *http.NewResponseController(w)
	if b.rc.SetReadDeadline(time.Now().Add(d)) != nil {
		return // not supported (an httptest.ResponseRecorder): no bound
	}
	b.ReadCloser = r.Body
	r.Body = b
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.ended {
		b.ended = true
		switch {
		case err == io.EOF: //nolint:errorlint // io.EOF is returned bare
			_ = b.rc.SetReadDeadline(time.Time{})
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.state.CompareAndSwap(bodyOK, bodyTimedOut) // the request is read no further: the deadline stays
		default:
			b.state.CompareAndSwap(bodyOK, bodyBroken)
		}
	}
	return n, err
}
