package chatiotest

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
)

// Start runs a Server for a test on an httptest server listening on
// 127.0.0.1 and returns it with its base URL,
// "ws://127.0.0.1:PORT/customer/v0.5". The test's Cleanup closes both.
func Start(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s := New(cfg)
	ts := httptest.NewUnstartedServer(s)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		s.Close()
		tb.Fatalf("chatiotest: listen: %v", err)
	}
	_ = ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	tb.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, "ws" + strings.TrimPrefix(ts.URL, "http") + "/customer/v0.5"
}
