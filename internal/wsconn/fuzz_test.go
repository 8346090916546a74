package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// rawStub marks a Conn polled without a socket (consume never reads).
type rawStub struct{ syscall.RawConn }

// nopConn takes writes and closes without a peer (the frames a reader
// answers with: pongs, close frames).
type nopConn struct{ net.Conn }

func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
func (nopConn) Close() error                     { return nil }

// FuzzWSConsume holds the polled parser (consume, fed the bytes in pieces
// as reads would return them) to the goroutine reader (read, straight from
// the socket): the same messages, then the same end.
func FuzzWSConsume(f *testing.F) {
	frame := func(fr ws.Frame) []byte {
		var b bytes.Buffer
		_ = ws.WriteFrame(&b, fr)
		return b.Bytes()
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(cat(frame(ws.NewTextFrame([]byte(`{"a":1}`))), frame(ws.NewTextFrame([]byte("b")))), []byte{1, 3, 200})
	f.Add(cat(frame(ws.NewFrame(ws.OpText, false, []byte("ab"))), frame(ws.NewPingFrame([]byte("p"))),
		frame(ws.NewFrame(ws.OpContinuation, true, []byte("cd")))), []byte{2, 2, 2, 2, 2, 2, 2})
	f.Add(frame(ws.NewTextFrame(bytes.Repeat([]byte("x"), 300))), []byte{1, 1, 5})
	f.Add(frame(ws.NewTextFrame(bytes.Repeat([]byte("x"), 70000))), []byte{9, 255})
	f.Add(cat(frame(ws.NewTextFrame([]byte("x"))), frame(ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "bye")))), []byte{})
	f.Add(frame(ws.MaskFrame(ws.NewTextFrame([]byte("x")))), []byte{4})
	f.Add([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x'}, []byte{3})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		const limit = 1 << 17
		type result struct {
			msgs [][]byte
			err  error
		}
		// The goroutine way.
		g := &Conn{nc: nopConn{}, r: bytes.NewReader(data), limit: limit, pongs: make(chan struct{}, 1)}
		var want result
		for {
			m, err := g.Read()
			if err != nil {
				want.err = err
				break
			}
			want.msgs = append(want.msgs, m)
		}
		// The polled way: pieces of the sizes in cuts, each copied into a
		// scratch buffer that is overwritten after the call.
		p := &Conn{nc: nopConn{}, limit: limit, pongs: make(chan struct{}, 1)}
		p.spawn = func(f func()) { f() }
		p.raw = rawStub{}
		var got result
		scratch := make([]byte, len(data))
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) && int(cuts[i]) < n {
				n = int(cuts[i]) + 1
			}
			chunk := scratch[:copy(scratch, rest[:n])]
			rest = rest[n:]
			ok, err := p.consume(chunk, func(m []byte) bool { got.msgs = append(got.msgs, m); return true })
			for j := range chunk {
				chunk[j] = 0xEE // the loop reuses its buffer
			}
			if !ok {
				got.err = err
				break
			}
		}
		if got.err == nil {
			got.err = io.ErrUnexpectedEOF // the stream ended first: read says so too
		}
		if len(got.msgs) != len(want.msgs) {
			t.Fatalf("polled: %d messages, goroutine: %d", len(got.msgs), len(want.msgs))
		}
		for i := range got.msgs {
			if !bytes.Equal(got.msgs[i], want.msgs[i]) {
				t.Fatalf("message %d: polled %.40q, goroutine %.40q", i, got.msgs[i], want.msgs[i])
			}
		}
		if sameEnd(got.err) != sameEnd(want.err) {
			t.Fatalf("end: polled %v, goroutine %v", got.err, want.err)
		}
	})
}

// sameEnd classes how a read side ended, for FuzzWSConsume: the bytes
// ran out (any way), or the same protocol verdict.
func sameEnd(err error) string {
	var ce closeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "out of bytes"
	case errors.As(err, &ce):
		return ce.Error()
	}
	return err.Error()
}

// FuzzParseHeader holds parseHeader, the one decoder of the headers read,
// to gobwas/ws's reader on any bytes: the same header from the same
// number of bytes, "not yet" exactly when the reader runs out, and a
// 64-bit length with its top bit set as -1 where the reader refuses it.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 5})
	f.Add([]byte{0x82, 0xfe, 1, 0, 1, 2, 3, 4})
	f.Add([]byte{0x01, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x89, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9})
	f.Add([]byte{0xf1})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, ok := parseHeader(b)
		r := bytes.NewReader(b)
		want, err := ws.ReadHeader(r)
		read := len(b) - r.Len()
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if ok || n <= len(b) {
				t.Fatalf("% x: ok=%v n=%d, the reader ran out (%v)", b, ok, n, err)
			}
			return
		case errors.Is(err, ws.ErrHeaderLengthMSB):
			want.Length, want.Mask = -1, h.Mask // the reader stops before the mask
		case err != nil:
			t.Fatalf("% x: reader: %v", b, err)
		}
		if !ok || n != read {
			t.Fatalf("% x: ok=%v n=%d, the reader read %d", b, ok, n, read)
		}
		if h != want {
			t.Fatalf("% x: %+v, the reader's %+v", b, h, want)
		}
		for i := range n { // a shorter prefix is never a header
			if _, m, ok := parseHeader(b[:i]); ok || m <= i {
				t.Fatalf("% x: prefix of %d: ok=%v n=%d", b, i, ok, m)
			}
		}
	})
}
