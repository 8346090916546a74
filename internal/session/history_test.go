package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// fillThreads makes a chat with threads of the given sizes (agent messages;
// each thread after the first is opened by a message after a close).
func fillThreads(t *testing.T, e *testEnv, s *Session, sizes ...int) string {
	t.Helper()
	chat := startChat(t, s)
	agent := e.srv.Agent("agent-h", "")
	for i, n := range sizes {
		if i > 0 {
			if err := agent.CloseThread(chat); err != nil {
				t.Fatal(err)
			}
		}
		for j := range n {
			id, err := agent.SendMessage(chat, fmt.Sprintf("t%d m%d", i, j))
			if err != nil {
				t.Fatal(err)
			}
			if j%50 == 49 || j == n-1 {
				// Let the session keep up: the simulator cuts a socket
				// with more than 256 frames queued.
				waitDelivered(t, s, id)
			}
		}
	}
	return chat
}

type pageEvent struct {
	ID     string `json:"id"`
	Thread string `json:"thread"`
}

func pageEvents(t *testing.T, p HistoryPage) []pageEvent {
	t.Helper()
	b, err := json.Marshal(p.Events)
	if err != nil {
		t.Fatal(err)
	}
	var out []pageEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-history")
	// Threads oldest → newest; the first holds start_chat's empty thread.
	chat := fillThreads(t, e, s, 30, 30, 30, 30, 30)
	all := e.srv.Events(chat)
	if len(all) != 150 {
		t.Fatalf("setup: %d events", len(all))
	}
	sub := subscribe(t, s, "")

	pages := readAllPages(t, s, chat, func(i int) {
		if i == 0 {
			// A thread starts while paging: later pages must not shift.
			fillMore(t, e, chat)
		}
	})
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3 (60, 60, 30 events)", len(pages))
	}
	for i, want := range []int{60, 60, 30} {
		if len(pages[i]) != want {
			t.Fatalf("page %d: %d events, want %d", i, len(pages[i]), want)
		}
	}
	// Newest page first, oldest→newest inside: reversing the pages gives
	// the chat's events in order, each once.
	checkOrder(t, pages, all)
	// thread_summary events were emitted into the log, one per loaded thread.
	summaries := 0
	for summaries < 5 {
		if m := next(t, sub); m.Name == "thread_summary" {
			summaries++
		}
	}
}

// readAllPages pages through a chat's history until done, calling between
// after each page; it checks that a cursor comes exactly with the pages
// that are not done (API.md: so that while (cursor) ends).
func readAllPages(t *testing.T, s *Session, chat string, between func(i int)) [][]pageEvent {
	t.Helper()
	var pages [][]pageEvent
	cursor := ""
	for i := 0; ; i++ {
		if i > 40 {
			t.Fatal("too many pages")
		}
		p, err := s.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: cursor})
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		pages = append(pages, pageEvents(t, p))
		between(i)
		if p.Done {
			if p.Cursor != "" {
				t.Fatalf("page %d: done with a cursor", i)
			}
			b, err := json.Marshal(p)
			if err != nil || strings.Contains(string(b), `"cursor"`) {
				t.Fatalf("done page as JSON: %s %v", b, err)
			}
			return pages
		}
		if p.Cursor == "" {
			t.Fatalf("page %d: not done and no cursor", i)
		}
		cursor = p.Cursor
	}
}

