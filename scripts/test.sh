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

echo "== go test -race"
go test -race -count=1 -timeout 15m ./... 2>&1 | tee /tmp/chatio-gateway-test.log
