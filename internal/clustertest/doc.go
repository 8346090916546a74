// Package clustertest holds the multi-process proof of cluster mode
// (issue 16, "Prove it"): gateway processes, built once per test run with
// go build, on nats-server with JetStream run in the test process (one
// server, or a cluster of three for R3), against a simulator in the test
// process, all on 127.0.0.1. Customers send every request, REST calls and
// stream reconnections (with Last-Event-ID), to a random replica; an agent
// writes in every chat through the simulator. Replicas are killed
// (SIGKILL), restarted one by one (SIGTERM), stopped past their lease
// (SIGSTOP, SIGCONT); an embedded gateway is killed and restarted on its
// data dir; the NATS server leading the log streams is shut down. Each
// scenario counts, per stream, the messages lost, duplicated and out of
// order (go test -v shows the counts) and samples the simulator's socket
// table for two live sockets of one token.
//
// The package has tests only.
package clustertest
