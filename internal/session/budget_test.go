package session

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// The byte bounds of the replay rings and of the subscribers' queues.

// publishBig publishes event n, whose JSON data is size bytes (a string
// starting with n), as publish does once the event is encoded.
func publishBig(s *Session, n, size int) {
	tag := fmt.Sprintf(`"%d `, n)
	data := []byte(tag + strings.Repeat("x", size-len(tag)-1) + `"`)
	s.appendAll([]encoded{{name: "e", data: data}}, nil)
}

// ringHeld is what the ring of s keeps, counted from its entries: how many
// events and the bytes of their data.
func ringHeld(s *Session) (events int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.ringLen {
		bytes += int64(len(s.ring[(s.ringHead+i)%len(s.ring)].msg.Data))
	}
	return s.ringLen, bytes
}

// budgetPool is a pool without upstream.
func budgetPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	cfg.Upstream.URL = "ws://127.0.0.1:1"
	cfg.CursorKey = []byte("key")
	p := NewPool(cfg, nil, nil)
	t.Cleanup(p.cancel)
	return p
}

// One customer sending 60 messages of 900 KB: with the defaults its ring
// keeps at most 1 MiB (one of them), the pool's rings as much, and a
// subscriber that keeps up gets every one of them.
func TestReplayRingBoundedInBytes(t *testing.T) {
	p := budgetPool(t, Config{})
	s := newSession(p, "tok")
	sub := addSub(s)
	defer sub.Close()
	const size = 900 << 10
	for n := range 60 {
		publishBig(s, n, size)
		if m := next(t, sub); !strings.HasPrefix(string(m.Data), fmt.Sprintf(`"%d `, n)) || len(m.Data) != size {
			t.Fatalf("event %d: got %.10s… of %d bytes", n, m.Data, len(m.Data))
		}
		kept, bytes := ringHeld(s)
		if bytes > int64(p.cfg.ReplayBufferBytes) || kept != 1 {
			t.Fatalf("after %d events the ring keeps %d events of %d bytes (bound %d)", n+1, kept, bytes, p.cfg.ReplayBufferBytes)
		}
		if g := metricValue(p.m.replayBytes); g != float64(bytes) {
			t.Fatalf("gateway_replay_bytes %v, ring %d", g, bytes)
		}
	}
	if sub.Err() != nil {
		t.Fatalf("a subscriber that keeps up was cut: %v", sub.Err())
	}
	// The newest event is kept: a client that missed only it resumes.
	s.mu.Lock()
	last := s.seq
	s.mu.Unlock()
	r, err := s.resume(last - 1)
	if err != nil || r == nil {
		t.Fatalf("resume from the one before the newest: %v %v", r, err)
	}
	if m := next(t, r); !strings.HasPrefix(string(m.Data), `"59 `) {
		t.Fatalf("replayed %.10s…", m.Data)
	}
	r.Close()
	if r, _ := s.resume(last - 2); r != nil {
		t.Fatal("an id older than the ring resumed")
	}
	// An ended session gives its bytes back.
	s.stop(ErrSessionClosed, nil, nil)
	if g := metricValue(p.m.replayBytes); g != 0 {
		t.Fatalf("gateway_replay_bytes %v after the session ended", g)
	}
	if ex := p.budget.excess.Load(); ex != 0 {
		t.Fatalf("budget excess %d after the session ended", ex)
	}
}

