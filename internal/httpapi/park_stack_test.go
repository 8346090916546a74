//go:build !race

// The race detector doubles the guard the runtime keeps when it halves a
// stack (1,600 bytes, not 800): a stream's stack is not halved under it.

package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// An open stream's goroutine waits shallow enough (park.go) for the GC to
// halve its stack, from the 8 KiB it grew to while the stream was set up
// to 4 KiB. Over h2c, served by x/net/http2 as cmd/gateway does, with a
// client that starts no goroutine per stream, n idle streams must hold
// less than 6 KiB of stack each: parked in the router, as before, each
// held 8 KiB.
//
// The stacks are measured in a process of their own (the test binary run
// again for this test alone): in this one, the goroutines the tests before
// left behind end and shrink while it measures.
func TestParkedStreamStackHalved(t *testing.T) {
	if os.Getenv(parkChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestParkedStreamStackHalved$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), parkChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if m := regexp.MustCompile(`\d+ idle streams: .*`).Find(out); m != nil {
			t.Log(string(m))
		}
		return
	}

	const n = 200
	e := newEnv(t, func(o *envOptions) {
		o.cfg.RateBurst = 2 * n
		o.cfg.HeartbeatInterval = time.Hour
		o.pool.MaxSubscribers = n
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: e.api.Handler(), Protocols: &protocols}
	//lint:ignore SA1019 the gateway serves HTTP/2 with x/net/http2's server (cmd/gateway/h2.go)
	if err := http2.ConfigureServer(srv, &http2.Server{MaxConcurrentStreams: 2 * n}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close(); <-served }()

	const token = "tok-parked"
	e.startChat(token) // the session is up before the baseline
	before := stackBytes()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	var wmu sync.Mutex // the framer's writes: these and the settings ack
	fr := http2.NewFramer(conn, conn)
	// Windows wide enough for every snapshot: the client never updates them.
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}) // closed once every stream has had data
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		rf := http2.NewFramer(io.Discard, conn)
		seen := make(map[uint32]bool)
		for {
			f, err := rf.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					wmu.Lock()
					_ = fr.WriteSettingsAck()
					wmu.Unlock()
				}
			case *http2.DataFrame:
				if !seen[f.StreamID] {
					seen[f.StreamID] = true
					if len(seen) == n {
						close(connected)
					}
				}
			case *http2.RSTStreamFrame:
				t.Errorf("stream %d reset: %v", f.StreamID, f.ErrCode)
			}
		}
	}()
	defer func() { _ = conn.Close(); <-readerDone }()

	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "gw"},
			{":path", "/v1/events"}, {"authorization", "Bearer " + token}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		wmu.Lock()
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(),
			EndStream: true, EndHeaders: true})
		wmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatalf("not every stream answered (%d open)", e.api.OpenStreams())
	}

	// A stream that has written its snapshot may not be parked yet: look
	// again for a while before failing.
	var per uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		per = (stackBytes() - before) / n
		if per < 6<<10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d idle streams: %d bytes of stack each", n, per)
	if per >= 6<<10 {
		t.Errorf("%d idle streams hold %d bytes of stack each, want < 6 KiB: the stream's goroutine waits too deep for its 8 KiB stack to be halved (see park.go)", n, per)
	}
}

// parkChildEnv is set for the process TestParkedStreamStackHalved measures
// in.
const parkChildEnv = "HTTPAPI_PARK_STACK_CHILD"

// stackBytes is the memory of goroutine stacks once collections no longer
// change it: each halves the stacks that can be (once: a 32 KiB stack
// takes three), and frees what the one before left.
func stackBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	var last uint64
	for range 10 {
		runtime.GC()
		rtmetrics.Read(s)
		if v := s[0].Value.Uint64(); v == last {
			break
		} else {
			last = v
		}
	}
	return last
}
