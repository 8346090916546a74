package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" { // the gateway process of TestSIGTERMUnderLoad
		os.Exit(childMain())
	}
	// A test that forgets GATEWAY_DATA_DIR keeps its embedded engine here,
	// not in the user's state directory.
	state, err := os.MkdirTemp("", "gateway-test-state")
	if err != nil {
		panic(err)
	}
	_ = os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	_ = os.RemoveAll(state)
	os.Exit(code)
}

// allKeys are every variable of the configuration, read from the
// config struct's tags so that a new setting is never missed.
var allKeys = func() []string {
	var keys []string
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("envconfig"); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}()

// cleanEnv unsets every configuration variable for the test (restored after).
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range allKeys {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
}

func TestConfigDefaults(t *testing.T) {
	cleanEnv(t)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded() || c.ChatioLicense != 1 || c.Addr != ":8080" || c.ShutdownGrace != 25*time.Second ||
		c.Heartbeat != 15*time.Second || c.TicketTTL != time.Minute || c.MaxBodyBytes != 1<<20 ||
		c.PProf || c.PProfAddr != "127.0.0.1:6060" || c.LogLevel != "info" || len(c.CORSOrigins) != 0 ||
		c.NATSURL != "" || c.DataDir != "" || c.ClusterKey != "" || c.LeaseTTL != 10*time.Second ||
		c.StreamReplicas != 0 || c.LogStreams != 0 || c.LogMaxAge != 24*time.Hour || c.LogMaxBytes != 1<<30 ||
		c.EngineStartTimeout != 5*time.Minute {
		t.Fatalf("defaults %+v", c)
	}
}

func TestConfigFromEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("CHATIO_URL", "wss://api.chat.io/customer/v0.5")
	if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "CHATIO_LICENSE") {
		t.Fatalf("a real upstream without license: %v", err)
	}
	t.Setenv("CHATIO_LICENSE", "4711")
	t.Setenv("GATEWAY_CORS_ORIGINS", "https://a.example,https://b.example")
	t.Setenv("GATEWAY_HEARTBEAT", "5s")
	t.Setenv("GATEWAY_NATS_URL", "nats://nats-0.nats:4222, nats://nats-1.nats:4222,")
	if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "GATEWAY_CLUSTER_KEY is required") {
		t.Fatalf("an external engine without cluster key: %v", err)
	}
	t.Setenv("GATEWAY_CLUSTER_KEY", strings.Repeat("ab", 32))
	t.Setenv("GATEWAY_NODE_ID", "gw-1")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Embedded() || c.ChatioLicense != 4711 || len(c.CORSOrigins) != 2 || c.Heartbeat != 5*time.Second ||
		!slices.Equal(c.natsURLs(), []string{"nats://nats-0.nats:4222", "nats://nats-1.nats:4222"}) {
		t.Fatalf("config %+v", c)
	}
	es, err := prepareEngine(c)
	if err != nil || es.dir != "" || es.cfg.NodeID != "gw-1" || es.cfg.URL != c.NATSURL || es.cfg.Streams != 0 {
		t.Fatalf("engine config %+v: %v", es.cfg, err)
	}

	for k, v := range map[string]string{
		"CHATIO_URL":              "ftp://x",
		"GATEWAY_LOG_LEVEL":       "loud",
		"GATEWAY_SHUTDOWN_GRACE":  "soon",
		"GATEWAY_MAX_SESSIONS":    "-1",
		"GATEWAY_CLUSTER_KEY":     "zz",
		"GATEWAY_NATS_URL":        "http://nats:4222",
		"GATEWAY_NODE_ID":         "gw.1",
		"GATEWAY_LEASE_TTL":       "100ms",
		"GATEWAY_STREAM_REPLICAS": "7",
		"GATEWAY_LOG_STREAMS":     "-1",
		"GATEWAY_LOG_MAX_AGE":     "0s",
		"GATEWAY_TICKET_TTL":      "2h",
		"GATEWAY_ADDR":            "nohostport",
		"GATEWAY_RATE_LIMIT":      "-1",
		"GATEWAY_MAX_FILE_BYTES":  "20000000",
		"GATEWAY_RECONNECT_MIN":   "1m",
	} {
		t.Run(k, func(t *testing.T) {
			old := os.Getenv(k)
			t.Setenv(k, v)
			if _, err := loadConfig(); err == nil {
				t.Fatalf("%s=%s accepted", k, v)
			}
			t.Setenv(k, old)
		})
	}
}

