#!/usr/bin/env bash
# Runs every test of the project: formatting, vet, and the Go tests with the
# race detector (fuzz corpora in testdata are replayed as ordinary tests).
# Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# ---- browser test (internal/browsertest): Debian's headless Chromium ----
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "chromium install failed: the browser test will skip"
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
./scripts/check-deploy.sh

echo "== TypeScript types from api/openapi.yaml: generated as committed, a strict client compiles"
./scripts/check-spec-types.sh

echo "== go test -race"
go test -race -count=1 -timeout 15m ./... 2>&1 | tee /tmp/chatio-gateway-test.log

# The race detector changes how the runtime sizes goroutine stacks: what
# keeps an idle stream's stack small is tested without it.
echo "== go test, no race detector: stack size"
go test -count=1 -run 'StackHalved' ./internal/httpapi/
