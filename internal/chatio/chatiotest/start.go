package chatiotest

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// Start runs a simulator (chatiosim.New(cfg)) for a test on an httptest
// server listening on 127.0.0.1 and returns it with its base URL,
// "ws://127.0.0.1:PORT/customer/v0.5". The test's Cleanup closes both.
func Start(tb testing.TB, cfg chatiosim.Config) (*chatiosim.Server, string) {
	tb.Helper()
	s := chatiosim.New(cfg)
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
