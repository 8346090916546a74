package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Parking: where an event stream's goroutine waits.
//
// An open stream's goroutine spends its life waiting for the stream's next
// event, and thousands are open at once. Go halves a goroutine's stack at
// GC only while less than a quarter of it (guard included) is in use, so a
// stream waiting deep in the router (the HTTP/2 server, the router, the
// middlewares, the handler) would keep an 8 KiB stack. So the stream waits
// at the top of the goroutine instead. The events handler does what can
// refuse the stream (authentication, limits, ticket, subscription) in the
// router, as any handler, then leaves the stream in the request's park and
// returns; ServeHTTP serves it once the router has returned. The contract:
// parked, an idle stream's stack over h2c is halved to 4 KiB (over
// HTTP/1.1, where net/http's own frames are deeper, to 8 KiB), and
// TestParkedStreamStackHalved fails when it is not. So ServeHTTP,
// park.serve and streamer.serve keep small frames (go build -gcflags=-S
// shows them: the $N-M after TEXT, N+8 is the frame); bench/RESULTS.md
// has the measured depths.
//
// The middlewares' work after the handler must then wait for the stream's
// end, not the handler's return: observe's access log and metrics (with
// the stream's duration, status and bytes), recoverer's recovery of a
// panic. They hand it to the park (parked, atEnd), which runs it when the
// stream ends, innermost first, as deferred calls: a panic of the stream
// reaches recoverer's as it would have in the router.

// eventsPath is the event stream's route: ServeHTTP gives its requests a
// park.
const eventsPath = "/v1/events"

// parkKey is the context key of a stream request's *park.
type parkKey struct{}

// park is where an event stream waits once the router has returned. It is
// also the stream request's context, holding what the router and the
// middlewares would each have added to it: the park itself, chi's routing
// context and the request id (one allocation for the stream's life instead
// of three contexts and a copy of the request).
type park struct {
	context.Context
	rctx *chi.Context
	id   string    // the request id (requestIDs)
	st   *streamer // the stream left to serve; nil when none was parked
	ends []func()  // the middlewares' work for the stream's end, innermost first
}

// Value answers for the values the park holds.
func (p *park) Value(key any) any {
	switch key {
	case parkKey{}:
		return p
	case chi.RouteCtxKey:
		return p.rctx
	case middleware.RequestIDKey:
		return p.id
	}
	return p.Context.Value(key)
}

// routeStream serves a stream request through the router, with a park the
// events handler may leave the stream in. It returns the park when it
// holds a stream.
func (s *Server) routeStream(w http.ResponseWriter, r *http.Request) *park {
	// chi pools the routing context it makes and reuses it once the router
	// has returned; the stream outlives that (the access log reads its route
	// pattern at the end), so it gets a routing context of its own, which
	// chi takes as a parent router's and leaves alone.
	p := &park{Context: r.Context(), rctx: chi.NewRouteContext(), id: newRequestID(r)}
	p.rctx.Routes = s.router
	s.router.ServeHTTP(w, r.WithContext(p))
	if p.st == nil {
		return nil
	}
	return p
}

// serve serves the parked stream, then does the middlewares' work for its
// end. It is the only frame between ServeHTTP and the stream's wait
// (streamer.next): keep it small.
func (p *park) serve() {
	for i := len(p.ends) - 1; i >= 0; i-- {
		defer p.ends[i]()
	}
	p.st.serve()
}

// parkOf is r's park, nil when r has none (not a stream request served by
// ServeHTTP).
func parkOf(r *http.Request) *park {
	p, _ := r.Context().Value(parkKey{}).(*park)
	return p
}

// parked is r's park when r's stream was parked in it: the handler has
// returned, the stream has not ended. Else nil.
func parked(r *http.Request) *park {
	if p := parkOf(r); p != nil && p.st != nil {
		return p
	}
	return nil
}

// atEnd has f called when the parked stream ends, as a deferred call (f may
// recover the stream's panic), after the functions given before it.
func (p *park) atEnd(f func()) { p.ends = append(p.ends, f) }
