package wsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// CloseTimeout bounds the writes a Conn makes of its own (a pong, a close
// frame), and a Ping whose ctx has no deadline.
const CloseTimeout = time.Second

// Conn is the client end of one websocket (RFC 6455, no extensions) that
// holds no buffer while idle: a frame is read straight from the socket, its
// header into a few bytes of the conn and its payload into a slice of its
// own size, and a frame is written whole in one Write. gobwas/ws does the
// handshake and builds the headers written; the headers read are decoded
// by parseHeader alone, whichever way the Conn is read.
//
// It is read in one of two ways, chosen once before the first read:
//   - by one goroutine calling Read, which blocks; Close ends it;
//   - polled: an event loop (internal/netpoll) calls ReadSome whenever the
//     socket has bytes, and nothing waits while it has none. Then Close only
//     shuts the socket down, the loop sees the end, and EndPolled, called
//     once the loop has let the socket go, writes the close frame owed and
//     closes the descriptor.
//
// Writes are serialised by wmu and bounded by a deadline.
type Conn struct {
	nc    net.Conn
	r     io.Reader              // nc, after whatever the handshake read ahead
	limit int64                  // largest message, in bytes
	hdr   [ws.MaxHeaderSize]byte // Read's frame header

	// The read side's state, owned by the reader (the goroutine, or the
	// loop's calls of ReadSome, which never overlap).
	msg   []byte // the fragments of a message so far
	inMsg bool   // a message's first fragment has been read

	// Polled only: set before the first ReadSome, then owned by the reader.
	raw   syscall.RawConn
	pc    *pollConn      // the socket under nc
	tls   *tls.Conn      // nc, for wss://
	part  []byte         // the start of a frame whose rest has not arrived
	owed  *ws.StatusCode // a close frame to send before the socket closes
	spawn func(func())   // runs a write off the loop (the client's goroutines)

	wmu       sync.Mutex
	closeSent bool // guarded by wmu: no frame after a close frame

	pongs chan struct{} // capacity 1: a pong arrived (read side → ping)
}

// errMessageTooBig: a message exceeded the read limit; the socket is
// closed with status 1009.
var errMessageTooBig = errors.New("websocket: message too big")

// closeError is the peer's close frame.
type closeError struct {
	code   ws.StatusCode
	reason string
}

func (e closeError) Error() string {
	return fmt.Sprintf("websocket: closed by peer: status %d %q", e.code, e.reason)
}

// Dial opens a websocket to u (ws:// or wss://) whose messages may be up to
// limit bytes. The TLS settings, the dialer and the proxy of hc's
// transport are used when it has them (so HTTPS_PROXY applies as with
// net/http); ctx bounds the handshake.
func Dial(ctx context.Context, u string, hc *http.Client, limit int64) (*Conn, error) {
	var d ws.Dialer
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if t, ok := rt.(*http.Transport); ok {
		if t.TLSClientConfig != nil {
			d.TLSConfig = t.TLSClientConfig.Clone()
			d.TLSConfig.NextProtos = nil // never h2: the upgrade is HTTP/1.1
		}
		next := (&net.Dialer{}).DialContext
		if t.DialContext != nil {
			next = t.DialContext
		}
		d.NetDial = next
		if t.Proxy != nil {
			scheme := "http"
			if strings.HasPrefix(u, "wss:") {
				scheme = "https"
			}
			d.NetDial = proxyDial(t, scheme, next)
		}
	}
	if d.NetDial == nil {
		d.NetDial = (&net.Dialer{}).DialContext
	}
	d.NetDial = pollConnDial(d.NetDial)
	var status int
	d.OnStatusError = func(code int, _ []byte, _ io.Reader) { status = code }
	nc, br, _, err := d.Dial(ctx, u)
	if err != nil {
		if status != 0 {
			return nil, fmt.Errorf("websocket handshake: HTTP status %d", status)
		}
		return nil, err
	}
	c := &Conn{nc: nc, r: nc, limit: limit, pongs: make(chan struct{}, 1)}
	if br != nil {
		// The peer spoke right after the handshake: read that first.
		ahead := make([]byte, br.Buffered())
		_, _ = io.ReadFull(br, ahead)
		ws.PutReader(br)
		c.r = io.MultiReader(bytes.NewReader(ahead), nc)
	}
	return c, nil
}