// checkOrder checks that the pages, newest first, hold want's events once,
// in order.
func checkOrder(t *testing.T, pages [][]pageEvent, want []chatiosim.Event) {
	t.Helper()
	var got []string
	for i := len(pages) - 1; i >= 0; i-- {
		for _, ev := range pages[i] {
			got = append(got, ev.ID)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i, ev := range want {
		if got[i] != ev.ID {
			t.Fatalf("event %d: got %s want %s", i, got[i], ev.ID)
		}
	}
}

func TestHistoryManyThreads(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-history-many")
	sizes := make([]int, 28)
	for i := range sizes {
		sizes[i] = 20
	}
	chat := fillThreads(t, e, s, sizes...)
	all := e.srv.Events(chat)
	pages := readAllPages(t, s, chat, func(i int) {
		if i == 0 || i == 8 { // new threads, also right before the second batch
			fillMore(t, e, chat)
		}
	})
	var counts []int
	for _, p := range pages {
		counts = append(counts, len(p))
	}
	// Batch 1 = the 25 newest threads: 8 pages of 3 threads, 1 of the
	// rest; batch 2 = the 3 oldest threads.
	if fmt.Sprint(counts) != fmt.Sprint([]int{60, 60, 60, 60, 60, 60, 60, 60, 20, 60}) {
		t.Fatalf("page sizes %v", counts)
	}
	checkOrder(t, pages, all)
}

// fillMore opens a new thread with a few events.
func fillMore(t *testing.T, e *testEnv, chat string) {
	agent := e.srv.Agent("agent-h", "")
	if err := agent.CloseThread(chat); err != nil {
		t.Fatal(err)
	}
	for j := range 7 {
		if _, err := agent.SendMessage(chat, fmt.Sprint("late ", j)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistorySmallAndEmpty(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-history-small")
	chat := startChat(t, s)
	p, err := s.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: ""})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done || len(p.Events) != 0 {
		t.Fatalf("empty chat page %+v", p)
	}
	b, _ := json.Marshal(HistoryPage{Events: p.Events, Done: p.Done})
	if string(b) != `{"events":[],"done":true}` {
		t.Fatalf("json %s", b)
	}
	chat2 := fillThreads(t, e, s, 3, 4)
	p, err = s.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat2, Cursor: ""})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done || len(p.Events) != 7 {
		t.Fatalf("small chat page: done %v, %d events", p.Done, len(p.Events))
	}
}

func TestHistoryBadCursor(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-history-bad")
	chat := fillThreads(t, e, s, 40, 40, 40)
	other := fillThreads(t, e, s, 1)
	p, err := s.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: ""})
	if err != nil || p.Cursor == "" {
		t.Fatalf("first page: %v %+v", err, p.Done)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(p.Cursor)
	tampered := append([]byte(nil), raw...)
	tampered[3] ^= 1
	for name, c := range map[string]string{
		"garbage":    "not a cursor!",
		"empty-ish":  "AA",
		"tampered":   base64.RawURLEncoding.EncodeToString(tampered),
		"truncated":  p.Cursor[:len(p.Cursor)-2],
		"other-chat": p.Cursor, // used below with the other chat
	} {
		target := chat
		if name == "other-chat" {
			target = other
		}
		if _, err := s.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: target, Cursor: c}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Another customer's session refuses the cursor, and the upstream is
	// not asked: the cursor is bound to the token.
	thief := e.acquire(t, "tok-history-thief")
	before := e.srv.Stats().Requests
	if _, err := thief.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: p.Cursor}); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("another token's replay: %v, want ErrBadCursor", err)
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Fatalf("the upstream was asked %d times for another token's replay", n)
	}
	// A cursor from another pool with the same key is accepted (stateless).
	cfg := fastConfig()
	cfg.Upstream = s.cfg.Upstream
	cfg.CursorKey = []byte("k")
	p1 := NewPool(cfg, nil, nil)
	p2 := NewPool(cfg, nil, nil)
	s1, err := p1.Acquire(ctxT(t), "tok-history-bad")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := p2.Acquire(ctxT(t), "tok-history-bad")
	if err != nil {
		t.Fatal(err)
	}
	pa, err := s1.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: ""})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := s2.GetChatHistory(ctxT(t), op.GetChatHistory{ChatID: chat, Cursor: pa.Cursor})
	if err != nil || len(pb.Events) != 40 || !pb.Done {
		t.Fatalf("cursor across replicas: %v, %d events", err, len(pb.Events))
	}
	for _, p := range []*Pool{p1, p2} {
		if err := p.Shutdown(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}
