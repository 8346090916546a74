package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// streamSink receives one stream's response; every method is called on the
// connection's read goroutine, in order: headers once (unless the stream
// fails first), data zero or more times, end exactly once. The one exception
// is the end(context.Canceled) of a stream whose cancel func was called while
// no other call on that sink was in progress: cancel makes that call itself,
// on its caller's goroutine. Calls on one sink never overlap, and none follows
// end.
//
// The reader holds none of its locks during these calls, so a sink may open
// or cancel streams (its own included) from inside them; it must not call
// close, which waits for the read goroutine. A slow sink delays every stream
// of the connection, as a slow read loop would.
type streamSink interface {
	headers(status int)
	data(p []byte) // p is only valid during the call
	end(err error) // nil: the server ended the stream (END_STREAM); else why it ended (RST_STREAM with its code, GOAWAY, connection error, the conn closed)
}

// Settings and flow-control thresholds of an h2Reader.
const (
	h2StreamWindow      = 1 << 20 // SETTINGS_INITIAL_WINDOW_SIZE
	h2ConnWindow        = 1 << 30 // the connection window, raised from the protocol's 65535 at dial
	h2StreamUpdateAt    = 1 << 19 // return a stream's consumed bytes once this many are unreturned
	h2ConnUpdateAt      = 1 << 29 // the same for the connection
	h2MaxReadFrameSize  = 1 << 20
	h2MaxHeaderListSize = 1 << 16 // advertised and enforced on response header blocks
	h2MinMaxFrameSize   = 1 << 14 // the peer's SETTINGS_MAX_FRAME_SIZE can be no less: header blocks are split at it
)

// errH2Closed is why streams end, and opens fail, after h2Reader.close.
var errH2Closed = errors.New("h2reader: connection closed")

// h2Reader is a minimal HTTP/2 client connection (h2c with prior knowledge,
// no TLS) for reading many long-lived response bodies (server-sent event
// streams) over one TCP connection.
//
// It exists because the load generator measures push latency and must not
// add goroutine hand-offs of its own: each DATA frame's bytes are handed to
// the stream's sink on the connection's one read goroutine, as the direct
// baseline reads its websockets on their read loop. net/http's HTTP/2 client
// instead hands each DATA frame from its read loop through a pipe to the
// goroutine reading the response body, one more wake-up per push.
//
// Only what that needs is implemented: GET requests without a body, the
// response status and body (other response headers and trailers are
// dropped), flow control that returns consumed bytes as soon as a
// threshold is reached, and the connection-level frames (SETTINGS, PING,
// GOAWAY). There is no limit on concurrent streams beyond the server's own
// (it refuses streams over its SETTINGS_MAX_CONCURRENT_STREAMS).
type h2Reader struct {
	conn      net.Conn
	authority string
	fr        *http2.Framer // reads on the read goroutine only; writes under wmu
	readDone  chan struct{} // closed when the read goroutine has returned

	closeOnce sync.Once
	closeErr  error // of conn.Close

	wmu  sync.Mutex // serialises writes: held for a frame group and its flush
	bw   *bufio.Writer
	henc *hpack.Encoder // under wmu, with hbuf
	hbuf bytes.Buffer

	mu      sync.Mutex // guards the fields below; taken after wmu when both are held
	streams map[uint32]*h2Stream
	nextID  uint32 // the next stream id to allocate: odd, increasing
	goAway  bool   // the server sent GOAWAY: no new streams
	err     error  // non-nil: the connection is closed or broken (why); no new streams

	// The read goroutine's own.
	connUnacked uint32 // DATA bytes consumed and not yet returned on stream 0
	goAwayCode  http2.ErrCode
}

// h2Stream is one stream of an h2Reader.
type h2Stream struct {
	c     *h2Reader
	id    uint32
	sink  streamSink
	state atomic.Uint32 // h2Idle, h2Busy (|h2CancelAsked), h2Ended

	// The read goroutine's own.
	gotHeaders bool   // the final (non-1xx) response headers were delivered
	unacked    uint32 // DATA bytes consumed and not yet returned
}

// States of an h2Stream: the read goroutine moves it from idle to busy for
// the duration of a headers or data call; whoever moves it to ended makes
// the end call. cancel during a busy call only marks it (h2CancelAsked) and
// the read goroutine ends it when the call returns.
const (
	h2Idle        = 0
	h2Busy        = 1
	h2CancelAsked = 2
	h2Ended       = 4
)

