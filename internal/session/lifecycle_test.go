package session

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// sessionGoroutines counts the goroutines this package started that are
// still running (the simulator's and the clients' are started elsewhere).
func sessionGoroutines() int {
	return goroutinesCreatedBy("github.com/chatio-gateway/chatio-gateway/internal/session.")
}

// A connected session runs no goroutine of its own: pushes are handled on
// the client's read loop, eviction on a timer. Only a reconnect has one,
// until the session is connected again.
func TestConnectedSessionRunsNoGoroutine(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-lean")
	chat := startChat(t, s)
	sub := subscribe(t, s, "")
	eventually(t, "no session goroutine", func() bool { return sessionGoroutines() == 0 })

	// Pushes still arrive.
	id, err := e.srv.Agent("agent-1", "").SendMessage(chat, "hello")
	if err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, id)

	// A drop: the session recovers, then runs none again.
	dropUpstream(t, e, sub, 200*time.Millisecond)
	if n := sessionGoroutines(); n != 1 {
		t.Errorf("%d session goroutines while reconnecting, want 1 (the recovery)", n)
	}
	until(t, sub, sdk.EventConnectionRestored)
	eventually(t, "no session goroutine after the reconnect", func() bool { return sessionGoroutines() == 0 })
	if s.Status() != StatusConnected {
		t.Fatalf("status %s", s.Status())
	}
	id, err = e.srv.Agent("agent-1", "").SendMessage(chat, "after")
	if err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, id)
}

// goroutinesCreatedBy counts the goroutines started by a function whose
// name begins with prefix.
func goroutinesCreatedBy(prefix string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by "+prefix)
}

// The pool's event loops read its upstream sockets: a connected session's
// socket has no reader goroutine. ReadLoops < 0 gives each socket one, and
// the session works the same.
func TestUpstreamReadLoops(t *testing.T) {
	const reader = "github.com/chatio-gateway/chatio-gateway/internal/chatio.Dial " // "… in goroutine N"
	for _, tc := range []struct {
		loops   int
		readers int
	}{{0, 0}, {-1, 1}} {
		t.Run(fmt.Sprint("loops=", tc.loops), func(t *testing.T) {
			cfg := fastConfig()
			cfg.ReadLoops = tc.loops
			e := newEnv(t, cfg, chatiosim.Config{})
			s := e.acquire(t, "tok-loops")
			chat := startChat(t, s)
			subscribe(t, s, "")
			if n := goroutinesCreatedBy(reader); n != tc.readers {
				t.Errorf("%d reader goroutines for one connected session, want %d", n, tc.readers)
			}
			id, err := e.srv.Agent("agent-1", "").SendMessage(chat, "hello")
			if err != nil {
				t.Fatal(err)
			}
			waitDelivered(t, s, id)
		})
	}
}
