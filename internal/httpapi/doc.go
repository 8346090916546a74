// Package httpapi is the gateway's HTTP surface: the chi router with every
// route of the HTTP contract (api/openapi.yaml), the REST
// handlers that turn a call into one SDK method on the customer's session,
// the Server-Sent-Events stream of the session's events, stream tickets for
// browsers, CORS, health, readiness, metrics and the embedded OpenAPI
// document.
//
// # Requests
//
// Every /v1 call carries "Authorization: Bearer <token>" (the event stream
// may carry a single-use ticket instead) and takes one token from that
// access token's rate-limit bucket (429 REQUEST_FAILED too_many_requests
// with Retry-After when empty; ratelimit.go). A handler decodes the
// request into the SDK method's arguments (internal/op) and runs their
// Validate, once, before it acquires the token's session (bad input → 400
// INVALID_ARGS, never forwarded and never opening a session); then it calls
// the session's method for it and answers with exactly what the SDK
// method's promise resolves to. The package knows the SDK's shapes and
// the error families, never the upstream's wire (no payload member or
// action name): the metrics name calls as op names them. Every error goes through one function, writeError,
// which maps error families to the contract's codes and statuses; a 500
// carries no internal detail.
//
// # Concurrency
//
// A Server is safe for concurrent use. Its mutable state is the rate
// limiter (guarded by its own mutex), the open-stream counter (atomic) and
// the draining flag (closed channel, set once by SetDraining). Each stream runs
// in its request's goroutine and owns its Subscriber: the events handler
// subscribes in the router, then the stream waits at the top of the
// goroutine, in ServeHTTP once the router has returned (park.go), so that
// its stack can shrink. It reads the subscriber's channel in one select
// with the request context, the server's drain signal and a heartbeat
// timer (reset after each event), and closes the subscriber when it ends.
// A stream write that takes longer than WriteTimeout is cut by a watchdog
// timer (a write deadline in the past), instead of a server WriteTimeout.
//
// Stream tickets are sealed, not stored (tickets.go): any replica redeems
// one, once (engine.Once), and the Server holds nothing per ticket.
//
// X-Client-Instance (instance.go): a client's opaque instance id, on its
// calls (the call's context carries its session.Origin) and on its stream
// (header, or clientInstance for EventSource). The streamer leaves out the
// messages whose Origin is its own: the events that report the instance's
// own calls to the other tabs, which an SDK instance does not emit.
//
// Tokens are never logged, never put in a metric label and never accepted in
// a URL; the access log carries the route pattern, not the query string.
package httpapi
