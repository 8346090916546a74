package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// TestStuckSubscriber: one stream of a session stops reading (its TCP
// receive window stays full) while four healthy streams of the same session
// go on. The healthy streams' latency (agent message sent → event read)
// does not move compared with a baseline measured in the same run without
// the stuck reader; memory stays bounded; the stuck stream is cut off. It
// then resumes with Last-Event-ID and gets exactly what it missed; a
// client too far behind gets a fresh connected snapshot instead.
func TestStuckSubscriber(t *testing.T) {
	const (
		healthy  = 4
		perPhase = 60
		every    = 10 * time.Millisecond
		padding  = 32 << 10
	)
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		session: func(c *session.Config) {
			c.SubscriberBuffer = 64
			// The ring keeps every message of the run (≈ 32 KiB each), so
			// that the stuck client resumes without a gap.
			c.ReplayBuffer = 4096
			c.ReplayBufferBytes = 256 << 20
			c.ReplayBudgetBytes = 1 << 30
		},
		http: func(c *httpapi.Config) {
			c.WriteTimeout = time.Second
			c.HeartbeatInterval = 500 * time.Millisecond
			c.RateLimit, c.RateBurst = 1000, 1000
		},
	})
	client := relClient(t)
	const token = "stuck-customer"
	chat := relStartChat(t, client, gw.URL, token)
	var recs []*relRecorder
	for range healthy {
		r := relRecordFrom(t, client, gw.URL, token, false, "", true)
		r.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
		recs = append(recs, r)
	}
	agent := sim.Agent("stuck-agent", "Agent")
	pad := strings.Repeat("x", padding)

	// phase sends n agent messages and returns every healthy stream's
	// latency for each.
	var allSent []string // agent event ids, in order
	phase := func(name string, n int) []time.Duration {
		sentAt := map[string]time.Time{}
		for i := range n {
			text := fmt.Sprintf("%s-%d %s", name, i, pad)
			at := time.Now()
			id, err := agent.SendMessage(chat, text)
			if err != nil {
				t.Fatal(err)
			}
			allSent = append(allSent, id)
			sentAt[id] = at
			time.Sleep(every) // the agent's pace: the load's shape, not a wait for anything
		}
		var lat []time.Duration
		for _, r := range recs {
			r.waitFor(t, name+" messages", 20*time.Second, func(ms []relMsg) bool {
				got := 0
				for _, m := range ms {
					if ne, ok := parseNewEvent(m); ok && !sentAt[ne.Event.ID].IsZero() {
						got++
					}
				}
				return got >= n
			})
			for _, m := range r.messages() {
				if ne, ok := parseNewEvent(m); ok && !sentAt[ne.Event.ID].IsZero() {
					lat = append(lat, m.At.Sub(sentAt[ne.Event.ID]))
				}
			}
		}
		return lat
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}

	base := phase("baseline", perPhase)
	heapBefore := heap()

	// The stuck reader: a raw connection with a small receive buffer that
	// sends its request and never reads. Room for a few messages, so that
	// reading up to its first event after the cut does not wait on the
	// kernel's retransmissions (with 4 KiB the kernel dropped the 32 KiB
	// segments and retransmitted with backoff: that read took seconds).
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	eventuallyE2E(t, "the stuck stream open", func() bool { return gw.API.OpenStreams() == healthy+1 })
	firstStuck := len(allSent)

	withStuck := phase("with-stuck", perPhase)
	// Keep talking until the gateway has cut the stuck stream off (its
	// kernel buffers may take a while to fill).
	cutBy := time.Now().Add(20 * time.Second)
	for n := 0; gw.API.OpenStreams() > healthy; n++ {
		if time.Now().After(cutBy) {
			t.Fatalf("stuck stream not cut off; %d streams open; cut %.0f", gw.API.OpenStreams(), metricSum(t, gw.Reg, "gateway_subscribers_cut_total"))
		}
		withStuck = append(withStuck, phase(fmt.Sprintf("fill%d", n), 20)...)
	}
	heapAfter := heap()

	p99 := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, len(s)*99/100)]
	}
	pb, ps := p99(base), p99(withStuck)
	limit := max(3*pb, pb+50*time.Millisecond)
	cutSlow := metricSum(t, gw.Reg, "gateway_subscribers_cut_total", "reason", "slow_subscriber")
	writeFailed := metricSum(t, gw.Reg, "gateway_streams_closed_total", "reason", "write_failed")
	t.Logf("healthy p99 latency: baseline %v (%d samples), with a stuck reader %v (%d samples), limit %v; "+
		"heap %d KiB → %d KiB; stuck stream cut (slow_subscriber %.0f, write_failed %.0f)",
		pb.Round(time.Microsecond), len(base), ps.Round(time.Microsecond), len(withStuck), limit.Round(time.Microsecond),
		heapBefore>>10, heapAfter>>10, cutSlow, writeFailed)
	if ps > limit {
		t.Errorf("healthy p99 %v with a stuck reader, baseline %v", ps, pb)
	}
	if cutSlow+writeFailed < 1 {
		t.Error("the stuck stream's end was not counted as a cut")
	}
	// What this run keeps on purpose: each message once in the simulator's
	// model (text and wire object) and once in the session's replay ring.
	// Anything the stuck reader held on to would come on top of that.
	kept := uint64(len(allSent)-firstStuck) * padding * 4
	if heapAfter > heapBefore+kept+32<<20 {
		t.Errorf("heap grew from %d to %d bytes; %d expected for the messages kept", heapBefore, heapAfter, kept)
	}
	for i, r := range recs {
		r.mu.Lock()
		ends := len(r.ends)
		r.mu.Unlock()
		if ends != 0 {
			t.Errorf("healthy stream %d ended", i)
		}
	}

	// What the stuck client had received, then its resumption.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, lastID := readStuck(t, conn)
	if lastID == "" {
		t.Fatal("the stuck client received no event id")
	}
	resumed := relRecordFrom(t, client, gw.URL, token, false, lastID, true)
	want := allSent[firstStuck:]
	lastWanted := want[len(want)-1]
	resumed.waitFor(t, "the last message", 10*time.Second, func(ms []relMsg) bool {
		for _, m := range ms {
			if ne, ok := parseNewEvent(m); ok && ne.Event.ID == lastWanted {
				return true
			}
		}
		return false
	})
	rm := resumed.messages()
	if len(rm) > 0 && rm[0].Event == "customer_id" {
		t.Fatal("resumed within the replay buffer, yet got a fresh snapshot")
	}
	var union []string
	for _, m := range got {
		if ne, ok := parseNewEvent(m); ok {
			union = append(union, ne.Event.ID)
		}
	}
	before := len(union)
	for _, m := range rm {
		if ne, ok := parseNewEvent(m); ok {
			union = append(union, ne.Event.ID)
		}
	}
	if strings.Join(union, " ") != strings.Join(want, " ") {
		t.Fatalf("stuck (%d) + resumed (%d) events ≠ the %d sent since it opened (exactly once, in order)", before, len(union)-before, len(want))
	}
	t.Logf("stuck client: %d events before the cut, %d replayed after resuming from id %s", before, len(union)-before, lastID)

	// Too far behind: a fresh snapshot first.
	old := strconv.FormatUint(seqOf(lastID)-1_000_000, 10)
	far := relRecordFrom(t, client, gw.URL, token, false, old, true)
	far.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
	if fm := far.messages(); fm[0].Event != "customer_id" {
		t.Fatalf("too far behind: first event %s", fm[0].Event)
	}
}