// pollConn is the TCP socket under a websocket (under its TLS for
// wss://). Until polled is set it is the socket; then its reads return
// only the bytes the event loop has read from the socket for this call
// (in), and errWouldBlock when they are used up: crypto/tls keeps a record
// it has read in part and goes on at the next call, as after a read
// deadline.
type pollConn struct {
	net.Conn
	polled bool   // set before the first polled read, then never changed
	in     []byte // polled: bytes read from the socket and not yet taken
}

func (p *pollConn) Read(b []byte) (int, error) {
	if !p.polled {
		return p.Conn.Read(b)
	}
	if len(p.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

// pollConnDial wraps the connections dial makes in pollConn.
func pollConnDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &pollConn{Conn: nc}, nil
	}
}

// errWouldBlock is a polled pollConn's "nothing more to read now": a
// timeout, so that crypto/tls does not take it for the connection's end.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "wsconn: no more bytes read by the event loop" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// Pollable returns the TCP socket an event loop can watch, under ws:// or
// wss://, when nothing was read ahead by the handshake. Anything else (a
// proxy's own connection type, say) is read by a goroutine.
func (c *Conn) Pollable() (*net.TCPConn, bool) {
	_, pc := c.layers()
	if c.r != c.nc || pc == nil {
		return nil, false
	}
	tcp, ok := pc.Conn.(*net.TCPConn)
	return tcp, ok
}

// layers are what c.nc is made of: its TLS (nil for ws://) and the
// pollConn under it (nil when the dialer's connection was not ours).
func (c *Conn) layers() (*tls.Conn, *pollConn) {
	nc := c.nc
	tc, _ := nc.(*tls.Conn)
	if tc != nil {
		nc = tc.NetConn()
	}
	pc, _ := nc.(*pollConn)
	return tc, pc
}

// SetPolled switches c to polled reads (before the first one; raw is the
// syscall.RawConn of Pollable's socket); spawn runs the writes the read
// side owes (pongs) off the loop. raw nil: back to a goroutine's reads.
func (c *Conn) SetPolled(raw syscall.RawConn, spawn func(func())) {
	c.raw, c.spawn = raw, spawn
	tc, pc := c.layers()
	if pc != nil {
		pc.polled = raw != nil
	}
	c.tls, c.pc = nil, nil
	if raw != nil {
		c.tls, c.pc = tc, pc
	}
}

// polled reports whether an event loop reads c.
func (c *Conn) polled() bool { return c.raw != nil }

// Read returns the next text or binary message, answering pings and
// noting pongs on the way. It is called by one goroutine only. A close
// frame from the peer is answered and returned as closeError.
func (c *Conn) Read() ([]byte, error) {
	for {
		h, err := c.readHeader()
		if err != nil {
			return nil, err
		}
		if err := c.check(h); err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.r, p); err != nil {
				return nil, err
			}
			if err := c.control(h.OpCode, p); err != nil {
				return nil, err
			}
			continue
		}
		n := len(c.msg)
		c.msg, c.inMsg = append(c.msg, make([]byte, h.Length)...), true
		if _, err := io.ReadFull(c.r, c.msg[n:]); err != nil {
			return nil, err
		}
		if msg := c.fragment(h.Fin); msg != nil {
			return msg, nil
		}
	}
}

// readHeader reads the next frame header from c.r into c.hdr, as many
// bytes at a time as parseHeader says the header needs.
func (c *Conn) readHeader() (ws.Header, error) {
	have, need := 0, 2
	for {
		if _, err := io.ReadFull(c.r, c.hdr[have:need]); err != nil {
			return ws.Header{}, err
		}
		h, n, ok := parseHeader(c.hdr[:need])
		if ok {
			return h, nil
		}
		have, need = need, n
	}
}

