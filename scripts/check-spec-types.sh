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

. ../../scripts/lib-node.sh
need_node "the TypeScript check" "node and npm are not installed, so the TypeScript types of api/openapi.yaml were not checked"
npm_ci api/tscheck/package-lock.json

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
