package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// natsOn runs a JetStream nats-server on 127.0.0.1:port, its store in dir.
func natsOn(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{ServerName: "s1", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// TestExternalEngine: with GATEWAY_NATS_URL naming a server that is not up
// yet, the gateway listens at once and answers /healthz 200, /readyz 503
// engine_unavailable and calls 503 OVERLOADED, each 503 with Retry-After
// (and the CORS headers of GATEWAY_CORS_ORIGINS), while it retries; once the server is up it serves. When the server goes
// down /readyz turns 503 again, and 200 when it is back on the same port.
// Then the gateway stops cleanly.
func TestExternalEngine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	cleanEnv(t)
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:0")
	t.Setenv("GATEWAY_LOG_LEVEL", "error")
	t.Setenv("GATEWAY_SHUTDOWN_GRACE", "5s")
	t.Setenv("GATEWAY_NATS_URL", "nats://127.0.0.1:"+strconv.Itoa(port))
	t.Setenv("GATEWAY_CLUSTER_KEY", strings.Repeat("5a", 32))
	t.Setenv("GATEWAY_NODE_ID", "gw-test")
	t.Setenv("GATEWAY_LEASE_TTL", "1s")
	t.Setenv("GATEWAY_ENGINE_START_TIMEOUT", "1m")
	t.Setenv("GATEWAY_CORS_ORIGINS", "https://shop.example")

	gw := startRun(t, io.Discard, io.Discard) // listening while the engine is down
	base := gw.base

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) (int, http.Header, map[string]any) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer demo")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, res.Header, m
	}
	unavailable := func(when string) {
		t.Helper()
		st, h, m := get("/readyz")
		if st != 503 || m["status"] != "engine_unavailable" || h.Get("Retry-After") == "" {
			t.Fatalf("%s: readyz %d %v %v", when, st, h, m)
		}
	}

	if st, _, _ := get("/healthz"); st != 200 {
		t.Fatalf("healthz %d while the engine is not up", st)
	}
	unavailable("before the engine is up")
	if st, h, m := get("/v1/session"); st != 503 || m["code"] != "OVERLOADED" || h.Get("Retry-After") == "" {
		t.Fatalf("a call before the engine is up: %d %v", st, m)
	}
	// A browser reads that 503: it carries the CORS headers.
	req, _ := http.NewRequest("GET", base+"/v1/session", nil)
	req.Header.Set("Origin", "https://shop.example")
	if res, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
		if res.StatusCode != 503 || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("a browser's call before the engine is up: %d %v", res.StatusCode, res.Header)
		}
	}

	dir := t.TempDir()
	s := natsOn(t, port, dir)
	testwait.For(t, 20*time.Second, "readyz 200", func() bool { st, _, _ := get("/readyz"); return st == 200 })
	if st, _, m := get("/v1/session"); st != 200 || m["status"] != "connected" {
		t.Fatalf("session %d %v", st, m)
	}
	if !strings.Contains(metrics(t, client, base), "\ngateway_engine_connected 1\n") {
		t.Fatal("gateway_engine_connected is not 1")
	}

	s.Shutdown()
	s.WaitForShutdown()
	testwait.For(t, 10*time.Second, "readyz 503", func() bool { st, _, _ := get("/readyz"); return st == 503 })
	unavailable("with the engine down")
	if !strings.Contains(metrics(t, client, base), "\ngateway_engine_connected 0\n") {
		t.Fatal("gateway_engine_connected is not 0")
	}

	natsOn(t, port, dir)
	testwait.For(t, 20*time.Second, "readyz 200 again", func() bool { st, _, _ := get("/readyz"); return st == 200 })

	gw.stop()
}

// TestExternalEngineStopWhileStarting: a gateway stopped while it still
// retries its engine returns cleanly.
func TestExternalEngineStopWhileStarting(t *testing.T) {
	cleanEnv(t)
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:0")
	t.Setenv("GATEWAY_LOG_LEVEL", "error")
	t.Setenv("GATEWAY_NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("GATEWAY_CLUSTER_KEY", strings.Repeat("5a", 32))
	gw := startRun(t, io.Discard, io.Discard)
	time.Sleep(300 * time.Millisecond) // a pace: the engine retried meanwhile
	gw.stop()
}

func metrics(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	res, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestEmbeddedRestartSameDataDir: a gateway restarted on the same
// GATEWAY_DATA_DIR (no GATEWAY_CLUSTER_KEY) keeps its generated key and its
// engine's store: a ticket issued before the restart opens a stream after
// it, and one used before it stays used.
func TestEmbeddedRestartSameDataDir(t *testing.T) {
	cleanEnv(t)
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:0")
	t.Setenv("GATEWAY_LOG_LEVEL", "error")
	t.Setenv("GATEWAY_SHUTDOWN_GRACE", "3s")
	t.Setenv("GATEWAY_DATA_DIR", t.TempDir())
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	// start runs the gateway until the returned stop is called.
	start := func() (base string, stop func()) {
		gw := startRun(t, io.Discard, io.Discard)
		return gw.base, func() {
			gw.end()
			client.CloseIdleConnections()
			gw.wait()
		}
	}
	do := func(method, url string) (int, string) {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Authorization", "Bearer demo")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	ticket := func(base string) string {
		st, body := do("POST", base+"/v1/tickets")
		var m struct{ Ticket string }
		if err := json.Unmarshal([]byte(body), &m); st != 200 || err != nil {
			t.Fatalf("ticket: %d %s", st, body)
		}
		return m.Ticket
	}
	stream := func(base, tk string) int {
		req, _ := http.NewRequest("GET", base+"/v1/events?ticket="+tk, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		res, err := client.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode
	}

	base, stop := start()
	used, kept := ticket(base), ticket(base)
	if st := stream(base, used); st != 200 {
		t.Fatalf("first stream: %d", st)
	}
	stop()

	base, stop = start()
	defer stop()
	if st := stream(base, kept); st != 200 {
		t.Fatalf("a ticket issued before the restart: %d", st)
	}
	if st := stream(base, used); st != 401 {
		t.Fatalf("a ticket used before the restart: %d", st)
	}
}