// Both bounds hold: the ring drops its oldest events until the count and
// the bytes fit; an event larger than the byte bound is delivered but
// empties the ring.
func TestReplayRingCountAndBytes(t *testing.T) {
	p := budgetPool(t, Config{ReplayBuffer: 8, ReplayBufferBytes: 10_000})
	s := newSession(p, "tok")
	sub := addSub(s)
	defer sub.Close()
	for n := range 20 { // 1,000 bytes each: the count binds
		publishBig(s, n, 1000)
		next(t, sub)
	}
	if kept, bytes := ringHeld(s); kept != 8 || bytes != 8000 {
		t.Fatalf("ring keeps %d events of %d bytes, want 8 of 8000", kept, bytes)
	}
	for n := 20; n < 24; n++ { // 3,000 bytes each: the bytes bind
		publishBig(s, n, 3000)
		next(t, sub)
	}
	if kept, bytes := ringHeld(s); kept != 3 || bytes != 9000 {
		t.Fatalf("ring keeps %d events of %d bytes, want 3 of 9000", kept, bytes)
	}
	publishBig(s, 24, 10_001) // alone beyond the bound
	if m := next(t, sub); len(m.Data) != 10_001 {
		t.Fatalf("the large event was not delivered: %d bytes", len(m.Data))
	}
	if kept, bytes := ringHeld(s); kept != 0 || bytes != 0 {
		t.Fatalf("ring keeps %d events of %d bytes after an event beyond its bound", kept, bytes)
	}
	s.mu.Lock()
	cur := s.seq
	s.mu.Unlock()
	if r, _ := s.resume(cur - 1); r != nil {
		t.Fatal("resumed from before an event the ring did not keep: a silent gap")
	}
	r, err := s.resume(cur)
	if err != nil || r == nil || len(r.C()) != 0 {
		t.Fatalf("the current id must resume with nothing to replay: %v %v", r, err)
	}
	r.Close()
	for n := 25; n < 27; n++ {
		publishBig(s, n, 1000)
		next(t, sub)
	}
	if kept, bytes := ringHeld(s); kept != 2 || bytes != 2000 {
		t.Fatalf("ring keeps %d events of %d bytes, want 2 of 2000", kept, bytes)
	}
	if g := metricValue(p.m.replayBytes); g != 2000 {
		t.Fatalf("gateway_replay_bytes %v, want 2000", g)
	}
}

// The pool's rings together stay within ReplayBudgetBytes: a session
// beyond its share trims its own ring, never another's, and a session
// within its share keeps it whatever the others hold.
func TestReplayBudget(t *testing.T) {
	// 4 sessions: a share of 1,000 bytes each; 4,000 shared beyond them.
	p := budgetPool(t, Config{MaxSessions: 4, ReplayBudgetBytes: 8000, ReplayBufferBytes: 5000})
	if p.budget.share != 1000 || p.budget.shared != 4000 {
		t.Fatalf("share %d, shared %d", p.budget.share, p.budget.shared)
	}
	a, b, c := newSession(p, "a"), newSession(p, "b"), newSession(p, "c")
	for n := range 5 {
		publishBig(a, n, 1000) // a: 5,000, 4,000 beyond its share
	}
	if _, bytes := ringHeld(a); bytes != 5000 {
		t.Fatalf("a keeps %d bytes, want 5000", bytes)
	}
	publishBig(b, 0, 900) // within b's share
	publishBig(b, 1, 100)
	if _, bytes := ringHeld(b); bytes != 1000 {
		t.Fatalf("b keeps %d bytes within its share, want 1000", bytes)
	}
	// c goes beyond its share while a holds the shared part: c trims
	// itself, down to its share; a keeps what it has.
	publishBig(c, 0, 600)
	publishBig(c, 1, 600)
	if kept, bytes := ringHeld(c); kept != 1 || bytes != 600 {
		t.Fatalf("c keeps %d events of %d bytes, want its newest (600)", kept, bytes)
	}
	if _, bytes := ringHeld(a); bytes != 5000 {
		t.Fatalf("a trimmed by another session: %d bytes", bytes)
	}
	// An event beyond the share, with nothing of the budget left: not kept.
	publishBig(c, 2, 1500)
	if kept, _ := ringHeld(c); kept != 0 {
		t.Fatalf("c keeps %d events beyond its share of an exhausted budget", kept)
	}
	// a, at its own bound, drops its oldest events as it goes on; once it
	// has ended, what it held is free for c.
	publishBig(a, 5, 1000)
	if kept, bytes := ringHeld(a); kept != 5 || bytes != 5000 {
		t.Fatalf("a keeps %d events of %d bytes, want 5 of 5000", kept, bytes)
	}
	a.stop(ErrSessionClosed, nil, nil)
	publishBig(c, 3, 1500)
	if kept, bytes := ringHeld(c); kept != 1 || bytes != 1500 {
		t.Fatalf("c keeps %d events of %d bytes once a ended, want 1 of 1500", kept, bytes)
	}
	total := 0.0
	for _, s := range []*Session{b, c} {
		_, bytes := ringHeld(s)
		total += float64(bytes)
	}
	if g := metricValue(p.m.replayBytes); g != total || g > float64(p.cfg.ReplayBudgetBytes) {
		t.Fatalf("gateway_replay_bytes %v, rings %v, budget %d", g, total, p.cfg.ReplayBudgetBytes)
	}
}

