package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// h1Wait waits for the stream's end, checks the sink's contract (see
// recSink), and returns what it got.
func h1Wait(t *testing.T, s *recSink, name string) (status int, body string, err error) {
	t.Helper()
	wait(t, s.endCh, name+" to end")
	s.check(t, name)
	status, body, _, err = s.result()
	return status, body, err
}

// h1Server serves handler over HTTP/1.1 on 127.0.0.1 and returns an
// h1Reader for it.
func h1Server(t *testing.T, handler http.HandlerFunc) (*h1Reader, *http.Server) {
	t.Helper()
	if !netpoll.Supported {
		t.Skip("h1Reader needs internal/netpoll (Linux)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	var d net.Dialer
	h, err := newH1Reader(ln.Addr().String(), d.DialContext)
	if err != nil {
		t.Fatal(err)
	}
	return h, srv
}

// Many streams, each flushed in pieces, arrive whole and in order, and end
// with the last chunk; an error answer comes with its status.
func TestH1ReaderStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h, srv := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "no such stream", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for n := range 5 {
			fmt.Fprintf(w, "event: e\ndata: %s %d\n\n", r.Header.Get("X-Id"), n)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	})
	sinks := make([]*recSink, 20)
	for i := range sinks {
		sinks[i] = newRecSink()
		if _, err := h.open(context.Background(), "/events", [][2]string{{"X-Id", fmt.Sprint(i)}}, sinks[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range sinks {
		status, body, err := h1Wait(t, s, fmt.Sprint("stream ", i))
		var want strings.Builder
		for n := range 5 {
			fmt.Fprintf(&want, "event: e\ndata: %d %d\n\n", i, n)
		}
		if status != 200 || body != want.String() || err != nil {
			t.Errorf("stream %d: %d %q %v", i, status, body, err)
		}
	}
	miss := newRecSink()
	if _, err := h.open(context.Background(), "/missing", nil, miss); err != nil {
		t.Fatal(err)
	}
	if status, _, err := h1Wait(t, miss, "missing"); status != http.StatusNotFound || err != nil {
		t.Errorf("missing: %d %v", status, err)
	}
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	_ = srv.Close()
}

// cancel ends an endless stream once with context.Canceled, and the server
// sees the request end; close ends the rest the same way, and opens after
// it fail.
func TestH1ReaderCancelAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gone := make(chan struct{}, 10)
	h, srv := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		gone <- struct{}{}
	})
	a, b := newRecSink(), newRecSink()
	cancelA, err := h.open(context.Background(), "/", nil, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.open(context.Background(), "/", nil, b); err != nil {
		t.Fatal(err)
	}
	cancelA()
	cancelA()
	if _, body, err := h1Wait(t, a, "cancelled"); !errors.Is(err, context.Canceled) || body != "data: hello\n\n" && body != "" {
		t.Errorf("cancelled stream: %q %v", body, err)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the cancelled request end")
	}
	select {
	case <-b.endCh:
		t.Fatal("cancelling one stream ended another")
	default:
	}
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h1Wait(t, b, "open at close"); !errors.Is(err, context.Canceled) {
		t.Errorf("stream open at close: %v", err)
	}
	if _, err := h.open(context.Background(), "/", nil, newRecSink()); err == nil {
		t.Error("open after close succeeded")
	}
	_ = srv.Close()
}

// The response is parsed the same however the socket cuts it: every cut
// point of a chunked response with a chunk extension, a chunk split over
// the cut and a last chunk with a trailer; and bad input is refused.
func TestH1StreamParsePieces(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"d\r\ndata: hello\n\n\r\n" + "10;ext=1\r\n0123456789abcdef\r\n" + "0\r\nX-Trailer: 1\r\n\r\n"
	want := "data: hello\n\n0123456789abcdef"
	for cut := 0; cut <= len(resp); cut++ {
		for cut2 := cut; cut2 <= len(resp); cut2 += 5 {
			sink := newRecSink()
			s := &h1Stream{sink: sink}
			for _, piece := range []string{resp[:cut], resp[cut:cut2], resp[cut2:]} {
				if err := s.parse([]byte(piece)); err != nil {
					t.Fatalf("cut at %d, %d: %v", cut, cut2, err)
				}
				if s.done {
					break
				}
			}
			sink.check(t, fmt.Sprintf("cut at %d, %d", cut, cut2))
			status, body, ends, err := sink.result()
			if !s.done || ends != 1 || err != nil || status != 200 || body != want {
				t.Fatalf("cut at %d, %d: done %v, %d ends (%v), status %d, body %q", cut, cut2, s.done, ends, err, status, body)
			}
		}
	}
	for _, bad := range []string{
		"HTTX/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 abc OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1", 2000),
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Long: y\r\n", 2000),
	} {
		s := &h1Stream{sink: newRecSink()}
		if err := s.parse([]byte(bad)); err == nil {
			t.Errorf("parse(%.40q…) took it", bad)
		}
	}
}
