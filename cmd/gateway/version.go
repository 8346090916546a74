package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// version and revision are set at link time by a build that knows them
// better than Go's own stamping, such as the Dockerfile's, whose context
// has no .git:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.revision=$(git rev-parse HEAD)" ./cmd/gateway
//
// Empty: see buildInfo for what is used instead.
var (
	version  string
	revision string
)

// buildInfo is what the binary knows about its own build. It is printed by
// `gateway version`, logged at start-up and exposed as gateway_build_info.
type buildInfo struct {
	// Version is main.version when set at link time; else the main module's
	// version as Go recorded it: the tag of `go install …@v1.2.0`, or the
	// pseudo-version `go build` derives from the repository (with
	// "+dirty" for uncommitted changes); else "devel".
	Version string
	// Revision is main.revision when set at link time, else the VCS
	// revision Go stamped (vcs.revision); "" when unknown (go run, tests,
	// a build without .git).
	Revision string
	// Time is the commit time Go stamped (vcs.time, RFC 3339); "" when
	// unknown.
	Time string
	// Modified: the work tree had uncommitted changes (vcs.modified).
	Modified bool
	// GoVersion is the Go release that built the binary (go1.26.0).
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// readBuildInfo is this binary's buildInfo: the link-time variables, then
// what Go recorded (runtime/debug.ReadBuildInfo).
func readBuildInfo() buildInfo {
	info, _ := debug.ReadBuildInfo()
	return makeBuildInfo(version, revision, info)
}

// makeBuildInfo assembles buildInfo from the link-time variables and Go's
// record of the build (nil: none).
func makeBuildInfo(version, revision string, info *debug.BuildInfo) buildInfo {
	bi := buildInfo{
		Version:   version,
		Revision:  revision,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info != nil {
		if bi.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Revision == "" {
					bi.Revision = s.Value
				}
			case "vcs.time":
				bi.Time = s.Value
			case "vcs.modified":
				bi.Modified, _ = strconv.ParseBool(s.Value)
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "devel"
	}
	return bi
}

// printVersion is `gateway version`: the version on the first line, then
// one "key: value" line per fact of the build ("unknown" where Go recorded
// none).
func printVersion(w io.Writer, bi buildInfo) error {
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	_, err := fmt.Fprintf(w, "chatio-gateway %s\nrevision: %s\ntime:     %s\nmodified: %t\ngo:       %s %s\n",
		bi.Version, orUnknown(bi.Revision), orUnknown(bi.Time), bi.Modified, bi.GoVersion, bi.Platform)
	return err
}

// logFields are the fields of the start-up log line.
func (bi buildInfo) logFields() []zap.Field {
	return []zap.Field{
		zap.String("version", bi.Version),
		zap.String("revision", bi.Revision),
		zap.String("vcs_time", bi.Time),
		zap.Bool("modified", bi.Modified),
		zap.String("go", bi.GoVersion),
	}
}

// buildInfoGauge is gateway_build_info{version, revision, goversion}: always
// 1, so that a query can count or join the builds running.
func buildInfoGauge(bi buildInfo) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gateway_build_info",
		Help: "Always 1; the labels name the build: its version, VCS revision (empty when unknown) and Go release.",
		ConstLabels: prometheus.Labels{
			"version":   bi.Version,
			"revision":  bi.Revision,
			"goversion": bi.GoVersion,
		},
	})
	g.Set(1)
	return g
}
