// Package loadgen measures the gateway against customers connected straight
// to chat.io (cmd/loadgen is its command line; bench/RESULTS.md the numbers).
//
// A run takes one mode or two, each against a fresh chat.io simulator
// served on 127.0.0.1 in this process (no bot; one agent, driven through
// the simulator's Agent API):
//
//   - gateway: the gateway runs as a child process (so that its RSS and
//     CPU can be read from /proc) in front of the simulator; each of K
//     customers opens one SSE stream (GET /v1/events) and starts a chat
//     over REST, over HTTP/1.1 (a socket per stream, read by net/http's
//     client) or h2c (every stream and call multiplexed over a few
//     connections; half of them read by h2Reader, which takes each push on
//     the connection's read goroutine, half by net/http's client);
//   - direct: the baseline: each customer is a chatio.Client on its own
//     websocket to the simulator, as an application embedding the SDK,
//     taking pushes on its read loop (OnItem) as the gateway does;
//   - relay: the direct clients with a child process in between that only
//     copies bytes (ServeRelay), run beside the direct baseline: the floor
//     of any process between customers and chat.io, beside which the
//     gateway's own cost can be read.
//
// Each mode's clients run in a worker child process (ServeWorker, driven
// over a pipe) unless told otherwise: so that both read their pushes in a
// process of their own, away from the simulator, and because a process may
// hold only RLIMIT_NOFILE files (the direct clients need a socket each, the
// simulator one more per socket).
//
// Sessions open at a set rate; then, for the measured phase, the agent
// sends R messages/s round-robin over the chats, each text carrying its
// send time ("lg:<unix ns>"), and customers send S messages/s (REST
// sendMessage, every other call through net/http's client and the rest
// through rawClient, or a send_event round trip directly). Push latency is the
// time from the agent's send at the simulator to the event read from the
// customer's stream; every message sent is accounted for (lost and
// duplicated ones are errors). An optional throughput phase has N callers
// send back to back. The report has p50/p90/p99/p99.9/max of every
// latency, errors by kind, the gateway's memory (RSS, and Go heap and
// stacks from its /metrics) and CPU, and how much CPU other processes took
// meanwhile (the machine may be shared), both modes side by side, and
// names the client each figure was measured with (what read the pushes,
// what made the calls).
//
// A cluster run (Config.Replicas > 1; see cluster.go) runs the gateway
// mode against several gateway processes on one nats-server with
// JetStream: each session is opened on a replica that becomes its owner,
// its stream on another chosen at random, every other call on a random
// replica, so that REST latency is reported apart for calls that ran on
// the owner and calls forwarded to it (checked against the replicas'
// gateway_sessions and forwarded-call metrics). A stream its replica cut
// resumes on another with Last-Event-ID, as a browser's EventSource would;
// with KillOwnerAt the owner of the most sessions is SIGKILLed mid-phase
// and each affected stream's takeover time is measured with a probe
// message.
//
// Every phase is bounded in time and count; the run stops by itself and
// uses 127.0.0.1 only.
//
// Concurrency: Run runs one mode at a time and calls a fleet's methods one
// at a time (Open, Load, Drain, Throughput, Result, Close); Open, Load and
// Throughput start a goroutine per session opened or call made and wait
// for all of them before they return. A stream's bytes are handled on the
// goroutine that reads them, which owns the stream's SSE parser: an
// h2Reader's read goroutine (one per connection, ended by its close),
// net/http's client's stream goroutine (started by the gateway fleet,
// waited for by its Close) or the direct client's read loop. A cluster
// run's resumes run on goroutines the gateway fleet starts (counted in its
// readers group, none once Close has begun) and Close waits for; the
// kill and its probes run on the agent's goroutine. Latency recorders,
// receive counters and error counts are safe for concurrent use. The
// child processes (gateways, worker, relay, nats-server) belong to the
// Run that started them, which stops them before it returns; they are
// killed if this process dies.
package loadgen
