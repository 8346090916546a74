// Command loadgen measures the gateway against customers connected straight
// to chat.io. It runs the chat.io simulator in its own process, starts the
// gateway as a child process (built from ./cmd/gateway unless -gateway-bin
// is given), opens K customer sessions through it, each with one event
// stream, has agents push R messages/s and customers send S messages/s over
// REST, then runs the same workload with the customers on websockets
// straight to the simulator, and prints both side by side. Everything
// listens on 127.0.0.1; every phase is bounded and the run stops by itself.
//
//	go run ./cmd/loadgen -k 500 -r 100 -s 20 -duration 10s
//
// With -replicas N (N ≥ 2) the gateway runs as a cluster: N processes on
// one nats-server with JetStream (the binary re-executed as a child), each
// request to a random replica; the report splits REST latency into calls
// that ran on the session's owner and calls forwarded to it, and with
// -kill-owner-at it SIGKILLs the replica owning the most sessions and
// measures how long each affected stream took to resume with every event:
//
//	go run ./cmd/loadgen -mode gateway -replicas 3 -k 5000 -kill-owner-at 20s -duration 40s
//
// See bench/RESULTS.md for the full runs.
package main
