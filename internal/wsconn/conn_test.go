package wsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// wsPeer is the server end of one test websocket, driven frame by frame.
type wsPeer struct {
	t  *testing.T
	nc net.Conn
}

// rawServer accepts one websocket on 127.0.0.1 and runs serve on it. With
// ahead, the first frame goes out in the same write as the handshake's
// answer. The client is dialed with limit, over TLS (wss://) when mode
// ends in "+tls".
func rawServer(t *testing.T, mode string, limit int64, ahead []byte, serve func(p *wsPeer)) *Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme, hc := "ws", http.DefaultClient
	if strings.HasSuffix(mode, "+tls") {
		// httptest's certificate for 127.0.0.1, and a client that trusts it.
		cs := httptest.NewTLSServer(http.NotFoundHandler())
		cs.Close()
		ln = tls.NewListener(ln, &tls.Config{Certificates: cs.TLS.Certificates})
		scheme, hc = "wss", cs.Client()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		var answer bytes.Buffer
		if _, err := ws.Upgrade(struct {
			io.Reader
			io.Writer
		}{nc, &answer}); err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		if _, err := nc.Write(append(answer.Bytes(), ahead...)); err != nil {
			return
		}
		serve(&wsPeer{t: t, nc: nc})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, scheme+"://"+ln.Addr().String()+"/rtm/ws", hc, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readModes are the ways a Conn is read: by a goroutine (read) or by an
// event loop (ReadSome, through internal/netpoll), over ws:// or wss://.
var readModes = []string{"goroutine", "polled", "goroutine+tls", "polled+tls"}

// isPolled: mode reads with an event loop.
func isPolled(mode string) bool { return strings.HasPrefix(mode, "polled") }

// msgReader reads c's messages in one of readModes.
type msgReader struct {
	c    *Conn
	msgs chan []byte // polled: delivered messages, then nil after the end
	err  error       // polled: why the read side ended; set before msgs closes
}

// newReader starts reading c the given way; the polled way watches c's
// socket on a poller of its own until c has ended (closed at cleanup).
func newReader(t *testing.T, c *Conn, mode string) *msgReader {
	t.Helper()
	r := &msgReader{c: c}
	if !isPolled(mode) {
		return r
	}
	p, err := netpoll.New(1)
	if err != nil {
		t.Skipf("no poller here: %v", err)
	}
	tc, ok := c.Pollable()
	if !ok {
		t.Fatal("socket not pollable")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var spawned sync.WaitGroup
	c.SetPolled(raw, func(f func()) {
		spawned.Add(1)
		go func() {
			defer spawned.Done()
			f()
		}()
	})
	r.msgs = make(chan []byte, 64)
	ended := make(chan struct{})
	var rerr error
	readable := func(rd *netpoll.Reader) bool {
		ok, err := c.ReadSome(rd, func(m []byte) bool { r.msgs <- m; return true })
		rerr = err
		return ok
	}
	if _, err := p.Add(tc, readable, func() {
		go func() {
			c.EndPolled()
			r.err = rerr
			close(r.msgs)
			close(ended)
		}()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		<-ended
		spawned.Wait()
		_ = p.Close()
	})
	return r
}

// peerFor starts a test server running serve and a reader of the client
// end in mode. The server waits for the client's first frame ("go", sent
// once the reader is in place) before it serves: a server that speaks
// first races the handshake, and a socket read ahead on is not polled.
func peerFor(t *testing.T, mode string, limit int64, serve func(p *wsPeer)) (*Conn, *msgReader) {
	t.Helper()
	c := rawServer(t, mode, limit, nil, func(p *wsPeer) {
		if h, b := p.next(); h.OpCode != ws.OpText || string(b) != "go" {
			t.Errorf("first client frame %v %q, want text \"go\"", h.OpCode, b)
			return
		}
		serve(p)
	})
	r := newReader(t, c, mode)
	if err := c.WriteText([]byte("go"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	return c, r
}

// read returns the next message, or the error that ended the socket.
func (r *msgReader) Read() ([]byte, error) {
	if r.msgs == nil {
		return r.c.Read()
	}
	select {
	case m, ok := <-r.msgs:
		if ok {
			return m, nil
		}
		return nil, r.err
	case <-time.After(5 * time.Second):
		return nil, errors.New("test: no message within 5s")
	}
}

func frameBytes(t *testing.T, f ws.Frame) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (p *wsPeer) send(f ws.Frame) {
	if _, err := p.nc.Write(frameBytes(p.t, f)); err != nil {
		p.t.Errorf("server write: %v", err)
	}
}

// next reads one frame from the client: it must be masked; it is unmasked.
func (p *wsPeer) next() (ws.Header, []byte) {
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(p.nc)
	if err != nil {
		p.t.Errorf("server read: %v", err)
		return h, nil
	}
	b := make([]byte, h.Length)
	if _, err := io.ReadFull(p.nc, b); err != nil {
		p.t.Errorf("server read payload: %v", err)
	}
	if !h.Masked {
		p.t.Errorf("client frame %v not masked", h.OpCode)
	}
	ws.Cipher(b, h.Mask, 0)
	return h, b
}

// closeCode reads the client's close frame and returns its status.
func (p *wsPeer) closeCode() ws.StatusCode {
	h, b := p.next()
	if h.OpCode != ws.OpClose {
		p.t.Errorf("got %v, want a close frame", h.OpCode)
	}
	code, _ := ws.ParseCloseFrameData(b)
	return code
}

func TestWSReadAheadAndFragments(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) { testReadAheadAndFragments(t, mode) })
	}
}

func testReadAheadAndFragments(t *testing.T, mode string) {
	pong := make(chan []byte, 1)
	first := ws.NewTextFrame([]byte(`{"first":1}`))
	serve := func(p *wsPeer) {
		p.send(ws.NewFrame(ws.OpText, false, []byte("ab")))
		p.send(ws.NewPingFrame([]byte("hi"))) // between fragments
		p.send(ws.NewFrame(ws.OpContinuation, false, []byte("cd")))
		// The last fragment a byte at a time: headers and payloads split
		// across reads.
		for _, b := range frameBytes(p.t, ws.NewFrame(ws.OpContinuation, true, []byte("ef"))) {
			_, _ = p.nc.Write([]byte{b})
			time.Sleep(time.Millisecond)
		}
		big := bytes.Repeat([]byte("z"), 1000) // a 16-bit length, in two writes
		fb := frameBytes(p.t, ws.NewTextFrame(big))
		_, _ = p.nc.Write(fb[:3])
		time.Sleep(5 * time.Millisecond)
		_, _ = p.nc.Write(fb[3:])
		// Bigger than a poller's scratch buffer, in fragments, with the
		// next message in the same write.
		huge := bytes.Repeat([]byte("0123456789abcdef"), netpoll.ScratchSize/16*3)
		var all []byte
		all = append(all, frameBytes(p.t, ws.NewFrame(ws.OpText, false, huge[:100]))...)
		all = append(all, frameBytes(p.t, ws.NewFrame(ws.OpContinuation, true, huge[100:]))...)
		all = append(all, frameBytes(p.t, ws.NewTextFrame([]byte("last")))...)
		_, _ = p.nc.Write(all)
		h, b := p.next()
		if h.OpCode == ws.OpPong {
			pong <- b
		}
	}
	var r *msgReader
	if isPolled(mode) {
		_, r = peerFor(t, mode, 1<<20, func(p *wsPeer) { p.send(first); serve(p) })
	} else { // the first frame in the handshake's answer: read ahead
		r = newReader(t, rawServer(t, mode, 1<<20, frameBytes(t, first), serve), mode)
	}
	huge := strings.Repeat("0123456789abcdef", netpoll.ScratchSize/16*3)
	for _, want := range []string{`{"first":1}`, "abcdef", strings.Repeat("z", 1000), huge, "last"} {
		got, err := r.Read()
		if err != nil || string(got) != want {
			t.Fatalf("read = %.40q (%d bytes), %v; want %.40q (%d bytes)", got, len(got), err, want, len(want))
		}
	}
	select {
	case b := <-pong:
		if string(b) != "hi" {
			t.Errorf("pong carries %q, want the ping's %q", b, "hi")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong for the server's ping")
	}
}

func TestWSWriteAndPing(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) { testWriteAndPing(t, mode) })
	}
}

