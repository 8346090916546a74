#!/usr/bin/env bash
# Runs every test of the project: formatting, vet, and the Go tests with the
# race detector (fuzz corpora in testdata are replayed as ordinary tests).
# Installs what the tests need when it is missing, saying what before it
# does. A step that runs long says so every 30 s (TEST_PROGRESS_EVERY), with
# what of it runs at the moment, so that the output never goes quiet for
# minutes; the output of the commands themselves is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- progress: a line every $progress_every seconds while a step runs ----
progress_every=${TEST_PROGRESS_EVERY:-30}

# running_now names what runs at the moment: the Go test binaries (by
# package name) and how many compilers. It reads ps; without it, nothing.
running_now() {
  ps -eo args= 2>/dev/null | awk '
    { n = $1; sub(/.*\//, "", n) }
    n ~ /\.test$/ { sub(/\.test$/, "", n); tests = tests " " n }
    n == "compile" { builds++ }
    END {
      out = ""
      if (tests != "") out = "testing" tests
      if (builds) out = out (out == "" ? "" : "; ") "compiling " builds " packages"
      printf "%s", out
    }'
}

# heartbeat LABEL: every $progress_every seconds, a line saying that LABEL
# still runs, for how long, and what of it. Runs in the background until
# killed, or, should this script end otherwise (a signal), until its next
# tick finds the script gone: then it ends without a word. (No traps: a
# background subshell can run a trap of the script's that it inherited.)
heartbeat() {
  local label=$1 start=$SECONDS now
  while sleep "$progress_every" >/dev/null 2>&1 </dev/null; do
    kill -0 "$$" 2>/dev/null || exit 0
    now=$(running_now)
    echo "   … $label: still running after $((SECONDS - start)) s${now:+ ($now)}"
  done
}

hb_pid=""
stop_heartbeat() {
  if [ -n "$hb_pid" ]; then
    kill "$hb_pid" 2>/dev/null || true
    wait "$hb_pid" 2>/dev/null || true
    hb_pid=""
  fi
}

# progress LABEL COMMAND…: runs COMMAND with a heartbeat; its status is
# COMMAND's.
progress() {
  local label=$1 rc=0
  shift
  heartbeat "$label" &
  hb_pid=$!
  "$@" || rc=$?
  stop_heartbeat
  return "$rc"
}
# ---- end of the progress block ----

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
progress "go vet" go vet ./...

# staticcheck is a tool of the module (go.mod's tool directive): go tool
# builds the pinned version, fetching its module the first time.
echo "== staticcheck (go tool staticcheck, pinned in go.mod)"
progress "staticcheck" go tool staticcheck ./...

# ---- browser test (internal/browsertest): Debian's headless Chromium ----
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium for the browser test: apt-get update, then apt-get install chromium"
    echo "   (Debian's package, about 80 MB, and what it depends on: this can take minutes)"
    install_chromium() {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    }
    if progress "installing chromium" install_chromium; then
      echo "   installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
    else
      echo "chromium install failed: the browser test will skip"
    fi
  else
    echo "no /usr/bin/chromium: the browser test will skip (as root: apt-get install chromium)"
  fi
fi
if [ -x /usr/bin/chromium ]; then
  export CHATIO_REQUIRE_BROWSER=1 # a browser that is there must work
fi
export BROWSER_ARTIFACTS="$PWD/artifacts/browser" # screenshots
# ---- end of the browser block ----

echo "== deploy kit: the Dockerfile's build, a static binary, its healthcheck, linters when installed"
progress "deploy kit" ./scripts/check-deploy.sh

echo "== TypeScript types from api/openapi.yaml: generated as committed, a strict client compiles"
progress "spec types" ./scripts/check-spec-types.sh

echo "== JS client (clients/js): npm ci, build, the widget's copy, a strict sample app, node:test against a real gateway"
progress "JS client" ./scripts/check-js-client.sh

# Each package's result is printed as go test reports it, in package order
# (a long package holds back the lines of those after it: the heartbeat
# names what still runs meanwhile).
# The multi-process cluster proof (internal/clustertest) spawns gateway
# processes and NATS servers: it runs after the other packages, alone, so
# that it does not take the CPU from the tests that compare latencies
# within one run (internal/e2e's stuck subscriber).
echo "== go test -race"
go_test_race() {
  go test -race -count=1 -timeout 15m $(go list ./... | grep -v '/internal/clustertest$') 2>&1 | tee /tmp/chatio-gateway-test.log
}
progress "go test -race" go_test_race

echo "== go test -race: the multi-process cluster proof, alone"
go_test_cluster() {
  go test -race -count=1 -timeout 10m ./internal/clustertest/ 2>&1 | tee -a /tmp/chatio-gateway-test.log
}
progress "cluster proof" go_test_cluster

# The race detector changes how the runtime sizes goroutine stacks: what
# keeps an idle stream's stack small is tested without it.
echo "== go test, no race detector: stack size"
progress "go test (stack size)" go test -count=1 -run 'StackHalved' ./internal/httpapi/