// dialH2Reader connects with dial (addr is host:port), sends the preface, its SETTINGS
// (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1<<20, MAX_HEADER_LIST_SIZE 64 KiB) and a connection
// WINDOW_UPDATE raising the connection window to 1<<30, and starts the read goroutine.
// ctx bounds the dial and those writes; the connection outlives it.
func dialH2Reader(ctx context.Context, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*h2Reader, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &h2Reader{
		conn:      conn,
		authority: addr,
		readDone:  make(chan struct{}),
		bw:        bufio.NewWriterSize(conn, 16<<10),
		streams:   make(map[uint32]*h2Stream),
		nextID:    1,
	}
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(conn, 64<<10))
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(h2MaxReadFrameSize)
	c.fr.MaxHeaderListSize = h2MaxHeaderListSize
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil) // the default SETTINGS_HEADER_TABLE_SIZE, which is not changed

	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) }) // unblock the writes below
	_, err = c.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderListSize},
		)
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("h2reader: starting the connection: %w", err)
	}
	go c.readLoop()
	return c, nil
}

// open starts a GET stream for path with the given extra headers (lower-case names)
// (HEADERS with END_STREAM and END_HEADERS, split into CONTINUATIONs if large; :method GET,
// :scheme http, :authority addr, :path path). It returns a cancel func that resets the
// stream (RST_STREAM CANCEL) and calls sink.end(context.Canceled) if it has
// not ended yet; cancel is safe to call more than once and after the stream ended.
// It fails if the connection is closed or broken, or the server sent GOAWAY; when it
// fails, sink gets no calls. When it succeeds, sink.end is called exactly once.
func (c *h2Reader) open(path string, hdr [][2]string, sink streamSink) (cancel func(), err error) {
	st := &h2Stream{c: c, sink: sink}
	c.wmu.Lock()
	defer c.wmu.Unlock()

	c.mu.Lock()
	switch {
	case c.err != nil:
		err = c.err
	case c.goAway:
		err = errors.New("h2reader: the server sent GOAWAY")
	case c.nextID > 1<<31-1:
		err = errors.New("h2reader: stream ids exhausted")
	}
	if err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("h2reader: cannot open a stream: %w", err)
	}
	st.id = c.nextID
	c.nextID += 2
	c.streams[st.id] = st
	c.mu.Unlock()

	// Encoded and written under wmu, so that the HPACK encoder's state and
	// the order of stream ids on the wire are those of the allocation.
	c.hbuf.Reset()
	c.writeField(":method", "GET")
	c.writeField(":scheme", "http")
	c.writeField(":authority", c.authority)
	c.writeField(":path", path)
	for _, kv := range hdr {
		c.writeField(strings.ToLower(kv[0]), kv[1])
	}
	block := c.hbuf.Bytes()
	first := block[:min(len(block), h2MinMaxFrameSize)]
	block = block[len(first):]
	err = c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      st.id,
		BlockFragment: first,
		EndStream:     true,
		EndHeaders:    len(block) == 0,
	})
	for err == nil && len(block) > 0 {
		frag := block[:min(len(block), h2MinMaxFrameSize)]
		block = block[len(frag):]
		err = c.fr.WriteContinuation(st.id, len(block) == 0, frag)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		err = fmt.Errorf("h2reader: write: %w", err)
		c.fail(err)
		c.removeStream(st)
		if st.state.CompareAndSwap(h2Idle, h2Ended) {
			return nil, err // the sink was not called and will not be
		}
		// The read goroutine, exiting, got the stream first and ends it:
		// the stream was open, as far as the sink is concerned.
	}
	return st.cancel, nil
}

// writeField appends one header field to hbuf (under wmu).
func (c *h2Reader) writeField(name, value string) {
	_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: value}) // writes to a bytes.Buffer: no error
}

// close closes the connection, ends every open stream with an error (sink.end called once each,
// from the read goroutine as it exits), and waits for the read goroutine to return.
// It returns the error of closing the connection (nil if the read goroutine had closed it
// already). It must not be called from a sink method.
func (c *h2Reader) close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = errH2Closed
	}
	c.mu.Unlock()
	err := c.closeConn()
	<-c.readDone
	return err
}

// closeConn closes the connection once and returns the error of that Close.
func (c *h2Reader) closeConn() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// fail records err as why the connection broke (unless it had already) and
// closes it; the read goroutine then ends the streams.
func (c *h2Reader) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.closeConn()
}

// write runs fn, which writes frames with the framer, under wmu and flushes
// them. A write error breaks the connection.
func (c *h2Reader) write(fn func(fr *http2.Framer) error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := fn(c.fr)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.fail(fmt.Errorf("h2reader: write: %w", err))
	}
}

// removeStream drops st from the stream map if it is still there.
func (c *h2Reader) removeStream(st *h2Stream) {
	c.mu.Lock()
	if c.streams[st.id] == st {
		delete(c.streams, st.id)
	}
	c.mu.Unlock()
}

