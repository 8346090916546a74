package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// maxH1Head bounds a response's status line and headers.
const maxH1Head = 16 << 10

// h1Reader reads event streams over HTTP/1.1, each on a socket of its own,
// on a netpoll loop: the response head and its chunked body are parsed as
// the bytes arrive, and each piece of the body goes to the stream's sink on
// the loop, as the direct clients take their pushes on their read loop and
// h2Reader takes them on its connection's read goroutine. (net/http's
// client reads each stream's body on a goroutine of its own.)
type h1Reader struct {
	addr string // host:port
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	p    *netpoll.Poller

	mu      sync.Mutex
	cancels []func()       // guarded by mu: every stream opened
	closed  bool           // guarded by mu: no more opens
	watched sync.WaitGroup // streams whose socket is still watched
}

// newH1Reader starts the loops (one per CPU).
func newH1Reader(addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*h1Reader, error) {
	p, err := netpoll.New(0)
	if err != nil {
		return nil, err
	}
	return &h1Reader{addr: addr, dial: dial, p: p}, nil
}

// close ends every stream, waits until their sockets are closed, and stops
// the loops.
func (h *h1Reader) close() error {
	h.mu.Lock()
	h.closed = true
	cancels := h.cancels
	h.cancels = nil
	h.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	h.watched.Wait()
	return h.p.Close()
}

// h1Stream is one stream of an h1Reader. Its parse state belongs to the
// loop; cancel may come from anywhere.
type h1Stream struct {
	sink     streamSink
	conn     net.Conn
	rc       syscall.RawConn
	canceled atomic.Bool
	done     bool // the sink's end has been called (loop only)

	head    []byte // the response head, until its blank line
	inBody  bool
	chunked bool
	size    int64  // body bytes left in the current chunk
	crlf    int    // bytes of a chunk's closing CRLF still to skip
	line    []byte // a chunk-size line begun in an earlier read
}

// open connects, sends GET path with the given headers, and watches the
// socket. The sink's methods are called on the loop: headers once (unless
// the stream fails first), data, and end exactly once. cancel ends the
// stream (end(context.Canceled)) unless it has ended; it is safe to call
// more than once.
func (h *h1Reader) open(ctx context.Context, path string, hdr [][2]string, sink streamSink) (cancel func(), err error) {
	conn, err := h.dial(ctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, h.addr)
	for _, kv := range hdr {
		fmt.Fprintf(&req, "%s: %s\r\n", kv[0], kv[1])
	}
	req.WriteString("\r\n")
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	sc, ok := conn.(syscall.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("h1reader: the connection has no descriptor")
	}
	s := &h1Stream{sink: sink, conn: conn}
	if s.rc, err = sc.SyscallConn(); err != nil {
		conn.Close()
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		conn.Close()
		return nil, errors.New("h1reader: closed")
	}
	h.watched.Add(1)
	if _, err := h.p.Add(sc, s.readable, func() { _ = conn.Close(); h.watched.Done() }); err != nil {
		h.watched.Done()
		conn.Close()
		return nil, err
	}
	h.cancels = append(h.cancels, s.cancel)
	return s.cancel, nil
}

// cancel shuts the socket down: the loop sees the end and ends the stream.
func (s *h1Stream) cancel() {
	if s.canceled.CompareAndSwap(false, true) {
		_ = netpoll.Shutdown(s.rc)
	}
}

// readable is the loop's: it reads what is there and parses it.
func (s *h1Stream) readable(r *netpoll.Reader) bool {
	for {
		n, err := r.Read(s.rc, r.Buf)
		if n > 0 {
			if perr := s.parse(r.Buf[:n]); perr != nil {
				s.end(perr)
				return false
			}
			if s.done {
				return false
			}
			continue
		}
		if err == nil {
			return true // nothing more for now
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a chunked stream ends with its last chunk
		}
		s.end(err)
		return false
	}
}

// end calls the sink's end once.
func (s *h1Stream) end(err error) {
	if s.done {
		return
	}
	s.done = true
	if s.canceled.Load() {
		err = context.Canceled
	}
	s.sink.end(err)
}

// parse takes the next bytes of the response.
func (s *h1Stream) parse(b []byte) error {
	if !s.inBody {
		s.head = append(s.head, b...)
		i := bytes.Index(s.head, []byte("\r\n\r\n"))
		if i < 0 {
			if len(s.head) > maxH1Head {
				return errors.New("h1reader: response head over 16 KiB")
			}
			return nil
		}
		b = s.head[i+4:]
		if err := s.parseHead(s.head[:i]); err != nil {
			return err
		}
		if s.done {
			return nil
		}
	}
	if !s.chunked {
		s.sink.data(b)
		return nil
	}
	for len(b) > 0 && !s.done {
		switch {
		case s.crlf > 0:
			k := min(s.crlf, len(b))
			s.crlf -= k
			b = b[k:]
		case s.size > 0:
			k := int(min(s.size, int64(len(b))))
			s.sink.data(b[:k])
			s.size -= int64(k)
			b = b[k:]
			if s.size == 0 {
				s.crlf = 2
			}
		default: // a chunk-size line
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(s.line)+len(b) > 1024 {
					return errors.New("h1reader: chunk-size line over 1 KiB")
				}
				s.line = append(s.line, b...)
				return nil
			}
			line := append(s.line, b[:i]...)
			b = b[i+1:]
			s.line = s.line[:0]
			line = bytes.TrimRight(line, "\r")
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil || size < 0 {
				return fmt.Errorf("h1reader: bad chunk size %q", line)
			}
			if size == 0 { // the last chunk: the stream is over (trailers ignored)
				s.end(nil)
				return nil
			}
			s.size = size
		}
	}
	return nil
}

// parseHead reads the status and the transfer coding and gives the sink
// its headers; a response that is not a chunked 200 ends there.
func (s *h1Stream) parseHead(head []byte) error {
	lines := bytes.Split(head, []byte("\r\n"))
	f := bytes.Fields(lines[0])
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/1.")) {
		return fmt.Errorf("h1reader: bad status line %q", lines[0])
	}
	status, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return fmt.Errorf("h1reader: bad status line %q", lines[0])
	}
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")) &&
			bytes.EqualFold(bytes.TrimSpace(value), []byte("chunked")) {
			s.chunked = true
		}
	}
	s.inBody = true
	s.head = nil
	s.sink.headers(status)
	if status != 200 || !s.chunked {
		s.end(nil) // an error answer, or a stream this reader cannot follow
	}
	return nil
}
