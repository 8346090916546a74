package session

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestSplitSummary(t *testing.T) {
	mk := func(counts ...int) []threadSum {
		out := make([]threadSum, len(counts))
		for i, c := range counts {
			out[i] = threadSum{id: fmt.Sprint(i), order: float64(i + 1), events: c}
		}
		return out
	}
	for _, tc := range []struct {
		counts         []int
		leftover, took int
	}{
		{nil, 0, 0},
		{[]int{10, 10}, 0, 2},         // never reaches 50: all
		{[]int{5, 30, 20}, 1, 2},      // 20+30 = 50
		{[]int{60}, 0, 1},             // one big thread
		{[]int{1, 2, 3, 50, 1}, 3, 2}, // 1+50
	} {
		l, tg := splitSummary(mk(tc.counts...))
		if len(l) != tc.leftover || len(tg) != tc.took {
			t.Errorf("%v: leftover %d, targeted %d; want %d, %d", tc.counts, len(l), len(tg), tc.leftover, tc.took)
		}
	}
}

func testSession(t *testing.T) *Session {
	p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}, CursorKey: []byte("key")}, nil, nil)
	return newSession(p, "tok")
}

func TestCursorRoundTrip(t *testing.T) {
	s := testSession(t)
	other := newSession(s.pool, "another token")
	for _, c := range []historyCursor{
		{before: 7, left: 30},
		{before: 1.5, left: 3, leftover: []threadSum{{id: "A", events: 3}, {id: "BB", events: 70}}},
	} {
		enc := s.encodeCursor("chat", c)
		got, ok := s.decodeCursor("chat", enc)
		if !ok || fmt.Sprint(got) != fmt.Sprint(c) {
			t.Fatalf("round trip %+v → %+v (%v)", c, got, ok)
		}
		if _, ok := s.decodeCursor("other", enc); ok {
			t.Fatal("accepted for another chat")
		}
		if _, ok := other.decodeCursor("chat", enc); ok {
			t.Fatal("accepted for another token")
		}
		if strings.Contains(string(mustDecode(t, enc)), "tok") {
			t.Fatal("the cursor carries the token")
		}
	}
}

func mustDecode(t *testing.T, cursor string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeCursor(f *testing.F) {
	s := testSession(&testing.T{})
	f.Add(s.encodeCursor("c", historyCursor{before: 3, left: 2, leftover: []threadSum{{id: "x", events: 1}}}))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		c, ok := s.decodeCursor("c", in)
		if ok && s.encodeCursor("c", c) != in {
			t.Fatalf("accepted a non-canonical cursor %q", in)
		}
	})
}

func TestTrackerDropsWhatGapFillDelivered(t *testing.T) {
	tr := newChatTracker()
	ev := func(chat, thread, id string, order int) chatio.Frame {
		p, _ := json.Marshal(map[string]any{"chat_id": chat, "thread_id": thread,
			"event": map[string]any{"id": id, "order": order, "type": "message", "text": "x"}})
		return chatio.Frame{Action: chatio.PushIncomingEvent, Type: chatio.TypePush, Payload: p}
	}
	d := parseWireDelivery(ev("C", "T", "E1", 1))
	if d == nil || tr.duplicate(d) {
		t.Fatal("first delivery")
	}
	tr.delivered(d)
	if !tr.duplicate(parseWireDelivery(ev("C", "T", "E1", 1))) {
		t.Fatal("repeat not detected")
	}
	if tr.duplicate(parseWireDelivery(ev("C", "T", "E2", 2))) {
		t.Fatal("new event dropped")
	}
	tk := tr.get("C", false)
	if tk.thread != "T" || tk.eventID != "E1" || tk.eventOrder != 1 {
		t.Fatalf("track %+v", tk)
	}
	// missedAfter: in the last thread, after E1 by order.
	refs := []wireEventRef{{"E1", 1, true}, {"E2", 2, true}, {"E3", 3, true}}
	if got := missedAfter(tk, true, refs); len(got) != 2 || got[0].id != "E2" {
		t.Fatalf("missed %v", got)
	}
	if got := missedAfter(tk, false, refs); len(got) != 2 { // E1 was seen
		t.Fatalf("missed in a newer thread %v", got)
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}}, zap.NewNop(), reg)
	p.m.dialFailures.WithLabelValues("network")
	p.m.dropped.WithLabelValues(reasonSlow)
	p.m.subscribersCut.WithLabelValues(reasonSlow)
	NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}}, zap.NewNop(), reg) // shares, no panic
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "reason" {
					t.Errorf("%s: label %s", mf.GetName(), l.GetName())
				}
			}
		}
	}
	for _, name := range []string{"gateway_sessions", "gateway_subscribers", "gateway_upstream_connects_total",
		"gateway_upstream_reconnects_total", "gateway_upstream_dial_failures_total", "gateway_events_published_total",
		"gateway_events_delivered_total", "gateway_events_dropped_total", "gateway_subscribers_cut_total",
		"gateway_replay_bytes"} {
		if !got[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
}
