package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// Helpers of the reliability tests (chaos_test.go, stuck_test.go,
// isolation_test.go, upstream_test.go): a stream recorder that never
// blocks and resumes with Last-Event-ID like an EventSource, plain REST
// calls, metric reads.

// TestMain fails the package when a test leaves a goroutine behind. Idle
// keep-alive connections of the shared HTTP clients are closed first: they
// are the clients', not the gateway's.
func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// relClient is an HTTP client of its own (its connections end with the
// test).
func relClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}
	c := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// relDo sends one REST request; a transport error is status 0.
func relDo(c *http.Client, method, url, token, body string) (int, http.Header, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// relStartChat starts a chat for token and returns its id.
func relStartChat(t testing.TB, c *http.Client, base, token string) string {
	t.Helper()
	st, _, b := relDo(c, "POST", base+"/v1/chats", token, `{}`)
	if st != http.StatusCreated {
		t.Fatalf("start chat for %s: %d %s", token, st, b)
	}
	var chat struct{ ID string }
	if err := json.Unmarshal(b, &chat); err != nil || chat.ID == "" {
		t.Fatalf("start chat: %s", b)
	}
	return chat.ID
}

// relMsg is one stream message as the recorder keeps it.
type relMsg struct {
	ID, Event, Data string
	At              time.Time // when it was read
	Conn            int       // which connection of the recorder (0 first)
}

// relRecorder reads one customer's event stream for the whole test,
// keeping every message. When the stream ends it reconnects with the last
// id it saw (Last-Event-ID), as EventSource does, until stopped.
type relRecorder struct {
	c       *http.Client
	url     string
	token   string
	resume  bool
	compact bool // keep only chat and event id of new_event data (big payloads)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	msgs      []relMsg
	lastID    string
	conns     int      // connections opened
	ends      []string // why each connection ended
	retries   int      // retry fields seen
	snapshots int      // connected events seen (1 for the first connection)
	failures  int      // reconnects refused
	notify    chan struct{}
}

// relRecord opens a stream for token and records it until the test ends
// (or stop). With resume, an ended stream is reopened with Last-Event-ID.
func relRecord(t testing.TB, c *http.Client, base, token string, resume bool) *relRecorder {
	t.Helper()
	return relRecordFrom(t, c, base, token, resume, "", false)
}

// relRecordFrom is relRecord whose first connection resumes from lastID
// (Last-Event-ID); compact keeps only the chat and event id of new_event
// data (for big payloads).
func relRecordFrom(t testing.TB, c *http.Client, base, token string, resume bool, lastID string, compact bool) *relRecorder {
	t.Helper()
	return newRecorder(t, c, base+"/v1/events", token, resume, lastID, compact)
}

// relRecordTicket records one stream opened with ?ticket= (no header, no
// reconnect: a ticket serves once).
func relRecordTicket(t testing.TB, c *http.Client, base, ticket string) *relRecorder {
	t.Helper()
	return newRecorder(t, c, base+"/v1/events?ticket="+ticket, "", false, "", false)
}

func newRecorder(t testing.TB, c *http.Client, url, token string, resume bool, lastID string, compact bool) *relRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &relRecorder{c: c, url: url, token: token, resume: resume, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), notify: make(chan struct{}, 1), lastID: lastID, compact: compact}
	go r.run()
	t.Cleanup(r.stop)
	return r
}

func (r *relRecorder) stop() {
	r.cancel()
	<-r.done
}

func (r *relRecorder) run() {
	defer close(r.done)
	backoff := 20 * time.Millisecond
	for r.ctx.Err() == nil {
		r.mu.Lock()
		last, conn := r.lastID, r.conns
		r.mu.Unlock()
		why := r.once(last, conn)
		r.mu.Lock()
		r.ends = append(r.ends, why)
		r.mu.Unlock()
		if !r.resume || r.ctx.Err() != nil {
			return
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// once runs one connection; it returns why it ended.
func (r *relRecorder) once(last string, conn int) string {
	req, err := http.NewRequestWithContext(r.ctx, "GET", r.url, nil)
	if err != nil {
		return err.Error()
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := r.c.Do(req)
	if err != nil {
		r.mu.Lock()
		r.failures++
		r.mu.Unlock()
		return "dial: " + err.Error()
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		r.mu.Lock()
		r.failures++
		r.mu.Unlock()
		return fmt.Sprintf("status %d %s", res.StatusCode, b)
	}
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	err = readSSE(res.Body, func(sm sseMessage) {
		if sm.Retry != "" {
			r.mu.Lock()
			r.retries++
			r.mu.Unlock()
		}
		if sm.Event == "" && sm.ID == "" && sm.Data == "" {
			return // a retry hint alone
		}
		m := relMsg{ID: sm.ID, Event: sm.Event, Data: sm.Data, At: time.Now(), Conn: conn}
		if r.compact && len(m.Data) > 512 {
			if ne, ok := parseNewEvent(m); ok {
				b, _ := json.Marshal(map[string]any{"chat": ne.Chat, "event": map[string]string{"id": ne.Event.ID, "type": ne.Event.Type}})
				m.Data = string(b)
			}
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		if m.ID != "" {
			r.lastID = m.ID
		}
		if m.Event == "connected" {
			r.snapshots++
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return "read: " + err.Error()
	}
	return "eof"
}

// messages returns a copy of what was recorded.
func (r *relRecorder) messages() []relMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relMsg(nil), r.msgs...)
}

// waitFor waits until cond holds for the recorded messages.
func (r *relRecorder) waitFor(t testing.TB, what string, within time.Duration, cond func([]relMsg) bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if cond(r.messages()) {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("stream of %s: no %s within %v", r.token, what, within)
		}
	}
}

func hasEvent(name string) func([]relMsg) bool {
	return func(ms []relMsg) bool {
		for _, m := range ms {
			if m.Event == name {
				return true
			}
		}
		return false
	}
}

// relNewEvent is the part of new_event's data the tests look at.
type relNewEvent struct {
	Chat  string `json:"chat"`
	Event struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Text   string `json:"text"`
		Author string `json:"author"`
	} `json:"event"`
}

func parseNewEvent(m relMsg) (relNewEvent, bool) {
	var ne relNewEvent
	if m.Event != "new_event" || json.Unmarshal([]byte(m.Data), &ne) != nil || ne.Event.ID == "" {
		return ne, false
	}
	return ne, true
}

// metricSum is the sum of every series of a metric family (0 when absent).
func metricSum(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// seqOf parses an SSE id (0 when it is not one).
func seqOf(id string) uint64 {
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}
