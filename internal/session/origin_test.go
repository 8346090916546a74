package session

import (
	"encoding/json"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// A call's result reaches the log as what every stream gets (what the SDK
// emits for its own call) and what the other tabs get, the latter tagged
// with the calling instance's Origin, live and on replay; a call without
// an instance tags nothing; a push is never tagged.
func TestCallResultOrigin(t *testing.T) {
	env := newEnv(t, fastConfig(), chatiosim.Config{})
	s := env.acquire(t, "tok-origin")
	sub := subscribe(t, s, "")

	tabA := OriginOf("tab-a")
	if tabA == 0 || tabA == OriginOf("tab-b") || OriginOf("") != 0 {
		t.Fatalf("OriginOf: a %x, b %x, empty %x", tabA, OriginOf("tab-b"), OriginOf(""))
	}
	ctxA := WithOrigin(ctxT(t), tabA)

	res, err := s.Run(ctxA, op.Call{Args: op.StartChat{}})
	if err != nil {
		t.Fatalf("startChat: %v", err)
	}
	var chat struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(res, &chat); err != nil || chat.ID == "" {
		t.Fatalf("startChat resolved %s (%v)", res, err)
	}
	// startChat: user_data and thread_summary are what the calling SDK
	// emits for its own call: tagged for tab a's streams (and those
	// without an instance), not tab b's.
	var before string // an id before tab a's send_event
	for _, m := range until(t, sub, sdk.EventThreadSummary) {
		before = m.ID
		if m.Origin != tabA|originOwn || !m.Origin.Admits(tabA) || !m.Origin.Admits(0) || m.Origin.Admits(OriginOf("tab-b")) {
			t.Fatalf("startChat's %s: origin %s, want tab a's own (%s)", m.Name, m.Origin, tabA|originOwn)
		}
	}

	msg := json.RawMessage(`{"type":"message","text":"from tab a"}`)
	if _, err := s.Run(ctxA, op.Call{Args: op.SendEvent{ChatID: chat.ID, Event: msg}}); err != nil {
		t.Fatalf("sendEvent from a: %v", err)
	}
	own := until(t, sub, sdk.EventNewEvent)
	ownMsg := own[len(own)-1]
	if ownMsg.Origin != tabA {
		t.Fatalf("new_event of tab a's call: origin %s, want %s", ownMsg.Origin, tabA)
	}

	// Without an instance: untagged, as before.
	if _, err := s.Run(ctxT(t), op.Call{Args: op.SendEvent{ChatID: chat.ID, Event: msg}}); err != nil {
		t.Fatalf("sendEvent without instance: %v", err)
	}
	plain := until(t, sub, sdk.EventNewEvent)
	if o := plain[len(plain)-1].Origin; o != 0 {
		t.Fatalf("new_event of an untagged call: origin %s", o)
	}

	// The agent's answer is a push: untagged.
	if _, err := env.srv.Agent("agent-o", "").SendMessage(chat.ID, "agent here"); err != nil {
		t.Fatal(err)
	}
	for {
		m := next(t, sub)
		if m.Name == sdk.EventNewEvent {
			if m.Origin != 0 {
				t.Fatalf("agent's new_event: origin %s", m.Origin)
			}
			break
		}
	}

	// Replay from the ring keeps the tag.
	again := subscribe(t, s, before)
	for {
		m := next(t, again)
		if m.ID == ownMsg.ID {
			if m.Origin != tabA {
				t.Fatalf("replayed new_event: origin %s, want %s", m.Origin, tabA)
			}
			break
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for _, id := range []string{"a", "tab-b", "0f3c2a8e-1d4b-4e8f-9a7c-3b2d1e0f9a8b"} {
		for _, o := range []Origin{OriginOf(id), OriginOf(id) | originOwn, OriginOf(id) | originOthers} {
			if parseOrigin(o.String()) != o {
				t.Fatalf("parseOrigin(%q) != %x", o.String(), o)
			}
		}
	}
	for _, bad := range []string{"", "xyz", "12345678901234567", "-1"} {
		if o := parseOrigin(bad); o != 0 {
			t.Fatalf("parseOrigin(%q) = %x, want 0", bad, o)
		}
	}
}

// TestOriginAdmits: which streams get an event, by its tag and the
// stream's instance (Origin's doc): each instance what its SDK would emit,
// a stream without an instance what it always got.
func TestOriginAdmits(t *testing.T) {
	a, b := OriginOf("tab-a"), OriginOf("tab-b")
	if a&originKind != 0 || b&originKind != 0 {
		t.Fatalf("OriginOf sets a kind bit: %x %x", a, b)
	}
	for _, c := range []struct {
		what             string
		tag              Origin
		none, tabA, tabB bool
	}{
		{"a push", 0, true, true, true},
		{"a's result push for the other tabs", a, true, false, true},
		{"what a's SDK emits for its call", a | originOwn, true, true, false},
		{"the user_data of a's result push for the other tabs", a | originOthers, false, false, true},
	} {
		if got := [3]bool{c.tag.Admits(0), c.tag.Admits(a), c.tag.Admits(b)}; got != [3]bool{c.none, c.tabA, c.tabB} {
			t.Errorf("%s: admitted by (no instance, a, b) %v, want %v", c.what, got, [3]bool{c.none, c.tabA, c.tabB})
		}
	}
}

// TestLookupEventsOwnOnly: the user_data of a lookup (getChatThreads) and
// the thread_summary of a history page are what the calling SDK emits
// for its own call: tagged for the caller, not for the other tabs.
func TestLookupEventsOwnOnly(t *testing.T) {
	env := newEnv(t, fastConfig(), chatiosim.Config{})
	s := env.acquire(t, "tok-lookup")
	res, err := s.Run(ctxT(t), op.Call{Args: op.StartChat{}})
	if err != nil {
		t.Fatalf("startChat: %v", err)
	}
	var chat struct {
		ID      string   `json:"id"`
		Threads []string `json:"threads"`
	}
	if err := json.Unmarshal(res, &chat); err != nil || len(chat.Threads) == 0 {
		t.Fatalf("startChat resolved %s (%v)", res, err)
	}
	sub := subscribe(t, s, "")
	tabA := OriginOf("tab-a")
	if _, err := s.Run(WithOrigin(ctxT(t), tabA), op.Call{Args: op.GetChatThreads{ChatID: chat.ID, ThreadIDs: chat.Threads}}); err != nil {
		t.Fatalf("getChatThreads: %v", err)
	}
	for _, m := range until(t, sub, sdk.EventUserData) {
		if m.Name == sdk.EventUserData && m.Origin != tabA|originOwn {
			t.Fatalf("getChatThreads' user_data: origin %s, want %s", m.Origin, tabA|originOwn)
		}
	}
	if _, err := s.Run(WithOrigin(ctxT(t), tabA), op.Call{Args: op.GetChatHistory{ChatID: chat.ID}}); err != nil {
		t.Fatalf("getChatHistory: %v", err)
	}
	for _, m := range until(t, sub, sdk.EventThreadSummary) {
		if m.Name == sdk.EventThreadSummary && m.Origin != tabA|originOwn {
			t.Fatalf("a history page's thread_summary: origin %s, want %s", m.Origin, tabA|originOwn)
		}
	}
}
