#!/usr/bin/env bash
# Checks the deployment kit without a Docker engine or a cluster:
#   1. builds cmd/gateway with the Dockerfile's own `go build` line (same
#      flags, CGO_ENABLED=0, the build args VERSION and REVISION set) into a
#      temporary directory, checks that the binary is static, carries
#      -trimpath and -ldflags="-s -w" and reports the build args in
#      `gateway version`, and runs it the way the image does: serve,
#      `gateway healthcheck`, SIGTERM;
#   2. lints the Dockerfile with hadolint when it is installed (or packaged
#      for apt: then it is installed; nothing is downloaded otherwise);
#   3. renders the kustomize base and overlay (kubectl kustomize, or
#      kustomize) and validates them with kubeconform when it is installed
#      and KUBECONFORM_SCHEMA_LOCATION points at local schemas;
#   4. checks the alert rules with promtool and the nginx example with
#      nginx -t, each when installed (PROMTOOL_BIN=/path, NGINX_BIN=/path override);
#   5. runs the Go checks of the kit (go test ./deploy/).
# A tool that is missing is reported as skipped; a check that runs and
# fails makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

skip() { echo "   skipped: $*"; }

echo "== 1. build as the Dockerfile does"
# The build stage's RUN line with `go build`, continuation lines joined.
build_line=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -E '^RUN .*go build' | head -n1 | sed 's/^RUN //')
if [ -z "$build_line" ]; then
  echo "no 'RUN … go build' line in the Dockerfile"; exit 1
fi
case "$build_line" in
  *CGO_ENABLED=0*) ;;
  *) echo "the Dockerfile's build does not set CGO_ENABLED=0: $build_line"; exit 1 ;;
esac
# Build for this machine, into the temporary directory instead of /out.
cmd=${build_line//\/out\/gateway/$tmp/gateway}
echo "   $cmd"
# The build args a release passes (docker build --build-arg VERSION=…).
check_version=0.0.0-check-deploy check_revision=check-deploy-revision
TARGETOS=$(go env GOOS) TARGETARCH=$(go env GOARCH) VERSION=$check_version REVISION=$check_revision bash -c "$cmd"
bin=$tmp/gateway

if command -v file >/dev/null; then
  desc=$(file -b "$bin")
  echo "   file: $desc"
  case "$desc" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "the gateway binary is not static"; exit 1 ;;
  esac
fi
if command -v ldd >/dev/null && ldd "$bin" >/dev/null 2>&1; then
  echo "ldd lists dynamic dependencies:"; ldd "$bin"; exit 1
fi
info=$(go version -m "$bin")
for want in 'CGO_ENABLED=0' '-trimpath=true'; do
  if ! grep -qF -- "$want" <<<"$info"; then
    echo "go version -m: the binary was not built with $want"; echo "$info"; exit 1
  fi
done
# With -trimpath Go does not record -ldflags (golang.org/issue/52372): check
# their effect instead. -s: no symbol table; -w: no DWARF.
if command -v file >/dev/null; then
  case "$(file -b "$bin")" in
    *"not stripped"*) echo "the binary has a symbol table: not linked with -s"; exit 1 ;;
    *stripped*) ;;
    *) echo "file does not say whether the binary is stripped"; exit 1 ;;
  esac
fi
if command -v readelf >/dev/null && readelf -S "$bin" | grep -q '\.debug_'; then
  echo "the binary has DWARF sections: not linked with -w"; exit 1
fi
echo "   static, CGO_ENABLED=0, -trimpath, -ldflags=\"-s -w\": ok ($(du -h "$bin" | cut -f1))"
# The build args reach the binary: `gateway version` reports them.
version_out=$("$bin" version)
if ! grep -qx "chatio-gateway $check_version" <<<"$version_out" || ! grep -qx "revision: $check_revision" <<<"$version_out"; then
  echo "gateway version does not report the build args VERSION=$check_version REVISION=$check_revision:"
  echo "$version_out"; exit 1
fi
echo "   gateway version: $check_version, revision $check_revision (the build args): ok"