// readStuck reads, from the cut-off raw stream, the complete SSE messages
// up to and including its first new_event, and returns them with the last
// id among them. That is a prefix of what the stuck client had received:
// which prefix does not matter, the client resumes from the last id it
// read. Reading on to the end of the stream would take many seconds: the
// megabytes the gateway had queued in the kernel before the cut trickle
// through the stuck reader's small window.
func readStuck(t *testing.T, conn net.Conn) ([]relMsg, string) {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("stuck stream: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("stuck stream status %d", res.StatusCode)
	}
	// Not res.Body.Close: it would read the body to its end. The caller
	// closes conn.
	var out []relMsg
	var last string
	done := false
	err = readSSE(stopReader{res.Body, &done}, func(sm sseMessage) {
		if done || sm.Event == "" {
			return
		}
		m := relMsg{ID: sm.ID, Event: sm.Event, Data: sm.Data}
		out = append(out, m)
		if sm.ID != "" {
			last = sm.ID
		}
		if _, ok := parseNewEvent(m); ok && sm.ID != "" {
			done = true
		}
	})
	if !done {
		t.Fatalf("stuck stream: no new_event among its %d messages: %v", len(out), err)
	}
	return out, last
}

// stopReader reads r until *stop is set, then ends.
type stopReader struct {
	r    io.Reader
	stop *bool
}

func (s stopReader) Read(p []byte) (int, error) {
	if *s.stop {
		return 0, io.EOF
	}
	return s.r.Read(p)
}

func eventuallyE2E(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}
