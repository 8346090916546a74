package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// streamAccessLog is the access log lines of the event streams.
func streamAccessLog(e *env) []observer.LoggedEntry {
	return e.logs.FilterMessage("http request").FilterField(zap.String("route", "/v1/events")).All()
}

// A parked stream (park.go) is logged and counted when it ends, with its
// whole duration, its status and its bytes, under its own route although
// the router's pooled routing contexts were reused meanwhile. In a
// synctest bubble: the duration logged is the stream's, to the instant.
func TestParkedStreamObservedAtEnd(t *testing.T) {
	synctest.Test(t, testParkedStreamObservedAtEnd)
}

func testParkedStreamObservedAtEnd(t *testing.T) {
	e := newBubbleEnv(t)
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	const open = time.Minute
	opened := time.Now()
	time.Sleep(open)
	for range 3 { // other requests, through the routing contexts chi pools
		expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
	}
	if n := len(streamAccessLog(e)); n != 0 {
		t.Fatalf("%d access log lines for an open stream", n)
	}
	s.close()
	synctest.Wait() // the stream's end has been handled
	if n := e.api.OpenStreams(); n != 0 {
		t.Fatalf("%d streams open after the client left", n)
	}
	logged := streamAccessLog(e)
	if len(logged) != 1 {
		t.Fatalf("%d access log lines for the stream, want 1", len(logged))
	}
	line := logged[0].ContextMap()
	if line["status"] != int64(200) || line["method"] != "GET" {
		t.Errorf("access log %v", line)
	}
	if d, _ := line["duration"].(time.Duration); d < open || d > time.Since(opened) {
		t.Errorf("logged duration %v, want the stream's (%v)", line["duration"], time.Since(opened))
	}
	if b, _ := line["bytes"].(int64); b == 0 {
		t.Errorf("logged bytes %v, want the stream's", line["bytes"])
	}
	if n := testutil.ToFloat64(e.api.m.requests.WithLabelValues("/v1/events", "GET", "200")); n != 1 {
		t.Errorf("requests counted: %v, want 1", n)
	}
	if n := testutil.ToFloat64(e.api.m.streamEnds.WithLabelValues("client_gone")); n != 1 {
		t.Errorf("client_gone ends: %v, want 1", n)
	}
	if n := testutil.ToFloat64(e.api.m.streamsOpen); n != 0 {
		t.Errorf("streams open: %v, want 0", n)
	}
}

// panicOnWrite panics at its nth Write.
type panicOnWrite struct {
	http.ResponseWriter
	n, writes int
}

func (p *panicOnWrite) Write(b []byte) (int, error) {
	if p.writes++; p.writes == p.n {
		panic("boom in the stream")
	}
	return p.ResponseWriter.Write(b)
}

func (p *panicOnWrite) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// A panic of a parked stream, once its answer has begun, is logged as
// recoverer logs a handler's and cuts the connection; the stream is
// released, logged and counted as any other.
func TestParkedStreamPanicRecovered(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.cfg.HeartbeatInterval = 50 * time.Millisecond })
	h := e.api.Handler()
	// The snapshot is the first write, the first heartbeat the second.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&panicOnWrite{ResponseWriter: w, n: 2}, r)
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer tok")
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Fatal("the stream ended cleanly, want the connection cut")
	}

	eventually(t, "the stream released", func() bool { return e.api.OpenStreams() == 0 })
	eventually(t, "the stream's access log line", func() bool {
		return len(streamAccessLog(e)) == 1
	})
	panics := e.logs.FilterMessage("handler panicked").All()
	if len(panics) != 1 {
		t.Fatalf("%d panics logged, want 1", len(panics))
	}
	m := panics[0].ContextMap()
	if m["route"] != "/v1/events" || m["panic"] != "boom in the stream" || m["request_id"] != res.Header.Get(requestIDHeader) {
		t.Errorf("panic logged as %v", m)
	}
	if n := testutil.ToFloat64(e.api.m.requests.WithLabelValues("/v1/events", "GET", "200")); n != 1 {
		t.Errorf("requests counted: %v, want 1", n)
	}
	if n := testutil.ToFloat64(e.api.m.streamsOpen); n != 0 {
		t.Errorf("streams open: %v, want 0", n)
	}
}
