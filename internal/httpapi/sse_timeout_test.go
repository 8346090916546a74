package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// smallSendBuffers gives every accepted connection a small kernel send
// buffer, so that a client that does not read blocks the server's writes
// after a few KiB.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A stream write that a client does not take within WriteTimeout is cut,
// over HTTP/1.1 (the socket stays full) and over h2c (the stream's flow
// control window stays shut): the stream ends with write_failed, the
// session and other streams go on.
func TestStreamWriteTimeout(t *testing.T) {
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			e := newEnv(t, func(o *envOptions) {
				o.cfg.WriteTimeout = 300 * time.Millisecond
				o.pool.SubscriberBuffer = 4096 // the queue must not be what cuts it
			})
			var protocols http.Protocols
			protocols.SetHTTP1(true)
			protocols.SetUnencryptedHTTP2(true)
			srv := &http.Server{Handler: e.api.Handler(), Protocols: &protocols}
			if err := http2.ConfigureServer(srv, &http2.Server{}); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan struct{})
			go func() { defer close(served); _ = srv.Serve(smallSendBuffers{ln}) }()
			defer func() { _ = srv.Close(); <-served }()

			const token = "tok-stuck"
			chat, _ := e.startChat(token)
			healthy := e.openStream("/v1/events", token) // over e.srv, read
			healthy.waitEvent("connected")

			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.(*net.TCPConn).SetReadBuffer(4096)
			var reset atomic.Bool // h2c: the server reset the stream
			if proto == "h1" {
				// Ask, then never read.
				if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
			} else {
				// Read every frame, but never open the stream's window
				// beyond 512 bytes.
				h2cStream(t, conn, token, &reset)
			}
			eventually(t, "the stuck stream open", func() bool { return e.api.OpenStreams() == 2 })

			agent := e.sim.Agent("agent-1", "")
			text := strings.Repeat("x", 2000)
			deadline := time.Now().Add(10 * time.Second)
			for e.api.OpenStreams() > 1 {
				if time.Now().After(deadline) {
					t.Fatalf("the stuck stream was not cut (%d streams open)", e.api.OpenStreams())
				}
				if _, err := agent.SendMessage(chat, text); err != nil {
					t.Fatal(err)
				}
				healthy.waitEvent("new_event")
				// The pace of the filling: the stuck stream's kernel
				// buffers fill while WriteTimeout runs on the wall clock
				// (real sockets: a synctest bubble cannot hold them).
				time.Sleep(20 * time.Millisecond)
			}
			if n := testutil.ToFloat64(e.api.m.streamEnds.WithLabelValues("write_failed")); n != 1 {
				t.Errorf("write_failed ends: %v, want 1", n)
			}
			if proto == "h2c" {
				eventually(t, "RST_STREAM on the stuck stream", reset.Load)
			}
			// The session and its healthy stream go on.
			if _, err := agent.SendMessage(chat, "after"); err != nil {
				t.Fatal(err)
			}
			healthy.waitEvent("new_event")
			healthy.close()
		})
	}
}

// h2cStream opens GET /v1/events on conn as HTTP/2 with prior knowledge,
// with a 512-byte initial stream window it never opens further, and
// reads the server's frames in the background (reset is set when the
// stream is reset).
func h2cStream(t *testing.T, conn net.Conn, token string, reset *atomic.Bool) {
	t.Helper()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 512}); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "gw"},
		{":path", "/v1/events"}, {"authorization", "Bearer " + token}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(),
		EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rf := http2.NewFramer(io.Discard, conn)
		for {
			f, err := rf.ReadFrame()
			if err != nil {
				return
			}
			if rs, ok := f.(*http2.RSTStreamFrame); ok && rs.StreamID == 1 {
				reset.Store(true)
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				_ = fr.WriteSettingsAck() // one writer at a time: only this goroutine writes from now on
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("frame reader did not end")
		}
	})
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}
