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
	// startChat: user_data and thread_summary are what the SDK emits for
	// its own call: every stream gets them.
	var before string // an id before tab a's send_event
	for _, m := range until(t, sub, sdk.EventThreadSummary) {
		before = m.ID
		if m.Origin != 0 {
			t.Fatalf("startChat's %s: origin %x, want 0", m.Name, m.Origin)
		}
	}

	msg := json.RawMessage(`{"type":"message","text":"from tab a"}`)
	if _, err := s.Run(ctxA, op.Call{Args: op.SendEvent{ChatID: chat.ID, Event: msg}}); err != nil {
		t.Fatalf("sendEvent from a: %v", err)
	}
	own := until(t, sub, sdk.EventNewEvent)
	ownMsg := own[len(own)-1]
	if ownMsg.Origin != tabA {
		t.Fatalf("new_event of tab a's call: origin %x, want %x", ownMsg.Origin, tabA)
	}

	// Without an instance: untagged, as before.
	if _, err := s.Run(ctxT(t), op.Call{Args: op.SendEvent{ChatID: chat.ID, Event: msg}}); err != nil {
		t.Fatalf("sendEvent without instance: %v", err)
	}
	plain := until(t, sub, sdk.EventNewEvent)
	if o := plain[len(plain)-1].Origin; o != 0 {
		t.Fatalf("new_event of an untagged call: origin %x", o)
	}

	// The agent's answer is a push: untagged.
	if _, err := env.srv.Agent("agent-o", "").SendMessage(chat.ID, "agent here"); err != nil {
		t.Fatal(err)
	}
	for {
		m := next(t, sub)
		if m.Name == sdk.EventNewEvent {
			if m.Origin != 0 {
				t.Fatalf("agent's new_event: origin %x", m.Origin)
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
				t.Fatalf("replayed new_event: origin %x, want %x", m.Origin, tabA)
			}
			break
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for _, id := range []string{"a", "tab-b", "0f3c2a8e-1d4b-4e8f-9a7c-3b2d1e0f9a8b"} {
		o := OriginOf(id)
		if parseOrigin(o.String()) != o {
			t.Fatalf("parseOrigin(%q) != %x", o.String(), o)
		}
	}
	for _, bad := range []string{"", "xyz", "12345678901234567", "-1"} {
		if o := parseOrigin(bad); o != 0 {
			t.Fatalf("parseOrigin(%q) = %x, want 0", bad, o)
		}
	}
}
