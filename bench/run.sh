#!/usr/bin/env bash
# The full load runs of bench/RESULTS.md, one command: builds the gateway and
# the load generator, then runs, each bounded to about 3 minutes,
#
#   1. 10,000 sessions over h2c (8 connections), gateway then direct baseline:
#      2,000 agent msgs/s, 200 customer sendMessage/s for 30 s, then 64
#      back-to-back callers for 10 s;
#   2. the same over HTTP/1.1 at 8,000 sessions (one socket per stream: a
#      process may hold 20,000 files);
#   3. the direct baseline at 10,000 again, its sockets read by a goroutine
#      each (as chatio.Client reads them by default, and as an application
#      embedding the SDK would), instead of the event loops of step 1;
#   4. the floor of any process in between: 8,000 direct clients through a
#      byte relay child process, then direct (-mode relay; 8,000 because
#      the relay holds two sockets per session);
#   5. the Go benchmarks of the hot paths (-benchmem, 6 rounds);
#   6. (cluster, not in the default set) three replicas on one nats-server
#      at 5,000 sessions over h2c, 1,000 agent msgs/s, 100 customer
#      msgs/s for 30 s, then 32 back-to-back callers for 10 s, beside the
#      same workload on one gateway of the build before cluster mode
#      ($PREV_GATEWAY_BIN, when set; see bench/RESULTS.md "Three replicas
#      on one box" for how it was built); then the takeover: the same
#      three replicas for 45 s, the owner of the most sessions SIGKILLed
#      15 s in, up to 70 s for the streams to resume.
#
# Reports go to bench/results/ (Markdown and JSON). Usage:
#
#   bench/run.sh            # all of it (about 12 minutes)
#   bench/run.sh h2 bench   # only some: h2, h1, direct-g, relay, bench, cluster
#
# Needs only Go. Uses 127.0.0.1 only. Run it on an otherwise idle machine:
# the report's "other processes" row shows how much CPU others took.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/gateway" ./cmd/gateway
go build -o "$bin/loadgen" ./cmd/loadgen

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(h2 h1 direct-g relay bench)

load() { # name, extra flags...
	local name=$1
	shift
	echo "== $name"
	timeout 200 "$bin/loadgen" -gateway-bin "$bin/gateway" -ramp 500 -r 2000 -s 200 \
		-duration 30s -callers 64 -callers-duration 10s "$@" -out "$out/$name.md" -json "$out/$name.json"
}

for s in "${steps[@]}"; do
	case $s in
	h2)
		load h2-10k -k 10000 -proto h2 -h2conns 8
		;;
	h1)
		load h1-8k -k 8000 -proto h1
		;;
	direct-g)
		load direct-goroutines-10k -k 10000 -mode direct -direct-read-loops -1
		;;
	relay)
		load relay-8k -k 8000 -mode relay
		;;
	cluster)
		if [ -n "${PREV_GATEWAY_BIN:-}" ]; then
			timeout 200 "$bin/loadgen" -gateway-bin "$PREV_GATEWAY_BIN" -mode gateway -k 5000 -proto h2 -h2conns 8 -ramp 500 \
				-r 1000 -s 100 -duration 30s -callers 32 -callers-duration 10s -out "$out/cluster-prev-1x5k.md" -json "$out/cluster-prev-1x5k.json"
		fi
		timeout 300 "$bin/loadgen" -gateway-bin "$bin/gateway" -mode gateway -replicas 3 -k 5000 -proto h2 -h2conns 8 -ramp 500 \
			-r 1000 -s 100 -duration 30s -callers 32 -callers-duration 10s -out "$out/cluster-3x5k.md" -json "$out/cluster-3x5k.json"
		timeout 400 "$bin/loadgen" -gateway-bin "$bin/gateway" -mode gateway -replicas 3 -k 5000 -proto h2 -h2conns 8 -ramp 500 \
			-r 1000 -s 100 -duration 45s -kill-owner-at 15s -drain-timeout 70s -out "$out/cluster-3x5k-kill.md" -json "$out/cluster-3x5k-kill.json"
		;;
	bench)
		echo "== go benchmarks"
		go test -run '^$' -bench . -benchmem -count 6 \
			./internal/session/ ./internal/httpapi/ ./internal/chatio/ ./internal/jsonobj/ ./internal/sdk/ ./internal/wsconn/ | tee "$out/bench.txt"
		;;
	*)
		echo "unknown step $s (want h2, h1, direct-g, relay, bench, cluster)" >&2
		exit 2
		;;
	esac
done
