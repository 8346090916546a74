// Package clustertest holds the multi-process proof of cluster mode
// (issue 16, "Prove it"): gateway processes, built once with go build, on
// one nats-server with JetStream run in the test process, against a
// simulator in the test process, with replicas killed, stopped and
// restarted while agents and customers talk. It has tests only.
package clustertest
