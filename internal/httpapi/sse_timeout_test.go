package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/memnet"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A stream write that a client does not take within WriteTimeout is cut,
// over HTTP/1.1 (the connection stays full) and over h2c (the stream's
// flow control window stays shut): the stream ends with write_failed,
// WriteTimeout after the write began and not before; the session and
// other streams go on. In a synctest bubble over an in-memory network: a
// net.Pipe holds no bytes, so a client that stops reading blocks the very
// next write, and the watchdog's timer runs on the bubble's clock.
func TestStreamWriteTimeout(t *testing.T) {
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testStreamWriteTimeout(t, proto) })
		})
	}
}

func testStreamWriteTimeout(t *testing.T, proto string) {
	const writeTimeout = 300 * time.Millisecond
	e := newBubbleEnv(t, func(o *envOptions) {
		o.cfg.WriteTimeout = writeTimeout
		o.pool.SubscriberBuffer = 4096 // the queue must not be what cuts it
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: e.api.Handler(), Protocols: &protocols}
	ln := memnet.Listen("stuck.test:80")
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close(); <-served }()

	const token = "tok-stuck"
	chat, _ := e.startChat(token)
	healthy := e.openStream("/v1/events", token) // over e.srv, read
	healthy.waitEvent("connected")

	conn, err := ln.Dial(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var reset atomic.Bool // h2c: the server reset the stream
	if proto == "h1" {
		// Ask, take what the stream writes at once (headers, snapshot),
		// then never read again.
		if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if n, err := io.Copy(io.Discard, conn); n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stuck stream's start: %d bytes, %v", n, err)
		}
	} else {
		// Read every frame, but never open the stream's window beyond
		// 512 bytes.
		h2cStream(t, conn, token, &reset)
	}
	synctest.Wait()
	if n := e.api.OpenStreams(); n != 2 {
		t.Fatalf("%d streams open, want the healthy and the stuck one", n)
	}

	// cutAt: the stuck stream is open until d after from, cut at d.
	cutAt := func(from time.Time, d time.Duration) {
		t.Helper()
		time.Sleep(time.Until(from.Add(d - time.Millisecond)))
		synctest.Wait()
		if n := e.api.OpenStreams(); n != 2 {
			t.Fatalf("the stuck stream was cut within %v of its write, before WriteTimeout (%v)", time.Since(from), d)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := e.api.OpenStreams(); n != 1 {
			t.Fatalf("the stuck stream was not cut WriteTimeout (%v) after its write began (%d streams open)", d, n)
		}
	}
	// The stuck stream's write of the next event is the one that blocks.
	agent := e.sim.Agent("agent-1", "")
	if _, err := agent.SendMessage(chat, strings.Repeat("x", 2000)); err != nil {
		t.Fatal(err)
	}
	healthy.waitEvent("new_event")
	cutAt(time.Now(), writeTimeout)
	if n := testutil.ToFloat64(e.api.m.streamEnds.WithLabelValues("write_failed")); n != 1 {
		t.Errorf("write_failed ends: %v, want 1", n)
	}
	if proto == "h2c" && !reset.Load() {
		t.Error("no RST_STREAM on the stuck stream")
	}
	// The session and its healthy stream go on.
	if _, err := agent.SendMessage(chat, "after"); err != nil {
		t.Fatal(err)
	}
	healthy.waitEvent("new_event")
	healthy.close()
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
