package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// setLinkVars sets main.version and main.revision for one test, as
// -ldflags -X would.
func setLinkVars(t *testing.T, v, r string) {
	t.Helper()
	oldV, oldR := version, revision
	version, revision = v, r
	t.Cleanup(func() { version, revision = oldV, oldR })
}

func TestVersionCommand(t *testing.T) {
	cleanEnv(t)
	setLinkVars(t, "v1.4.2", "0123456789abcdef")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	want := "chatio-gateway v1.4.2\n" +
		"revision: 0123456789abcdef\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("gateway version printed\n%s\nwant it to start with\n%s", out.String(), want)
	}
	if goLine := "go:       " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"; !strings.Contains(out.String(), goLine) {
		t.Errorf("gateway version printed\n%s\nwant the line %q", out.String(), goLine)
	}

	var help bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, &help, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(help.String(), "gateway version") {
		t.Errorf("-h does not list the version command:\n%s", help.String())
	}
}

func TestMakeBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "3a92b89c0ffee"},
		{Key: "vcs.time", Value: "2025-12-07T05:01:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, c := range []struct {
		name              string
		version, revision string // link-time
		info              *debug.BuildInfo
		want              buildInfo
	}{
		{name: "nothing known", want: buildInfo{Version: "devel"}},
		{name: "go run or a build without VCS",
			info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want: buildInfo{Version: "devel"}},
		{name: "go install …@v1.2.0",
			info: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}},
			want: buildInfo{Version: "v1.2.0"}},
		{name: "go build in a clone",
			info: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20251207050100-3a92b89c0ffe+dirty"}, Settings: vcs},
			want: buildInfo{Version: "v0.0.0-20251207050100-3a92b89c0ffe+dirty", Revision: "3a92b89c0ffee", Time: "2025-12-07T05:01:00Z", Modified: true}},
		{name: "link-time variables win",
			version: "1.3.0", revision: "feedface",
			info: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: vcs},
			want: buildInfo{Version: "1.3.0", Revision: "feedface", Time: "2025-12-07T05:01:00Z", Modified: true}},
		{name: "the Dockerfile without build args",
			info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}},
			want: buildInfo{Version: "devel"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := makeBuildInfo(c.version, c.revision, c.info)
			c.want.GoVersion, c.want.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestBuildInfoAtStartup: the start-up log line and /metrics carry the
// build.
func TestBuildInfoAtStartup(t *testing.T) {
	cleanEnv(t)
	setLinkVars(t, "v1.4.2", "0123456789abcdef")
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:0")
	t.Setenv("GATEWAY_LOG_LEVEL", "info")
	t.Setenv("GATEWAY_SHUTDOWN_GRACE", "5s")

	var logs syncBuffer
	gw := startRun(t, io.Discard, &logs)
	base := gw.base

	first, _, _ := strings.Cut(logs.String(), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("first log line %q: %v", first, err)
	}
	for k, want := range map[string]any{"msg": "gateway starting", "version": "v1.4.2", "revision": "0123456789abcdef", "go": runtime.Version()} {
		if line[k] != want {
			t.Errorf("first log line: %s = %v, want %v\n%s", k, line[k], want, first)
		}
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := `gateway_build_info{goversion="` + runtime.Version() + `",revision="0123456789abcdef",version="v1.4.2"} 1`
	found := false
	for sc := bufio.NewScanner(bytes.NewReader(body)); sc.Scan(); {
		found = found || sc.Text() == want
	}
	if !found {
		t.Errorf("/metrics lacks the line\n\t%s", want)
	}
	gw.stop()
}

// TestVersionOfABuiltBinary builds the gateway as the Dockerfile does
// (CGO_ENABLED=0, -trimpath: the build check-deploy.sh has cached) with a
// version set by -ldflags -X, and runs `gateway version`: the version is the
// one given, the revision the one Go stamped (none in a build without .git).
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.CommandContext(t.Context(), goCmd, "build", "-trimpath",
		"-ldflags=-X main.version=v9.8.7-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	stamped := makeBuildInfo("", "", info)

	out, err := exec.CommandContext(t.Context(), bin, "version").Output()
	if err != nil {
		t.Fatalf("gateway version: %v\n%s", err, out)
	}
	rev := stamped.Revision
	if rev == "" {
		rev = "unknown"
	}
	for _, want := range []string{
		"chatio-gateway v9.8.7-test\n",
		"revision: " + rev + "\n",
		"go:       " + info.GoVersion + " ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("gateway version printed\n%s\nwant %q in it", out, want)
		}
	}
}
