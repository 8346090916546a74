package session

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// The inbox holds a client's items (bounded) until attached, then hands
// them to the session in order, ahead of what comes later.
func TestInbox(t *testing.T) {
	s := spillSession(t, 16, 16)
	sub := addSub(s)
	push := func(i int) chatio.StreamItem {
		return chatio.StreamItem{Frame: chatio.Frame{Action: chatio.PushThreadClosed, Type: chatio.TypePush,
			Payload: []byte(fmt.Sprintf(`{"chat_id":"C%d","thread_id":"T","user_id":"u"}`, i))}}
	}
	in := &inbox{s: s, limit: 3}
	for i := range 3 {
		if !in.take(push(i)) {
			t.Fatalf("item %d refused below the limit", i)
		}
	}
	if in.take(push(99)) {
		t.Fatal("an item beyond the limit was held")
	}
	select {
	case m := <-sub.C():
		t.Fatalf("%s published while held", m.Name)
	case <-time.After(50 * time.Millisecond):
	}
	if !in.attach(1) {
		t.Fatal("attach reports the client ended")
	}
	if !in.take(push(3)) {
		t.Fatal("refused after attach")
	}
	for i := range 4 {
		select {
		case m := <-sub.C():
			if m.Name != chatio.PushThreadClosed || !strings.Contains(string(m.Data), fmt.Sprintf(`"C%d"`, i)) {
				t.Fatalf("event %d = %s %s", i, m.Name, m.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not published", i)
		}
	}

	// A client whose read loop ended before it was attached: attach says
	// so (nobody else will).
	early := &inbox{s: s, limit: 3}
	early.clientDone()
	if early.attach(1) {
		t.Error("attach missed that the client had ended")
	}
}