func testWriteAndPing(t *testing.T, mode string) {
	got := make(chan string, 2)
	c := rawServer(t, mode, 1<<10, nil, func(p *wsPeer) {
		h, b := p.next()
		got <- fmt.Sprint(h.OpCode) + ":" + string(b)
		h, _ = p.next()
		if h.OpCode == ws.OpPing {
			p.send(ws.NewPongFrame(nil))
		}
		h, _ = p.next() // the second ping stays unanswered
		got <- fmt.Sprint(h.OpCode)
		p.closeCode()
	})
	if err := c.WriteText([]byte(`{"action":"login"}`), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != fmt.Sprint(ws.OpText)+`:{"action":"login"}` {
		t.Errorf("server got %s", g)
	}
	r := newReader(t, c, mode)
	if !isPolled(mode) {
		go func() { // the read loop notes the pong
			for {
				if _, err := r.Read(); err != nil {
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("answered ping: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := c.Ping(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered ping: %v, want the deadline", err)
	}
	<-got
	if err := c.CloseNormal(); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteText([]byte("x"), time.Now().Add(time.Second)); err == nil {
		t.Error("a frame was written after the close frame")
	}
}

func TestWSReadErrors(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) { testReadErrors(t, mode) })
	}
}

func testReadErrors(t *testing.T, mode string) {
	for _, tc := range []struct {
		name  string
		send  []ws.Frame
		code  ws.StatusCode
		check func(error) bool
	}{
		{"too big", []ws.Frame{ws.NewTextFrame(bytes.Repeat([]byte("x"), 65))}, ws.StatusMessageTooBig,
			func(err error) bool { return errors.Is(err, errMessageTooBig) }},
		{"too big in fragments", []ws.Frame{ws.NewFrame(ws.OpText, false, bytes.Repeat([]byte("x"), 40)),
			ws.NewFrame(ws.OpContinuation, true, bytes.Repeat([]byte("x"), 40))}, ws.StatusMessageTooBig,
			func(err error) bool { return errors.Is(err, errMessageTooBig) }},
		{"masked by the server", []ws.Frame{ws.MaskFrame(ws.NewTextFrame([]byte("x")))}, ws.StatusProtocolError, nil},
		{"continuation first", []ws.Frame{ws.NewFrame(ws.OpContinuation, true, []byte("x"))}, ws.StatusProtocolError, nil},
		{"new message inside one", []ws.Frame{ws.NewFrame(ws.OpText, false, []byte("x")), ws.NewTextFrame([]byte("y"))}, ws.StatusProtocolError, nil},
		{"fragmented ping", []ws.Frame{ws.NewFrame(ws.OpPing, false, nil)}, ws.StatusProtocolError, nil},
		{"reserved bits", []ws.Frame{{Header: ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Length: 1}, Payload: []byte("x")}}, ws.StatusProtocolError, nil},
		{"peer closes", []ws.Frame{ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye"))}, 4000,
			func(err error) bool {
				var ce closeError
				return errors.As(err, &ce) && ce.code == 4000 && ce.reason == "bye"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := make(chan ws.StatusCode, 1)
			_, r := peerFor(t, mode, 64, func(p *wsPeer) {
				for _, f := range tc.send {
					p.send(f)
				}
				code <- p.closeCode()
			})
			_, err := r.Read()
			if err == nil || (tc.check != nil && !tc.check(err)) {
				t.Fatalf("read: %v", err)
			}
			select {
			case got := <-code:
				if got != tc.code {
					t.Errorf("client closed with %d, want %d", got, tc.code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no close frame from the client")
			}
		})
	}
}

// echoOnce upgrades to a websocket, reads one frame and answers
// "echo " + its payload.
var echoOnce = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	defer nc.Close()
	h, err := ws.ReadHeader(nc)
	if err != nil {
		return
	}
	b := make([]byte, h.Length)
	if _, err := io.ReadFull(nc, b); err != nil {
		return
	}
	ws.Cipher(b, h.Mask, 0)
	_ = ws.WriteFrame(nc, ws.NewTextFrame(append([]byte("echo "), b...)))
})

// wss:// works with the TLS settings of the configured HTTP client.
func TestWSDialTLS(t *testing.T) {
	srv := httptest.NewTLSServer(echoOnce)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "wss://" + strings.TrimPrefix(srv.URL, "https://") + "/rtm/ws"
	if _, err := Dial(ctx, u, http.DefaultClient, 1<<10); err == nil {
		t.Fatal("dialed a server whose certificate nobody trusts")
	}
	c, err := Dial(ctx, u, srv.Client(), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoRoundTrip(t, c)
}

// echoRoundTrip sends "hi" to an echoOnce server on c and reads its answer.
func echoRoundTrip(t *testing.T, c *Conn) {
	t.Helper()
	if err := c.WriteText([]byte("hi"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Read(); err != nil || string(got) != "echo hi" {
		t.Fatalf("read = %q, %v", got, err)
	}
}

// A refused handshake says which status the server answered.
func TestWSDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, "ws://"+strings.TrimPrefix(srv.URL, "http://")+"/rtm/ws", srv.Client(), 1<<10)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err = %v, want the 403", err)
	}
}