// cancel resets the stream and ends it with context.Canceled unless it had
// ended; see open.
func (st *h2Stream) cancel() {
	for {
		s := st.state.Load()
		if s&(h2Ended|h2CancelAsked) != 0 {
			return // ended, or being cancelled
		}
		next := uint32(h2Ended)
		if s == h2Busy {
			next = h2Busy | h2CancelAsked // the read goroutine ends it when the call returns
		}
		if st.state.CompareAndSwap(s, next) {
			c := st.c
			c.removeStream(st)
			c.mu.Lock()
			broken := c.err != nil
			c.mu.Unlock()
			if !broken {
				c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, http2.ErrCodeCancel) })
			}
			if next == h2Ended {
				st.sink.end(context.Canceled)
			}
			return
		}
	}
}

// begin reports whether the read goroutine may make a headers or data call
// (the stream has not ended); if so, it must call done after the call.
func (st *h2Stream) begin() bool {
	return st.state.CompareAndSwap(h2Idle, h2Busy)
}

// done ends a call that begin allowed; if cancel was called meanwhile, it
// ends the stream with context.Canceled.
func (st *h2Stream) done() {
	if st.state.CompareAndSwap(h2Busy, h2Idle) {
		return
	}
	st.state.Store(h2Ended) // h2Busy|h2CancelAsked: cancel left the end to us
	st.sink.end(context.Canceled)
}

// finish ends the stream with err unless it has ended (read goroutine only,
// after the stream was removed from the map).
func (st *h2Stream) finish(err error) {
	if st.state.CompareAndSwap(h2Idle, h2Ended) {
		st.sink.end(err)
	}
}

// ended reports whether the stream has ended (or is being cancelled).
func (st *h2Stream) ended() bool {
	return st.state.Load() != h2Idle
}

// readLoop is the read goroutine: it reads and handles frames until the
// connection ends, then ends every stream still open.
func (c *h2Reader) readLoop() {
	defer close(c.readDone)
	err := c.readFrames()

	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	streams := c.streams
	c.streams = nil
	c.mu.Unlock()
	c.closeConn()
	for _, st := range streams {
		st.finish(err)
	}
}

// readFrames reads and handles frames until an error that ends the
// connection, which it returns.
func (c *h2Reader) readFrames() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) { // a malformed header block: the stream only
				if st := c.take(se.StreamID); st != nil {
					c.resetStream(st, se.Code, fmt.Errorf("h2reader: bad response headers: %w", err))
				}
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return c.connError(http2.ErrCode(ce), fmt.Errorf("h2reader: %w (%v)", err, c.fr.ErrorDetail()))
			}
			c.mu.Lock()
			goAway := c.goAway
			c.mu.Unlock()
			if goAway {
				return fmt.Errorf("h2reader: read after GOAWAY (%v): %w", c.goAwayCode, err)
			}
			return fmt.Errorf("h2reader: read: %w", err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if err := c.onData(f); err != nil {
				return err
			}
		case *http2.MetaHeadersFrame:
			if err := c.onHeaders(f); err != nil {
				return err
			}
		case *http2.RSTStreamFrame:
			if st := c.take(f.StreamID); st != nil {
				st.finish(fmt.Errorf("h2reader: stream reset by the server: %w", http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}))
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			var tableSize uint32
			haveTableSize := false
			if err := f.ForeachSetting(func(s http2.Setting) error {
				if s.ID == http2.SettingHeaderTableSize {
					tableSize, haveTableSize = s.Val, true
				}
				return s.Valid()
			}); err != nil {
				return c.connError(http2.ErrCodeProtocol, fmt.Errorf("h2reader: bad SETTINGS: %w", err))
			}
			c.write(func(fr *http2.Framer) error {
				if haveTableSize { // the encoder's table; under wmu
					c.henc.SetMaxDynamicTableSizeLimit(tableSize)
				}
				return fr.WriteSettingsAck()
			})
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.write(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			c.onGoAway(f)
		case *http2.PushPromiseFrame:
			return c.connError(http2.ErrCodeProtocol, errors.New("h2reader: PUSH_PROMISE with push disabled"))
		default: // WINDOW_UPDATE (nothing is sent but HEADERS), PRIORITY, unknown
		}
	}
}

// connError sends GOAWAY with code (best effort: the connection is about to
// be closed) and returns err, to end the connection with.
func (c *h2Reader) connError(code http2.ErrCode, err error) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.write(func(fr *http2.Framer) error { return fr.WriteGoAway(0, code, nil) })
	return err
}

