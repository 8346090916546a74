// Package clustertest holds the multi-process proof of cluster mode
// (issue 16, "Prove it"): gateway processes, built once per test run with
// go build, on nats-server with JetStream (in the test process, or child
// processes built once per run from the module go.mod requires, when a
// scenario kills the engine: one server, or a cluster of three for R3),
// against a simulator in the test process, all on 127.0.0.1. Customers
// send every request, REST calls and stream reconnections (with
// Last-Event-ID), to a random replica; an agent writes in every chat
// through the simulator. Replicas are killed (SIGKILL), restarted one by
// one (SIGTERM), stopped past their lease (SIGSTOP, SIGCONT); an embedded
// gateway is killed and restarted on its data dir; the NATS server leading
// the log streams is shut down, or killed -9 and restarted; the whole
// engine is killed -9 under traffic and restarted on its store. Each
// scenario counts, per stream, the messages sent, delivered, lost,
// duplicated and out of order, and the most live sockets of one token in
// the simulator's socket table, sampled every 5 ms (go test -v shows the
// counts).
//
// The default run takes about two minutes (scripts/test.sh runs it alone,
// after the other packages). The soak is not in it: rounds of random chaos
// (a replica SIGKILLed or SIGTERMed and restarted, one stopped past its
// lease, a NATS server of three killed -9 and restarted, the whole engine
// killed -9 and restarted) with traffic, every round checked, until the
// duration has passed:
//
//	go test -count=1 -timeout 0 -run TestClusterSoak ./internal/clustertest/ -soak=10m -v
//
// (or CHATIO_SOAK=10m; CHATIO_SOAK_SEED replays a run's rounds).
//
// The package has tests only.
package clustertest
