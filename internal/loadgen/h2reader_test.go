package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2TestTimeout bounds every wait of these tests.
const h2TestTimeout = 5 * time.Second

// recSink is a streamSink that records what it gets and checks the order of
// the calls.
type recSink struct {
	mu       sync.Mutex
	status   int
	nHeaders int
	body     bytes.Buffer
	nEnds    int
	endErr   error
	bad      []string // contract violations
	inCall   atomic.Bool

	onData func(p []byte) // called from data, if set

	headersCh chan struct{} // closed at headers
	dataCh    chan struct{} // a value per data call, if buffered room
	endCh     chan struct{} // closed at the first end
}

func newRecSink() *recSink {
	return &recSink{headersCh: make(chan struct{}), dataCh: make(chan struct{}, 1), endCh: make(chan struct{})}
}

func (s *recSink) enter(what string) {
	if !s.inCall.CompareAndSwap(false, true) {
		s.violation(what + " overlaps another call")
	}
}

func (s *recSink) leave() { s.inCall.Store(false) }

func (s *recSink) violation(msg string) {
	s.mu.Lock()
	s.bad = append(s.bad, msg)
	s.mu.Unlock()
}

func (s *recSink) headers(status int) {
	s.enter("headers")
	defer s.leave()
	s.mu.Lock()
	s.nHeaders++
	s.status = status
	switch {
	case s.nHeaders > 1:
		s.bad = append(s.bad, "headers called twice")
	case s.nEnds > 0:
		s.bad = append(s.bad, "headers after end")
	}
	s.mu.Unlock()
	if s.nHeaders == 1 {
		close(s.headersCh)
	}
}

func (s *recSink) data(p []byte) {
	s.enter("data")
	defer s.leave()
	s.mu.Lock()
	if s.nHeaders == 0 {
		s.bad = append(s.bad, "data before headers")
	}
	if s.nEnds > 0 {
		s.bad = append(s.bad, "data after end")
	}
	s.body.Write(p)
	s.mu.Unlock()
	select {
	case s.dataCh <- struct{}{}:
	default:
	}
	if s.onData != nil {
		s.onData(p)
	}
}

func (s *recSink) end(err error) {
	s.enter("end")
	defer s.leave()
	s.mu.Lock()
	s.nEnds++
	if s.nEnds == 1 {
		s.endErr = err
		close(s.endCh)
	} else {
		s.bad = append(s.bad, fmt.Sprintf("end called %d times (now with %v)", s.nEnds, err))
	}
	s.mu.Unlock()
}

// result returns what the sink got.
func (s *recSink) result() (status int, body string, ends int, endErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.body.String(), s.nEnds, s.endErr
}

// check fails t if the sink saw the contract broken or was not ended once.
func (s *recSink) check(t *testing.T, name string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Errorf("%s: %s", name, b)
	}
	if s.nEnds != 1 {
		t.Errorf("%s: end called %d times, want 1", name, s.nEnds)
	}
}

// wait waits for ch to be closed (or to yield a value), failing t after h2TestTimeout.
func wait[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	timer := time.NewTimer(h2TestTimeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
	}
}

// startH2CServer serves h with prior-knowledge h2c only on 127.0.0.1 until
// the test ends.
func startH2CServer(t *testing.T, h http.Handler) (addr string, srv *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = &http.Server{Handler: h, ReadHeaderTimeout: h2TestTimeout}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return ln.Addr().String(), srv
}

// dialTestReader dials addr; the reader is closed when the test ends (if
// the test did not).
func dialTestReader(t *testing.T, addr string) *h2Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h2TestTimeout)
	defer cancel()
	var d net.Dialer
	r, err := dialH2Reader(ctx, addr, d.DialContext)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.close() })
	return r
}

// sseStart writes an event stream's response headers.
func sseStart(w http.ResponseWriter) http.Flusher {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	return fl
}

func chunkFor(id string, j int) string {
	return fmt.Sprintf("data: stream %s chunk %d\n\n", id, j)
}