// ReadSome reads once from the polled socket with r (the loop's reader,
// into its scratch space) and hands every message completed by those bytes
// to deliver, in order. A frame that has not arrived whole waits in c.part for the next
// call. false: the socket has ended (err says why; nil when deliver said
// stop), the loop should let it go and call EndPolled.
func (c *Conn) ReadSome(r *netpoll.Reader, deliver func([]byte) bool) (bool, error) {
	buf := r.Buf
	if c.tls == nil {
		n, err := r.Read(c.raw, buf)
		if err != nil {
			return false, err
		}
		return c.consume(buf[:n], deliver)
	}
	// wss://: the socket's bytes into one half of buf, crypto/tls takes
	// them through pollConn and decrypts into the other half, until they
	// are used up (a record not yet whole waits inside crypto/tls). The
	// one write crypto/tls may make here, its answer to a peer's key
	// update that asks for one, has no deadline: a peer that asks and then
	// stops reading would hold this loop until the socket is shut down.
	half := len(buf) / 2
	n, err := r.Read(c.raw, buf[:half])
	if err != nil {
		return false, err
	}
	c.pc.in = buf[:n]
	defer func() { c.pc.in = nil }()
	plain := buf[half:]
	for {
		m, err := c.tls.Read(plain)
		if m > 0 {
			if ok, err := c.consume(plain[:m], deliver); !ok {
				return false, err
			}
		}
		switch {
		case errors.Is(err, errWouldBlock):
			return true, nil
		case err != nil:
			return false, err
		}
	}
}

// consume parses data, the bytes just read (in a buffer that is reused
// after the call), after what c.part kept; see ReadSome.
func (c *Conn) consume(data []byte, deliver func([]byte) bool) (bool, error) {
	if c.part != nil {
		c.part = append(c.part, data...)
		data = c.part
	}
	for {
		h, hn, ok := parseHeader(data)
		if !ok {
			break
		}
		if err := c.check(h); err != nil {
			return false, err
		}
		if int64(len(data)-hn) < h.Length {
			if c.part == nil { // room for the whole frame, once
				c.part = make([]byte, 0, hn+int(h.Length))
			}
			break
		}
		p := data[hn : hn+int(h.Length)]
		data = data[hn+int(h.Length):]
		if h.OpCode.IsControl() {
			if err := c.control(h.OpCode, p); err != nil {
				return false, err
			}
			continue
		}
		c.msg, c.inMsg = append(c.msg, p...), true // the message's own copy, off the scratch buffer
		if msg := c.fragment(h.Fin); msg != nil && !deliver(msg) {
			return false, nil
		}
	}
	// Keep what is left of the bytes: the start of the next frame.
	switch {
	case len(data) == 0:
		c.part = nil
	case len(c.part) > 0 && &data[0] == &c.part[len(c.part)-len(data)]:
		c.part = c.part[:copy(c.part, data)] // the rest of c.part itself
	default:
		c.part = append(c.part[:0], data...)
	}
	return true, nil
}

// parseHeader decodes the frame header at the start of b, the one decoder
// of the headers read (by Read and by ReadSome alike). n is the header's
// size; ok is false while b holds fewer bytes than that, and n is then
// the size known so far (2 until the first two bytes are in). A 64-bit
// length with its top bit set comes back as -1 (check rejects it).
func parseHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 2, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 0x07
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	l := b[1] & 0x7f
	n = 2
	switch l {
	case 126:
		n = 4
	case 127:
		n = 10
	}
	if h.Masked {
		n += 4
	}
	if len(b) < n {
		return h, n, false
	}
	switch l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		h.Length = int64(u)
		if u>>63 != 0 {
			h.Length = -1
		}
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[n-4:])
	}
	return h, n, true
}

// check rejects a frame header a client must not accept, and a message
// that would exceed the read limit, before its payload is read. It changes
// nothing: consume checks a header again each time more of its frame
// arrives.
func (c *Conn) check(h ws.Header) error {
	if h.Rsv != 0 || h.Masked || h.OpCode.IsReserved() || h.Length < 0 {
		return c.reject(ws.StatusProtocolError, "websocket: bad frame header")
	}
	if h.OpCode.IsControl() {
		if !h.Fin || h.Length > 125 {
			return c.reject(ws.StatusProtocolError, "websocket: bad control frame")
		}
		return nil
	}
	if (h.OpCode == ws.OpContinuation) != c.inMsg {
		return c.reject(ws.StatusProtocolError, "websocket: bad fragmentation")
	}
	if h.Length > c.limit-int64(len(c.msg)) {
		return c.reject(ws.StatusMessageTooBig, errMessageTooBig.Error())
	}
	return nil
}

