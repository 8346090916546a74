# syntax=docker/dockerfile:1
#
# chatio-gateway image: a static Go binary on distroless (CA certificates,
# tzdata, /etc/passwd with the nonroot user; no shell, no package manager).
#
#   docker build -t chatio-gateway:dev .
#   docker run --rm -p 8080:8080 chatio-gateway:dev       # embedded simulator
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 .
# (the build stage runs natively and cross-compiles: no emulation).
# scripts/check-deploy.sh runs this file's `go build` line locally and checks
# that the result is static.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by BuildKit to the target platform (empty with the legacy builder:
# then Go builds for the build image's own platform, linux).
ARG TARGETOS TARGETARCH
# What `gateway version`, the start-up log line and gateway_build_info
# report. .git stays out of the build context, so Go cannot stamp the
# revision itself: pass both,
#   docker build --build-arg VERSION=1.2.0 --build-arg REVISION=$(git rev-parse HEAD) .
# Unset, the binary reports version "devel" and no revision.
ARG VERSION="" REVISION=""
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /gateway
# 65532 is distroless's "nonroot"; numeric so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
# Docker and Compose only (Kubernetes ignores it and uses the probes of
# deploy/base/deployment.yaml): GET /healthz on the port of GATEWAY_ADDR.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["/gateway", "healthcheck"]
ENTRYPOINT ["/gateway"]
