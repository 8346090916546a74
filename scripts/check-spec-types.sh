#!/usr/bin/env bash
# Checks api/openapi.yaml from a TypeScript client's side: the types that
# openapi-typescript generates from it must be the committed
# api/tscheck/generated/openapi.d.ts, and api/tscheck/client.ts, a browser
# client written against them, must compile under tsc --strict.
#
# Installs the npm packages it needs itself, with npm ci from the committed
# api/tscheck/package-lock.json (exact versions), into
# api/tscheck/node_modules; as root with apt, installs Node.js and npm when
# missing (saying so). Without them it skips, saying so (fails under CI).
#
#   scripts/check-spec-types.sh           check (the test command runs this)
#   scripts/check-spec-types.sh --update  rewrite the committed types from
#                                         the spec, then check
set -euo pipefail
cd "$(dirname "$0")/../api/tscheck"

update=false
case "${1:-}" in
  "") ;;
  --update) update=true ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Node.js and npm through apt (Debian packages nodejs, npm) for the TypeScript check"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "node and npm are missing and could not be installed: the TypeScript check cannot run"; exit 1
  fi
  echo "SKIPPED: node and npm are not installed, so the TypeScript types of api/openapi.yaml were not checked (install Node.js 20 with npm to run it)"
  exit 0
fi

# What npm ci is about to install, from the lock file.
node -e '
  const lock = require("./package-lock.json");
  const pkgs = lock.packages;
  const top = Object.keys(pkgs[""].devDependencies || {});
  const deps = Object.keys(pkgs).filter((k) => k !== "" && !top.some((n) => k === "node_modules/" + n));
  console.log("npm ci (api/tscheck/package-lock.json): " +
    top.map((n) => n + "@" + pkgs["node_modules/" + n].version).join(", ") +
    ", and " + deps.length + " packages they depend on, at the versions the lock file pins");
'
npm ci --no-audit --no-fund --loglevel=error

generated=generated/openapi.d.ts
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/openapi-typescript ../openapi.yaml --output "$tmp/openapi.d.ts" >"$tmp/log" 2>&1 || {
  cat "$tmp/log"; echo "openapi-typescript failed on api/openapi.yaml"; exit 1
}
if $update; then
  cp "$tmp/openapi.d.ts" "$generated"
  echo "wrote api/tscheck/$generated"
elif ! diff -u "$generated" "$tmp/openapi.d.ts" >"$tmp/diff"; then
  head -n 80 "$tmp/diff"
  echo "api/tscheck/$generated is not what openapi-typescript generates from api/openapi.yaml (diff above, first 80 lines)."
  echo "Run scripts/check-spec-types.sh --update and commit the result."
  exit 1
fi

node_modules/.bin/tsc -p .
echo "ok: the generated types match the spec and api/tscheck/client.ts compiles under tsc --strict"