func TestH2ReaderManyStreams(t *testing.T) {
	const streams, chunks = 50, 5
	addr, _ := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
			http.Error(w, "unexpected request "+r.Proto+" "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		id := r.Header.Get("x-id")
		fl := sseStart(w)
		for j := range chunks {
			time.Sleep(2 * time.Millisecond)
			io.WriteString(w, chunkFor(id, j))
			fl.Flush()
		}
	}))
	r := dialTestReader(t, addr)

	sinks := make([]*recSink, streams)
	var wg sync.WaitGroup
	for i := range streams {
		sinks[i] = newRecSink()
		wg.Add(1)
		go func() { // opens race with each other
			defer wg.Done()
			if _, err := r.open("/v1/events", [][2]string{{"x-id", strconv.Itoa(i)}, {"Accept", "text/event-stream"}}, sinks[i]); err != nil {
				t.Errorf("open %d: %v", i, err)
				sinks[i].end(err)
			}
		}()
	}
	wg.Wait()
	for i, s := range sinks {
		wait(t, s.endCh, fmt.Sprintf("stream %d to end", i))
		status, body, _, endErr := s.result()
		var want strings.Builder
		for j := range chunks {
			want.WriteString(chunkFor(strconv.Itoa(i), j))
		}
		if status != http.StatusOK || body != want.String() || endErr != nil {
			t.Errorf("stream %d: status %d, end %v, body %q; want 200, nil, %q", i, status, endErr, body, want.String())
		}
	}
	if err := r.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for i, s := range sinks {
		s.check(t, fmt.Sprint("stream ", i))
	}
}

func TestH2ReaderStatus(t *testing.T) {
	addr, _ := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such stream", http.StatusNotFound)
	}))
	r := dialTestReader(t, addr)
	s := newRecSink()
	if _, err := r.open("/nope", nil, s); err != nil {
		t.Fatal(err)
	}
	wait(t, s.endCh, "the stream to end")
	if status, body, _, err := s.result(); status != http.StatusNotFound || body != "no such stream\n" || err != nil {
		t.Errorf("got status %d, body %q, end %v; want 404, %q, nil", status, body, err, "no such stream\n")
	}
	r.close()
	s.check(t, "stream")
}

func TestH2ReaderFlowControl(t *testing.T) {
	const total = 4 << 20 // four times the stream window, and more than the server's initial connection window
	addr, _ := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := sseStart(w)
		chunk := make([]byte, 32<<10)
		for i := 0; i < total/len(chunk); i++ {
			for k := range chunk {
				chunk[k] = byte(i + k)
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			fl.Flush()
		}
	}))
	r := dialTestReader(t, addr)
	s := newRecSink()
	if _, err := r.open("/big", nil, s); err != nil {
		t.Fatal(err)
	}
	wait(t, s.endCh, "4 MiB to arrive (WINDOW_UPDATEs)")
	status, body, _, err := s.result()
	if status != http.StatusOK || err != nil || len(body) != total {
		t.Fatalf("got status %d, end %v, %d bytes; want 200, nil, %d", status, err, len(body), total)
	}
	for n := 0; n < total; n++ {
		if want := byte(n/(32<<10) + n%(32<<10)); body[n] != want {
			t.Fatalf("byte %d is %d, want %d", n, body[n], want)
		}
	}
	r.close()
	s.check(t, "stream")
}

func TestH2ReaderCancel(t *testing.T) {
	foreverDone := make(chan struct{})
	release := make(chan struct{})
	addr, _ := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := sseStart(w)
		switch r.URL.Path {
		case "/forever":
			io.WriteString(w, "hello")
			fl.Flush()
			<-r.Context().Done()
			close(foreverDone)
		case "/other":
			io.WriteString(w, "a")
			fl.Flush()
			select {
			case <-release:
				io.WriteString(w, "b")
			case <-r.Context().Done():
			}
		}
	}))
	r := dialTestReader(t, addr)
	forever, other := newRecSink(), newRecSink()
	cancel, err := r.open("/forever", nil, forever)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.open("/other", nil, other); err != nil {
		t.Fatal(err)
	}
	wait(t, forever.dataCh, "/forever's first data")
	wait(t, other.dataCh, "/other's first data")

	cancel()
	wait(t, forever.endCh, "the cancelled stream to end")
	wait(t, foreverDone, "the handler's request context to be done")
	cancel() // again: a no-op
	if _, body, _, err := forever.result(); err != context.Canceled || body != "hello" {
		t.Errorf("cancelled stream: end %v, body %q; want context.Canceled, %q", err, body, "hello")
	}

	close(release)
	wait(t, other.endCh, "the other stream to end")
	if status, body, _, err := other.result(); status != http.StatusOK || body != "ab" || err != nil {
		t.Errorf("other stream: status %d, body %q, end %v; want 200, %q, nil", status, body, err, "ab")
	}
	cancel() // after close too
	r.close()
	cancel()
	forever.check(t, "cancelled stream")
	other.check(t, "other stream")
}