// TestClusterKeys: the subkeys differ by purpose and from the cluster key,
// and are the same for the same key; with the embedded engine and no key,
// one is generated into the data dir (owner only) and read back at the
// next start; a short key there is refused.
func TestClusterKeys(t *testing.T) {
	cleanEnv(t)
	master := bytes.Repeat([]byte{7}, 32)
	seen := map[string]bool{string(master): true}
	for _, p := range []string{"engine", "ticket", "cursor"} {
		k := subkey(master, p)
		if len(k) != 32 || seen[string(k)] || !bytes.Equal(k, subkey(master, p)) {
			t.Fatalf("subkey %s: %x", p, k)
		}
		seen[string(k)] = true
	}

	dir := filepath.Join(t.TempDir(), "state")
	t.Setenv("GATEWAY_DATA_DIR", dir)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	a, err := prepareEngine(c)
	if err != nil || !a.newKey || a.dir != dir {
		t.Fatalf("first start: %+v %v", a, err)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	b, err := prepareEngine(c)
	if err != nil || b.newKey || !bytes.Equal(a.cfg.ClusterKey, b.cfg.ClusterKey) || !bytes.Equal(a.keys.ticket, b.keys.ticket) {
		t.Fatalf("restart: another key (%v)", err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte("abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareEngine(c); err == nil {
		t.Fatal("a short key file accepted")
	}

	c.DataDir = ""
	t.Setenv("XDG_STATE_HOME", "/var/lib/x")
	if d, _ := c.dataDir(); d != "/var/lib/x/chatio-gateway" {
		t.Fatalf("data dir %q", d)
	}
	if id, err := c.nodeID(); err != nil || !validNodeID(id) {
		t.Fatalf("node id from the host name: %q %v", id, err)
	}
}

func TestHelp(t *testing.T) {
	cleanEnv(t)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"KEY", "DEFAULT", "healthcheck"}, allKeys...) {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %s:\n%s", want, out.String())
		}
	}
	if err := run(t.Context(), []string{"bogus"}, io.Discard, io.Discard, nil); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// TestEmbeddedRun starts the whole service with the embedded simulator on
// 127.0.0.1:0, checks health, a REST call and a stream, then cancels: the
// stream gets a retry hint and run returns cleanly.
func TestEmbeddedRun(t *testing.T) {
	cleanEnv(t)
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:0")
	t.Setenv("GATEWAY_LOG_LEVEL", "warn")
	t.Setenv("GATEWAY_SHUTDOWN_GRACE", "5s")
	t.Setenv("GATEWAY_DATA_DIR", t.TempDir())

	var stdout syncBuffer
	gw := startRun(t, &stdout, io.Discard)
	base := gw.base
	if !strings.Contains(stdout.String(), "embedded chat.io simulator") {
		t.Errorf("stdout: %q", stdout.String())
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer demo")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := get("/healthz"); st != 200 {
		t.Fatalf("healthz %d %s", st, body)
	}
	if st, body := get("/v1/session"); st != 200 || !strings.Contains(body, `"connected"`) {
		t.Fatalf("session %d %s", st, body)
	}

	// h2c with prior knowledge on the same port
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &h2}}
	defer h2c.CloseIdleConnections()
	res2, err := h2c.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("h2c: %v", err)
	}
	_, _ = io.Copy(io.Discard, res2.Body)
	res2.Body.Close()
	if res2.ProtoMajor != 2 || res2.StatusCode != 200 {
		t.Fatalf("h2c answered %s %d", res2.Proto, res2.StatusCode)
	}

	// the healthcheck subcommand against it
	t.Setenv("GATEWAY_ADDR", strings.TrimPrefix(base, "http://"))
	if err := run(t.Context(), []string{"healthcheck"}, io.Discard, io.Discard, nil); err != nil {
		t.Fatalf("healthcheck: %v", err)
	}

	// a stream open at shutdown ends with a retry hint
	req, _ := http.NewRequest("GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer demo")
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v", err)
	}
	defer res.Body.Close()
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine(t, lines, "event: connected")

	start := time.Now()
	gw.end()
	retry := false
	for l := range lines {
		retry = retry || strings.HasPrefix(l, "retry: ")
	}
	if !retry {
		t.Error("stream ended without a retry hint")
	}
	gw.wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}

	// healthcheck against nothing fails
	if err := run(t.Context(), []string{"healthcheck"}, io.Discard, io.Discard, nil); err == nil {
		t.Fatal("healthcheck passed with the gateway down")
	}
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q", want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