// lookup returns stream id's entry if it is open. It fails for a stream that
// this side never opened.
func (c *h2Reader) lookup(id uint32) (*h2Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id%2 == 0 || id >= c.nextID {
		return nil, fmt.Errorf("h2reader: frame for stream %d, which was not opened", id)
	}
	return c.streams[id], nil
}

// take removes stream id from the map and returns it, nil if not open.
func (c *h2Reader) take(id uint32) *h2Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[id]
	if st != nil {
		delete(c.streams, id)
	}
	return st
}

// resetStream ends st with err after resetting it with code (st was taken
// out of the map).
func (c *h2Reader) resetStream(st *h2Stream, code http2.ErrCode, err error) {
	c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, code) })
	st.finish(err)
}

// onData hands a DATA frame's bytes to its stream's sink and returns flow
// control credit once enough is consumed.
func (c *h2Reader) onData(f *http2.DataFrame) error {
	st, err := c.lookup(f.StreamID)
	if err != nil {
		return c.connError(http2.ErrCodeProtocol, err)
	}
	n := f.Header().Length // padding included: it counts against the windows
	var streamIncr uint32
	if st != nil {
		switch {
		case !st.gotHeaders:
			c.removeStream(st)
			c.resetStream(st, http2.ErrCodeProtocol, errors.New("h2reader: DATA before the response headers"))
		case f.StreamEnded():
			if p := f.Data(); len(p) > 0 && st.begin() {
				st.sink.data(p)
				st.done()
			}
			c.removeStream(st)
			st.finish(nil)
		default:
			if p := f.Data(); len(p) > 0 && st.begin() {
				st.sink.data(p)
				st.done()
			}
			if !st.ended() {
				st.unacked += n
				if st.unacked >= h2StreamUpdateAt {
					streamIncr, st.unacked = st.unacked, 0
				}
			}
		}
	}
	c.connUnacked += n
	var connIncr uint32
	if c.connUnacked >= h2ConnUpdateAt {
		connIncr, c.connUnacked = c.connUnacked, 0
	}
	if streamIncr > 0 || connIncr > 0 {
		c.write(func(fr *http2.Framer) error {
			if connIncr > 0 {
				if err := fr.WriteWindowUpdate(0, connIncr); err != nil {
					return err
				}
			}
			if streamIncr > 0 {
				return fr.WriteWindowUpdate(st.id, streamIncr)
			}
			return nil
		})
	}
	return nil
}

// onHeaders delivers a response's status, skips 1xx responses, and ends the
// stream at END_STREAM (on the headers or the trailers).
func (c *h2Reader) onHeaders(f *http2.MetaHeadersFrame) error {
	st, err := c.lookup(f.StreamID)
	if err != nil {
		return c.connError(http2.ErrCodeProtocol, err)
	}
	if st == nil {
		return nil // cancelled, or reset: the header block was decoded, which is all it needs
	}
	fail := func(err error) error {
		c.removeStream(st)
		c.resetStream(st, http2.ErrCodeProtocol, err)
		return nil
	}
	if f.Truncated {
		return fail(errors.New("h2reader: response header list too large"))
	}
	if st.gotHeaders { // trailers
		if !f.StreamEnded() {
			return fail(errors.New("h2reader: trailers without END_STREAM"))
		}
		c.removeStream(st)
		st.finish(nil)
		return nil
	}
	s := f.PseudoValue("status")
	status, err := strconv.Atoi(s)
	if err != nil || len(s) != 3 || status < 100 {
		return fail(fmt.Errorf("h2reader: bad response :status %q", s))
	}
	if status < 200 { // informational: the final response follows
		if f.StreamEnded() {
			return fail(fmt.Errorf("h2reader: END_STREAM on a %d response", status))
		}
		return nil
	}
	st.gotHeaders = true
	if st.begin() {
		st.sink.headers(status)
		st.done()
	}
	if f.StreamEnded() {
		c.removeStream(st)
		st.finish(nil)
	}
	return nil
}

// onGoAway ends the streams the server did not process and stops new ones;
// the others go on until the connection ends.
func (c *h2Reader) onGoAway(f *http2.GoAwayFrame) {
	c.goAwayCode = f.ErrCode
	var unprocessed []*h2Stream
	c.mu.Lock()
	c.goAway = true
	for id, st := range c.streams {
		if id > f.LastStreamID {
			delete(c.streams, id)
			unprocessed = append(unprocessed, st)
		}
	}
	c.mu.Unlock()
	for _, st := range unprocessed {
		st.finish(fmt.Errorf("h2reader: the server sent GOAWAY (%v, last stream %d) before processing stream %d", f.ErrCode, f.LastStreamID, st.id))
	}
}