// TestH2ReaderCancelRaces cancels streams while their data flows, from the
// test's goroutine and from the sink's own data call (on the read goroutine).
func TestH2ReaderCancelRaces(t *testing.T) {
	addr, _ := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl := sseStart(w)
		chunk := bytes.Repeat([]byte("x"), 1000)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			fl.Flush()
		}
	}))
	r := dialTestReader(t, addr)

	const n = 10
	var sinks []*recSink
	for i := range n {
		s := newRecSink()
		sinks = append(sinks, s)
		if i%2 == 0 { // cancelled from the test's goroutine
			cancel, err := r.open("/flood", nil, s)
			if err != nil {
				t.Fatal(err)
			}
			wait(t, s.dataCh, "data")
			cancel()
			go cancel() // racing with the first
			continue
		}
		var cancel func() // cancelled from its own data call
		var ready = make(chan struct{})
		s.onData = func([]byte) {
			<-ready
			cancel()
			cancel()
		}
		c, err := r.open("/flood", nil, s)
		if err != nil {
			t.Fatal(err)
		}
		cancel = c
		close(ready)
	}
	for i, s := range sinks {
		wait(t, s.endCh, fmt.Sprint("stream ", i, " to end"))
		if _, _, _, err := s.result(); err != context.Canceled {
			t.Errorf("stream %d ended with %v, want context.Canceled", i, err)
		}
	}
	// The connection is still good.
	s := newRecSink()
	cancel, err := r.open("/flood", nil, s)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, s.dataCh, "data after the cancels")
	cancel()
	r.close()
	for i, s := range append(sinks, s) {
		s.check(t, fmt.Sprint("stream ", i))
	}
}

func TestH2ReaderClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	handlersDone := make(chan struct{}, 10)
	addr, srv := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		<-r.Context().Done()
		handlersDone <- struct{}{}
	}))
	r := dialTestReader(t, addr)
	sinks := openStreams(t, r, 10)
	if err := r.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	// No waiting: close returns after every end call.
	for i, s := range sinks {
		if _, _, ends, err := s.result(); ends != 1 || err == nil {
			t.Errorf("stream %d after close: %d end calls (%v), want 1 with an error", i, ends, err)
		}
		s.check(t, fmt.Sprint("stream ", i))
	}
	if _, err := r.open("/forever", nil, newRecSink()); err == nil {
		t.Error("open after close succeeded")
	}
	if err := r.close(); err != nil { // again
		t.Errorf("second close: %v", err)
	}
	for range sinks {
		wait(t, handlersDone, "the handlers to see the connection gone")
	}
	srv.Close()
	goleak.VerifyNone(t, ignore)
}

// openStreams opens n streams of /forever on r and waits for their headers.
func openStreams(t *testing.T, r *h2Reader, n int) []*recSink {
	t.Helper()
	sinks := make([]*recSink, n)
	for i := range sinks {
		sinks[i] = newRecSink()
		if _, err := r.open("/forever", nil, sinks[i]); err != nil {
			t.Fatal(err)
		}
		wait(t, sinks[i].headersCh, "headers")
	}
	return sinks
}

func TestH2ReaderServerClose(t *testing.T) {
	addr, srv := startH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sseStart(w)
		<-r.Context().Done()
	}))
	r := dialTestReader(t, addr)
	sinks := openStreams(t, r, 5)
	srv.Close()
	for i, s := range sinks {
		wait(t, s.endCh, fmt.Sprint("stream ", i, " to end"))
		if _, _, _, err := s.result(); err == nil {
			t.Errorf("stream %d ended without an error", i)
		}
	}
	if _, err := r.open("/forever", nil, newRecSink()); err == nil {
		t.Error("open on a connection the server closed succeeded")
	} else {
		t.Logf("open: %v", err)
	}
	r.close()
	for i, s := range sinks {
		s.check(t, fmt.Sprint("stream ", i))
	}
}

