package chatio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// wsConn is the client end of one websocket (RFC 6455, no extensions) that
// holds no buffer while idle: a frame is read straight from the socket, its
// header into a few bytes of the conn and its payload into a slice of its
// own size, and a frame is written whole in one Write. gobwas/ws does the
// handshake and the frame headers. (coder/websocket, the simulator's
// server side, keeps 8 KiB of bufio per connection for its life: with
// thousands of idle customers that was a quarter of the gateway's memory.)
//
// One goroutine reads (read); writes are serialised by wmu and bounded by a
// deadline. Closing the net.Conn ends a blocked read.
type wsConn struct {
	nc    net.Conn
	r     io.Reader // nc, after whatever the handshake read ahead
	limit int64     // largest message, in bytes
	hdr   [ws.MaxHeaderSize - 2]byte

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

// dialWS opens a websocket to u (ws:// or wss://). The TLS settings, the
// dialer and the proxy of hc's transport are used when it has them (so
// HTTPS_PROXY applies as with net/http); ctx bounds the handshake.
func dialWS(ctx context.Context, u string, hc *http.Client, limit int64) (*wsConn, error) {
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
	var status int
	d.OnStatusError = func(code int, _ []byte, _ io.Reader) { status = code }
	nc, br, _, err := d.Dial(ctx, u)
	if err != nil {
		if status != 0 {
			return nil, fmt.Errorf("websocket handshake: HTTP status %d", status)
		}
		return nil, err
	}
	c := &wsConn{nc: nc, r: nc, limit: limit, pongs: make(chan struct{}, 1)}
	if br != nil {
		// The peer spoke right after the handshake: read that first.
		ahead := make([]byte, br.Buffered())
		_, _ = io.ReadFull(br, ahead)
		ws.PutReader(br)
		c.r = io.MultiReader(bytes.NewReader(ahead), nc)
	}
	return c, nil
}

// read returns the next text or binary message, answering pings and
// noting pongs on the way. It is called by one goroutine only. A close
// frame from the peer is answered and returned as closeError.
func (c *wsConn) read() ([]byte, error) {
	var msg []byte
	inMsg := false
	for {
		h, err := ws.ReadHeaderBuffer(c.r, c.hdr[:])
		if err != nil {
			return nil, err
		}
		if h.Rsv != 0 || h.Masked || h.OpCode.IsReserved() {
			return nil, c.fail(ws.StatusProtocolError, "websocket: bad frame header")
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > 125 {
				return nil, c.fail(ws.StatusProtocolError, "websocket: bad control frame")
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.r, p); err != nil {
				return nil, err
			}
			switch h.OpCode {
			case ws.OpPing:
				if err := c.writeFrame(ws.OpPong, p, time.Now().Add(closeTimeout)); err != nil {
					return nil, err
				}
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
				_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(echo, ""), time.Now().Add(closeTimeout))
				_ = c.nc.Close()
				return nil, closeError{code: code, reason: reason}
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !inMsg, h.OpCode != ws.OpContinuation && inMsg:
			return nil, c.fail(ws.StatusProtocolError, "websocket: bad fragmentation")
		}
		inMsg = true
		if h.Length > c.limit-int64(len(msg)) {
			return nil, c.fail(ws.StatusMessageTooBig, errMessageTooBig.Error())
		}
		n := len(msg)
		msg = append(msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(c.r, msg[n:]); err != nil {
			return nil, err
		}
		if h.Fin {
			return msg, nil
		}
	}
}

// fail sends a close frame with code, closes the socket and returns the
// error to end the read with.
func (c *wsConn) fail(code ws.StatusCode, why string) error {
	_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(code, ""), time.Now().Add(closeTimeout))
	_ = c.nc.Close()
	if code == ws.StatusMessageTooBig {
		return errMessageTooBig
	}
	return errors.New(why)
}

// writeText sends one text message, bounded by deadline. A failed or
// late write closes the socket.
func (c *wsConn) writeText(b []byte, deadline time.Time) error {
	return c.writeFrame(ws.OpText, b, deadline)
}

// writeFrame writes one masked frame in one Write, after a close frame
// nothing. A write that fails (or misses its deadline) closes the socket:
// a frame may be half on the wire.
func (c *wsConn) writeFrame(op ws.OpCode, p []byte, deadline time.Time) error {
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
		_ = c.nc.Close()
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	return nil
}

// ping sends a ping and waits for a pong (any pong: one ping runs at a
// time) or ctx's end.
func (c *wsConn) ping(ctx context.Context) error {
	select { // an old pong proves nothing about now
	case <-c.pongs:
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(closeTimeout)
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

// closeNormal sends a normal close frame (the peer's answer ends the read
// loop); it does not wait.
func (c *wsConn) closeNormal() error {
	return c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""), time.Now().Add(closeTimeout))
}

// close tears the socket down at once.
func (c *wsConn) close() error { return c.nc.Close() }