// Sessions appending at once: the rings stay within the budget, and the
// accounts add up.
func TestReplayBudgetConcurrent(t *testing.T) {
	const sessions = 8
	p := budgetPool(t, Config{MaxSessions: sessions, ReplayBudgetBytes: 64 << 10, ReplayBufferBytes: 32 << 10})
	ss := make([]*Session, sessions)
	var wg sync.WaitGroup
	for i := range ss {
		ss[i] = newSession(p, fmt.Sprint("tok", i))
		wg.Go(func() {
			for n := range 300 {
				publishBig(ss[i], n, 100+(n*37+i*101)%3000)
			}
		})
	}
	wg.Wait()
	var total, excess int64
	for _, s := range ss {
		_, bytes := ringHeld(s)
		total += bytes
		excess += max(0, bytes-p.budget.share)
	}
	if total > p.cfg.ReplayBudgetBytes {
		t.Fatalf("rings hold %d bytes, budget %d", total, p.cfg.ReplayBudgetBytes)
	}
	if g := metricValue(p.m.replayBytes); g != float64(total) {
		t.Fatalf("gateway_replay_bytes %v, rings %d", g, total)
	}
	if ex := p.budget.excess.Load(); ex != excess {
		t.Fatalf("budget excess %d, rings beyond their shares %d", ex, excess)
	}
	for _, s := range ss {
		s.stop(ErrSessionClosed, nil, nil)
	}
	if g, ex := metricValue(p.m.replayBytes), p.budget.excess.Load(); g != 0 || ex != 0 {
		t.Fatalf("after the sessions ended: gateway_replay_bytes %v, excess %d", g, ex)
	}
}

// A subscriber whose queued bytes would exceed SubscriberBufferBytes is cut
// off as slow, however few events it has queued, and resumes from the ring.
func TestSlowSubscriberCutByBytes(t *testing.T) {
	p := budgetPool(t, Config{SubscriberBufferBytes: 10_000})
	s := newSession(p, "tok")
	slow, healthy := addSub(s), addSub(s)
	defer healthy.Close()
	for n := range 8 { // 3,000 bytes each: the fourth would queue 12,000
		publishBig(s, n, 3000)
		next(t, healthy)
	}
	got := waitClosed(t, slow)
	if len(got) != 3 || !errors.Is(slow.Err(), ErrSlowSubscriber) {
		t.Fatalf("slow subscriber read %d events, Err %v; want 3 and cut off", len(got), slow.Err())
	}
	if v := metricValue(p.m.subscribersCut.WithLabelValues(reasonSlow)); v != 1 {
		t.Fatalf("gateway_subscribers_cut_total{reason=slow_subscriber} %v", v)
	}
	if healthy.Err() != nil {
		t.Fatalf("the healthy subscriber was cut: %v", healthy.Err())
	}
	// It resumes after the last event it read and gets the rest.
	r, err := s.Subscribe(t.Context(), got[len(got)-1].ID)
	if err != nil || len(r.Snapshot()) != 0 {
		t.Fatalf("resume: %v, snapshot %d", err, len(r.Snapshot()))
	}
	defer r.Close()
	for n := 3; n < 8; n++ {
		if m := next(t, r); !strings.HasPrefix(string(m.Data), fmt.Sprintf(`"%d `, n)) {
			t.Fatalf("resumed %.6s…, want event %d", m.Data, n)
		}
	}
}

// The byte bound counts what waits beyond the channel, and the event the
// feeder holds; an event larger than the bound reaches an empty queue.
func TestSubscriberBytesBeyondTheChannel(t *testing.T) {
	p := budgetPool(t, Config{SubscriberBufferBytes: 8000})
	s := newSession(p, "tok")
	sub := addSub(s)
	publishBig(s, 0, 9000) // alone beyond the bound: taken
	if m := next(t, sub); len(m.Data) != 9000 || sub.Err() != nil {
		t.Fatalf("the large event: %d bytes, Err %v", len(m.Data), sub.Err())
	}
	for n := 1; n <= 9; n++ { // 1,000 bytes each: 4 in the channel, 1 held by the feeder, 3 spilled; the ninth is one too many
		publishBig(s, n, 1000)
	}
	got := waitClosed(t, sub)
	for i, m := range got {
		if !strings.HasPrefix(string(m.Data), fmt.Sprintf(`"%d `, i+1)) {
			t.Fatalf("read %.6s…, want event %d", m.Data, i+1)
		}
	}
	n := len(got)
	if n != 8 || !errors.Is(sub.Err(), ErrSlowSubscriber) {
		t.Fatalf("read %d events, Err %v; want 8 and cut off", n, sub.Err())
	}
}