// TestH2ReaderScripted plays a server frame by frame for what net/http's
// server does not readily send: 1xx responses, padding, trailers, PING,
// RST_STREAM, GOAWAY.
func TestH2ReaderScripted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type peer struct {
		conn net.Conn
		fr   *http2.Framer
		bw   *bufio.Writer
	}
	accepted := make(chan peer, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		bw := bufio.NewWriter(conn)
		fr := http2.NewFramer(bw, conn)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		accepted <- peer{conn, fr, bw}
	}()
	r := dialTestReader(t, ln.Addr().String())
	var p peer
	select {
	case p = <-accepted:
	case <-time.After(h2TestTimeout):
		t.Fatal("no connection")
	}
	defer p.conn.Close()
	_ = p.conn.SetDeadline(time.Now().Add(h2TestTimeout))

	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(p.conn, preface); err != nil || string(preface) != http2.ClientPreface {
		t.Fatalf("preface %q, %v", preface, err)
	}
	// The peer's frames, in the order they come; fails t on a read error.
	next := func() http2.Frame {
		t.Helper()
		f, err := p.fr.ReadFrame()
		if err != nil {
			t.Fatalf("server read: %v", err)
		}
		return f
	}
	flush := func() {
		t.Helper()
		if err := p.bw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if sf, ok := next().(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want SETTINGS", sf)
	} else {
		if v, _ := sf.Value(http2.SettingEnablePush); v != 0 {
			t.Errorf("ENABLE_PUSH %d", v)
		}
		if v, _ := sf.Value(http2.SettingInitialWindowSize); v != 1<<20 {
			t.Errorf("INITIAL_WINDOW_SIZE %d", v)
		}
	}
	if wu, ok := next().(*http2.WindowUpdateFrame); !ok || wu.StreamID != 0 || wu.Increment != 1<<30-65535 {
		t.Fatalf("second frame %v, want the connection's WINDOW_UPDATE", wu)
	}
	p.fr.WriteSettings()
	p.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	flush()
	if f, ok := next().(*http2.SettingsFrame); !ok || !f.IsAck() {
		t.Fatalf("got %v, want the SETTINGS ack", f)
	}
	if f, ok := next().(*http2.PingFrame); !ok || !f.IsAck() || f.Data != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} {
		t.Fatalf("got %v, want the PING ack", f)
	}

	// Four streams: 1 gets a 103, a padded body and trailers; 3 is reset;
	// 5 goes on after GOAWAY; 7 is beyond GOAWAY's last stream.
	sinks := make([]*recSink, 4)
	for i := range sinks {
		sinks[i] = newRecSink()
		if _, err := r.open("/s"+strconv.Itoa(i), [][2]string{{"x-n", strconv.Itoa(i)}}, sinks[i]); err != nil {
			t.Fatal(err)
		}
		f, ok := next().(*http2.MetaHeadersFrame)
		if !ok || f.StreamID != uint32(2*i+1) || !f.StreamEnded() || !f.HeadersEnded() {
			t.Fatalf("got %v, want HEADERS for stream %d with END_STREAM", f, 2*i+1)
		}
		want := map[string]string{":method": "GET", ":scheme": "http", ":authority": ln.Addr().String(), ":path": "/s" + strconv.Itoa(i), "x-n": strconv.Itoa(i)}
		for _, hf := range f.Fields {
			if want[hf.Name] != hf.Value {
				t.Errorf("stream %d: header %s: %q, want %q", f.StreamID, hf.Name, hf.Value, want[hf.Name])
			}
			delete(want, hf.Name)
		}
		if len(want) > 0 {
			t.Errorf("stream %d: missing headers %v", f.StreamID, want)
		}
	}
	var hbuf bytes.Buffer
	henc := hpack.NewEncoder(&hbuf)
	writeHeaders := func(id uint32, end bool, fields ...string) {
		hbuf.Reset()
		for i := 0; i < len(fields); i += 2 {
			henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: end, EndHeaders: true})
	}
	writeHeaders(1, false, ":status", "103", "link", "</x>")
	writeHeaders(1, false, ":status", "200")
	p.fr.WriteDataPadded(1, false, []byte("padded"), make([]byte, 100))
	writeHeaders(1, true, "x-trailer", "t")
	writeHeaders(3, false, ":status", "200")
	p.fr.WriteRSTStream(3, http2.ErrCodeEnhanceYourCalm)
	writeHeaders(5, false, ":status", "200")
	p.fr.WriteGoAway(5, http2.ErrCodeNo, nil) // 7 gets nothing
	flush()
	wait(t, sinks[3].endCh, "stream 7 to end")
	if _, _, _, err := sinks[3].result(); err == nil || !strings.Contains(err.Error(), "GOAWAY") {
		t.Errorf("stream 7 ended with %v, want a GOAWAY error", err)
	}
	if _, err := r.open("/after", nil, newRecSink()); err == nil {
		t.Error("open after GOAWAY succeeded")
	}
	p.fr.WriteData(5, true, []byte("late"))
	flush()

	wait(t, sinks[0].endCh, "stream 1 to end")
	if status, body, _, err := sinks[0].result(); status != 200 || body != "padded" || err != nil {
		t.Errorf("stream 1: status %d, body %q, end %v; want 200, %q, nil", status, body, err, "padded")
	}
	wait(t, sinks[1].endCh, "stream 3 to end")
	var se http2.StreamError
	if _, _, _, err := sinks[1].result(); !errors.As(err, &se) || se.Code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("stream 3 ended with %v, want a reset with ENHANCE_YOUR_CALM", err)
	}
	wait(t, sinks[2].endCh, "stream 5 to end")
	if status, body, _, err := sinks[2].result(); status != 200 || body != "late" || err != nil {
		t.Errorf("stream 5: status %d, body %q, end %v; want 200, %q, nil", status, body, err, "late")
	}
	if err := r.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for i, s := range sinks {
		s.check(t, fmt.Sprint("stream ", 2*i+1))
	}
}
