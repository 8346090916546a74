package session

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// TestGapFillFailureRedials: when a gap fill's look-up fails for a reason
// that may pass — no answer within the request timeout while the socket
// still answers pings, or the upstream's own request_timeout — the restore
// fails: the session dials again and announces connection_restored only
// once the chat's gap is filled. Announcing it with the gap skipped loses
// the missed events for good: the new socket's pushes move the chat past
// them, and the next reconnect's summary finds nothing missing. (TestChaos
// lost agent messages that way on a loaded machine.)
//
// The fault starts when the reconnect's get_chats_summary answer reaches
// the client, so that exactly the gap fill's first request meets it, and
// ends when the session dials again.
func TestGapFillFailureRedials(t *testing.T) {
	cases := []struct {
		name  string
		cfg   func(*Config, *chatiosim.Config)
		fault func(srv *chatiosim.Server, customer string, on bool)
	}{
		{
			name: "client request timeout",
			cfg: func(c *Config, _ *chatiosim.Config) {
				c.Upstream.RequestTimeout = time.Second
			},
			fault: func(srv *chatiosim.Server, _ string, on bool) {
				if on {
					srv.SetLatency(time.Minute) // answers late; pings still answered
				} else {
					srv.SetLatency(0)
				}
			},
		},
		{
			name: "upstream request_timeout",
			cfg: func(_ *Config, sim *chatiosim.Config) {
				sim.RequestTimeout = time.Second // answers request_timeout before the client gives up
			},
			fault: func(srv *chatiosim.Server, customer string, on bool) {
				srv.StallCustomer(customer, on)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const token = "tok-gap-fail"
				customer := chatiosim.CustomerIDForToken(token)
				var (
					srv      *chatiosim.Server
					armed    atomic.Bool // the next get_chats_summary answer starts the fault
					faulty   atomic.Bool // the fault is on
					redialed atomic.Bool // the session dialed again while it was
				)
				cfg, simCfg := fastConfig(), chatiosim.Config{}
				tc.cfg(&cfg, &simCfg)
				cfg.Dial = func(ctx context.Context, c chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
					if faulty.CompareAndSwap(true, false) {
						tc.fault(srv, customer, false)
						redialed.Store(true)
					}
					return chatio.Dial(ctx, c)
				}
				marker := []byte(`"action":"get_chats_summary"`)
				e := newTapBubbleEnv(t, cfg, simCfg, func(b []byte) {
					if bytes.Contains(b, marker) && armed.CompareAndSwap(true, false) {
						tc.fault(srv, customer, true)
						faulty.Store(true)
					}
				})
				srv = e.srv

				s := e.acquire(t, token)
				chat := startChat(t, s)
				agent := e.srv.Agent("agent-1", "")
				before, err := agent.SendMessage(chat, "before the drop")
				if err != nil {
					t.Fatal(err)
				}
				sub := subscribe(t, s, "")
				waitDelivered(t, s, before)

				armed.Store(true)
				dropUpstream(t, e, sub, 300*time.Millisecond)
				missed, err := agent.SendMessage(chat, "while down")
				if err != nil {
					t.Fatal(err)
				}

				msgs := until(t, sub, sdk.EventConnectionRestored)
				var got []string
				for _, m := range msgs {
					if id := newEventID(t, m); id != "" {
						got = append(got, id)
					}
				}
				if want := []string{missed}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("before connection_restored: %v, want %v (the gap fill failed and was skipped)", got, want)
				}
				if !redialed.Load() {
					t.Fatal("restored on the connection whose gap fill failed")
				}

				// Live again; the missed event is not repeated, and nothing
				// else of the failed attempt shows up.
				live, err := agent.SendMessage(chat, "after")
				if err != nil {
					t.Fatal(err)
				}
				for {
					m := next(t, sub)
					if m.Name == sdk.EventConnectionLost || m.Name == sdk.EventConnectionRestored {
						t.Fatalf("%s after the restore", m.Name)
					}
					id := newEventID(t, m)
					if id == missed {
						t.Fatalf("duplicate %s", id)
					}
					if id == live {
						break
					}
				}
				if v := metricValue(e.pool.m.reconnects); v != 1 {
					t.Fatalf("reconnects counter %v", v)
				}
			})
		})
	}
}

// tapConn hands every read of the client's end of an upstream socket to
// onRead, before the client sees it (the last bytes of the previous read
// come first, so that a marker cut between two reads is still whole).
type tapConn struct {
	net.Conn
	onRead func([]byte)
	tail   []byte
}

const tapKeep = 64

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		buf := append(c.tail, p[:n]...)
		c.onRead(buf)
		c.tail = append([]byte(nil), buf[max(0, len(buf)-tapKeep):]...)
	}
	return n, err
}

// newTapBubbleEnv is newBubbleEnv whose upstream sockets pass what the
// simulator sends through onRead.
func newTapBubbleEnv(t *testing.T, cfg Config, sim chatiosim.Config, onRead func([]byte)) *testEnv {
	t.Helper()
	return newBubbleEnvWith(t, cfg, sim, func(c net.Conn) net.Conn { return &tapConn{Conn: c, onRead: onRead} })
}