// A Last-Event-ID the ring no longer keeps because of its byte bound gets
// a fresh snapshot whose connected id is the current one; one it keeps
// replays exactly the later events.
func TestResumeFromEvictedIDGetsSnapshot(t *testing.T) {
	cfg := fastConfig()
	cfg.ReplayBufferBytes = 8 << 10
	e := newEnv(t, cfg, chatiosim.Config{})
	s := e.acquire(t, "tok-evicted")
	chat := startChat(t, s)
	ref := subscribe(t, s, "")
	agent := e.srv.Agent("agent-1", "")
	var last string
	for i := range 10 { // ≈ 2 KiB each: the ring keeps the last three or so
		id, err := agent.SendMessage(chat, fmt.Sprint(i, " ", strings.Repeat("y", 2000)))
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	var all []Message // everything after the snapshot, up to the last message
	for {
		m := next(t, ref)
		all = append(all, m)
		if newEventID(t, m) == last {
			break
		}
	}
	s.mu.Lock()
	cur, kept := s.seq, s.ringLen
	s.mu.Unlock()
	_, bytes := ringHeld(s)
	if bytes > int64(cfg.ReplayBufferBytes) || kept < 2 || kept > 5 || cur != seqOf(t, all[len(all)-1]) {
		t.Fatalf("ring keeps %d events of %d bytes (bound %d), up to %d", kept, bytes, cfg.ReplayBufferBytes, cur)
	}
	oldest := cur - uint64(kept) + 1 // the oldest event kept; resumable: oldest-1 and later
	var evicted []string
	resumable := -1
	for i, m := range all {
		switch q := seqOf(t, m); {
		case q < oldest-1:
			evicted = append(evicted, m.ID)
		case q == oldest-1:
			resumable = i
		}
	}
	if len(evicted) < 5 || resumable < 0 {
		t.Fatalf("%d evicted ids, resumable at %d", len(evicted), resumable)
	}
	for _, id := range []string{evicted[0], evicted[len(evicted)-1]} {
		sub := subscribe(t, s, id)
		snap := sub.Snapshot()
		if len(snap) == 0 || snap[len(snap)-1].Name != sdk.EventConnected {
			t.Fatalf("Last-Event-ID %s (evicted): no fresh snapshot: %v", id, names(snap))
		}
		if got := seqOf(t, snap[len(snap)-1]); got != cur {
			t.Fatalf("Last-Event-ID %s: connected id %d, want %d", id, got, cur)
		}
		sub.Close()
	}
	sub := subscribe(t, s, all[resumable].ID)
	if len(sub.Snapshot()) != 0 {
		t.Fatal("snapshot for a resumable id")
	}
	for _, w := range all[resumable+1:] {
		if g := next(t, sub); g.ID != w.ID || g.Name != w.Name || string(g.Data) != string(w.Data) {
			t.Fatalf("replayed %s %s, want %s %s", g.ID, g.Name, w.ID, w.Name)
		}
	}
}

func TestByteBoundsConfig(t *testing.T) {
	base := Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}}
	for _, set := range []func(*Config){
		func(c *Config) { c.ReplayBufferBytes = -1 },
		func(c *Config) { c.ReplayBudgetBytes = -1 },
		func(c *Config) { c.SubscriberBufferBytes = -1 },
	} {
		c := base
		set(&c)
		if c.Validate() == nil {
			t.Errorf("%+v: a negative byte bound passed Validate", c)
		}
	}
	d := base.withDefaults()
	if d.ReplayBufferBytes != 1<<20 || d.ReplayBudgetBytes != 256<<20 || d.SubscriberBufferBytes != 2<<20 {
		t.Fatalf("defaults %d %d %d", d.ReplayBufferBytes, d.ReplayBudgetBytes, d.SubscriberBufferBytes)
	}
	if share := d.replayShare(); share != 13421 {
		t.Fatalf("share %d at the defaults, documented as 13 KiB", share)
	}
}
