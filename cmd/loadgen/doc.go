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
// See bench/RESULTS.md for the full runs.
package main
