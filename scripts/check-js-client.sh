#!/usr/bin/env bash
# Builds and tests clients/js (@chatio-gateway/customer-sdk):
#   1. npm ci from the committed clients/js/package-lock.json (exact
#      versions; it says what it installs) into clients/js/node_modules;
#   2. npm run build: the ES module, CommonJS and browser builds (esbuild)
#      and the type declarations (tsc --strict);
#   3. the widget's copy of the browser build, web/static/customer-sdk.js,
#      must be the fresh one (--update rewrites it);
#   4. the sample app, clients/js/sample/app.ts, compiles under tsc --strict
#      against the package's types;
#   5. the node:test suites (clients/js/test/*.test.mjs) against a real
#      gateway and simulator, and the oracle test (every testdata/oracle
#      scenario played by clients/js/test/upstream behind the gateway, the
#      client's results, upstream frames and events held to the SDK's,
#      testdata/oracle/golden): all built here with go build into a
#      temporary directory, run as child processes on 127.0.0.1.
# As root with apt, installs Node.js and npm when missing (saying so).
# Without them it skips, saying so (fails under CI).
#
#   scripts/check-js-client.sh           check (the test command runs this)
#   scripts/check-js-client.sh --update  rewrite web/static/customer-sdk.js, then check
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/clients/js"

update=false
case "${1:-}" in
  "") ;;
  --update) update=true ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

. "$root/scripts/lib-node.sh"
need_node "the JS client" "node and npm are not installed, so clients/js was not built or tested"
npm_ci clients/js/package-lock.json

npm run --silent build

web="$root/web/static/customer-sdk.js"
if $update; then
  cp dist/browser/customer-sdk.js "$web"
  echo "wrote web/static/customer-sdk.js"
elif ! cmp -s dist/browser/customer-sdk.js "$web"; then
  diff -u "$web" dist/browser/customer-sdk.js | head -n 40 || true
  echo "web/static/customer-sdk.js is not the browser build of clients/js (diff above, first 40 lines)."
  echo "Run scripts/check-js-client.sh --update and commit the result."
  exit 1
fi

node_modules/.bin/tsc -p sample/tsconfig.json
echo "ok: clients/js/sample/app.ts compiles under tsc --strict against the package's types"

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
echo "building cmd/gateway, cmd/chatio-sim and the scenario upstream (clients/js/test/upstream) for the node:test suites"
(cd "$root" && go build -o "$bin" ./cmd/gateway ./cmd/chatio-sim ./clients/js/test/upstream)
GATEWAY_BIN="$bin/gateway" CHATIO_SIM_BIN="$bin/chatio-sim" UPSTREAM_BIN="$bin/upstream" node --test --test-concurrency=1 test/*.test.mjs
echo "ok: clients/js builds, and its node:test suites pass against the gateway and the simulator"
