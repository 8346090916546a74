package session

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// runJSON runs a that has crossed JSON, as a call from another replica
// would arrive.
func runJSON(t *testing.T, s *Session, a op.Args) (json.RawMessage, error) {
	t.Helper()
	b, err := json.Marshal(op.Call{Args: a})
	if err != nil {
		t.Fatal(err)
	}
	var c op.Call
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return s.Run(ctxT(t), c)
}

// TestRun: a Call is carried out by the session's method for it, and
// answers what that method resolves, as JSON; bad arguments are refused
// before anything is sent.
func TestRun(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-run")
	raw, err := runJSON(t, s, op.StartChat{})
	if err != nil {
		t.Fatal(err)
	}
	var started struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &started); err != nil || started.ID == "" {
		t.Fatalf("start_chat: %s (%v)", raw, err)
	}
	chat := started.ID
	raw, err = runJSON(t, s, op.SendEvent{ChatID: chat, Event: json.RawMessage(`{"type":"message","text":"<b>hi</b> & bye"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &sent); err != nil || sent.Text != "<b>hi</b> & bye" {
		t.Errorf("send_event: %s (%v)", raw, err)
	}
	raw, err = runJSON(t, s, op.SendRating{ChatID: chat, Value: "good", Comment: "thanks"})
	if err != nil || string(raw) != `{"value":"good","comment":"thanks"}` {
		t.Errorf("send_rating: %s (%v)", raw, err)
	}
	raw, err = runJSON(t, s, op.GetChatHistory{ChatID: chat})
	if err != nil || !strings.Contains(string(raw), `"done":true`) {
		t.Errorf("get_chat_history: %s (%v)", raw, err)
	}
	raw, err = runJSON(t, s, op.SetSneakPeek{ChatID: chat, Text: "typing"})
	if err != nil || string(raw) != `{}` {
		t.Errorf("set_sneak_peek: %s (%v)", raw, err)
	}
	var ae *op.ArgError
	if _, err := runJSON(t, s, op.SendRating{ChatID: chat, Value: "meh"}); !errors.Is(err, ErrBadRating) || !errors.As(err, &ae) {
		t.Errorf("bad rating: %v", err)
	}
	if _, err := s.Run(ctxT(t), op.Call{}); !errors.As(err, &ae) {
		t.Errorf("no args: %v", err)
	}
	if raw, err := runJSON(t, s, op.Disconnect{}); err != nil || string(raw) != `{}` {
		t.Errorf("disconnect: %s (%v)", raw, err)
	}
	if _, err := runJSON(t, s, op.CloseThread{ChatID: chat}); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("after disconnect: %v", err)
	}
}