// fragment ends a data frame whose payload is in c.msg: the whole message
// once fin, else nil.
func (c *Conn) fragment(fin bool) []byte {
	if !fin {
		return nil
	}
	msg := c.msg
	c.msg, c.inMsg = nil, false
	return msg
}

// control handles a control frame: a ping is answered (off the loop when
// polled: p may be the loop's scratch space), a pong noted, a close frame
// answered and returned as closeError.
func (c *Conn) control(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		if c.polled() {
			p := bytes.Clone(p)
			c.spawn(func() { _ = c.writeFrame(ws.OpPong, p, time.Now().Add(CloseTimeout)) })
			return nil
		}
		return c.writeFrame(ws.OpPong, p, time.Now().Add(CloseTimeout))
	case ws.OpPong:
		select {
		case c.pongs <- struct{}{}:
		default:
		}
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p)
		if code.Empty() {
			code = ws.StatusNoStatusRcvd
		}
		echo := code
		if echo == ws.StatusNoStatusRcvd {
			echo = ws.StatusNormalClosure
		}
		c.closeWith(echo)
		return closeError{code: code, reason: reason}
	}
	return nil
}

// reject refuses a frame of the peer's: it ends the connection with a
// close frame of code (closeWith) and returns the error to end the read
// with.
func (c *Conn) reject(code ws.StatusCode, why string) error {
	c.closeWith(code)
	if code == ws.StatusMessageTooBig {
		return errMessageTooBig
	}
	return errors.New(why)
}

// closeWith sends a close frame with code and closes the socket; when
// polled both wait for EndPolled, off the loop.
func (c *Conn) closeWith(code ws.StatusCode) {
	if c.polled() {
		c.owed = &code
		return
	}
	_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(code, ""), time.Now().Add(CloseTimeout))
	_ = c.nc.Close()
}

// EndPolled finishes a polled socket once its loop has let it go: the
// close frame owed, if any, then the descriptor. Not on the loop: the
// write may wait (CloseTimeout).
func (c *Conn) EndPolled() {
	if c.owed != nil {
		_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(*c.owed, ""), time.Now().Add(CloseTimeout))
	}
	_ = c.nc.Close()
}

// WriteText sends one text message, bounded by deadline. A failed or
// late write closes the socket.
func (c *Conn) WriteText(b []byte, deadline time.Time) error {
	return c.writeFrame(ws.OpText, b, deadline)
}

// writeFrame writes one masked frame in one Write, after a close frame
// nothing. A write that fails (or misses its deadline) closes the socket:
// a frame may be half on the wire.
func (c *Conn) writeFrame(op ws.OpCode, p []byte, deadline time.Time) error {
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: int64(len(p))}
	n := ws.HeaderSize(h)
	buf := make([]byte, n+len(p), max(n+len(p), ws.MaxHeaderSize))
	// The header is built in buf (io.Discard takes the copy).
	if err := ws.WriteHeaderBuffer(io.Discard, h, buf); err != nil {
		return err
	}
	copy(buf[n:], p)
	ws.Cipher(buf[n:], h.Mask, 0)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	if op == ws.OpClose {
		c.closeSent = true
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(buf)
	if err != nil {
		_ = c.Close()
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	return nil
}

// ping sends a ping and waits for a pong (any pong: one ping runs at a
// time) or ctx's end.
func (c *Conn) Ping(ctx context.Context) error {
	select { // an old pong proves nothing about now
	case <-c.pongs:
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(CloseTimeout)
	}
	if err := c.writeFrame(ws.OpPing, nil, deadline); err != nil {
		return err
	}
	select {
	case <-c.pongs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CloseNormal sends a normal close frame (the peer's answer ends the read
// loop); it does not wait.
func (c *Conn) CloseNormal() error {
	return c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""), time.Now().Add(CloseTimeout))
}

// Close tears the socket down at once: a blocked read or write returns.
// A polled socket is only shut down: its loop sees the end, and EndPolled
// closes the descriptor once the loop no longer watches it.
func (c *Conn) Close() error {
	if c.polled() {
		return netpoll.Shutdown(c.raw)
	}
	return c.nc.Close()
}