# Run it as the container does: serve, healthcheck, SIGTERM → clean exit.
port=$(( 20000 + RANDOM % 20000 ))
GATEWAY_ADDR="127.0.0.1:$port" GATEWAY_SHUTDOWN_GRACE=5s GATEWAY_DATA_DIR="$tmp/data" "$bin" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
healthy=""
for _ in $(seq 1 50); do
  if GATEWAY_ADDR="127.0.0.1:$port" "$bin" healthcheck 2>/dev/null; then healthy=yes; break; fi
  sleep 0.1
done
if [ -z "$healthy" ]; then
  echo "the gateway did not become healthy on 127.0.0.1:$port"; cat "$tmp/gateway.log"; exit 1
fi
kill -TERM "$gw_pid"
rc=0; wait "$gw_pid" || rc=$?
gw_pid=""
if [ "$rc" -ne 0 ]; then
  echo "the gateway exited $rc after SIGTERM"; cat "$tmp/gateway.log"; exit 1
fi
if GATEWAY_ADDR="127.0.0.1:$port" "$bin" healthcheck 2>/dev/null; then
  echo "healthcheck succeeded with no gateway running"; exit 1
fi
echo "   serve → healthcheck 0 → SIGTERM → exit 0 → healthcheck ≠ 0: ok"

echo "== 2. hadolint"
if ! command -v hadolint >/dev/null; then
  candidate=$(apt-cache policy hadolint 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && [ "$(id -u)" = 0 ]; then
    echo "   installing hadolint $candidate: apt-get install hadolint"
    apt-get install -y -qq hadolint >/dev/null
  fi
fi
if command -v hadolint >/dev/null; then
  hadolint Dockerfile
  echo "   hadolint: ok"
else
  skip "hadolint is not installed and not packaged for apt here (no download)"
fi

echo "== 3. kustomize"
render() {
  if command -v kubectl >/dev/null; then kubectl kustomize "$1"
  elif command -v kustomize >/dev/null; then kustomize build "$1"
  else return 3; fi
}
if command -v kubectl >/dev/null || command -v kustomize >/dev/null; then
  for dir in deploy/base deploy/overlays/example; do
    out="$tmp/$(basename "$dir").yaml"
    render "$dir" >"$out"
    echo "   $dir: $(grep -c '^kind:' "$out") objects"
    if command -v kubeconform >/dev/null && [ -n "${KUBECONFORM_SCHEMA_LOCATION:-}" ]; then
      kubeconform -strict -summary -schema-location "$KUBECONFORM_SCHEMA_LOCATION" "$out"
    fi
  done
  if ! command -v kubeconform >/dev/null; then
    skip "kubeconform is not installed (not packaged for Debian): no schema validation"
  elif [ -z "${KUBECONFORM_SCHEMA_LOCATION:-}" ]; then
    skip "kubeconform: set KUBECONFORM_SCHEMA_LOCATION to local schemas (it would download them)"
  fi
else
  skip "neither kubectl nor kustomize is installed (go test still checks the source manifests)"
fi

echo "== 4. promtool, nginx"
promtool=${PROMTOOL_BIN:-$(command -v promtool || true)}
if [ -n "$promtool" ]; then
  "$promtool" check rules deploy/observability/alerts.yaml
else
  skip "promtool is not installed (Debian package: prometheus)"
fi
nginx=${NGINX_BIN:-$(command -v nginx || true)}
if [ -n "$nginx" ]; then
  # A throwaway nginx.conf around the example, with a self-signed certificate.
  n=$tmp/nginx; mkdir -p "$n/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=chat-api.example.com -days 1 \
    -keyout "$n/key.pem" -out "$n/cert.pem" 2>/dev/null
  sed -e "s#/etc/nginx/tls/chat-api.crt#$n/cert.pem#; s#/etc/nginx/tls/chat-api.key#$n/key.pem#" \
    deploy/nginx/gateway.conf >"$n/gateway.conf"
  cat >"$n/nginx.conf" <<EOF
error_log $n/error.log;
pid $n/nginx.pid;
events {}
http {
  access_log off;
  client_body_temp_path $n/tmp/body;
  proxy_temp_path $n/tmp/proxy;
  fastcgi_temp_path $n/tmp/fastcgi;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  include $n/gateway.conf;
}
EOF
  env -u NGINX "$nginx" -t -q -p "$n" -c "$n/nginx.conf"
  echo "   nginx -t: ok"
else
  skip "nginx is not installed"
fi

echo "== 5. go test ./deploy/"
go test -count=1 ./deploy/
