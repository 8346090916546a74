package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// TestClusterOwnerStreamsFedLocally: streams on the replica that owns the
// session cost no engine subscription (neither the customer's live subject
// nor one for the forwarded calls): the session's log appender feeds them.
// Once that replica loses the session (fenced here) and another takes it
// over, the same streams follow the new owner's events through one live
// subscription, nothing lost.
func TestClusterOwnerStreamsFedLocally(t *testing.T) {
	c := newCluster(t, 2, 900*time.Millisecond)
	subs := c.engs[0].Conn().NumSubscriptions()
	chat, _ := c.nodes[0].startChat("fl") // replica 0 owns the session
	st := c.nodes[0].openStream("/v1/events", "fl")
	st.waitEvent("connected")
	st2 := c.nodes[0].openStream("/v1/events", "fl")
	st2.waitEvent("connected")
	if n := c.engs[0].Conn().NumSubscriptions(); n != subs {
		t.Errorf("the owner's engine connection has %d subscriptions with two streams open, want %d as before the session", n, subs)
	}
	for i := range 3 {
		expect(t, c.nodes[1].do("POST", "/v1/chats/"+chat+"/messages", "fl", fmt.Sprintf(`{"text":"m%d"}`, i)), 201, "")
	}
	want := "[m0 m1 m2]"
	for i, s := range []*sseStream{st, st2} {
		if got, _ := messages(t, s, 3); fmt.Sprint(got) != want {
			t.Fatalf("stream %d got %q, want %s", i, got, want)
		}
	}

	// Replica 0 loses its lease: its session is fenced, replica 1 takes
	// the customer over; replica 0's streams stay.
	c.takeLease(0)
	testwait.For(t, 3*time.Second, "replica 0 fenced: its socket closed", func() bool { return c.sockets("fl") == 0 })
	testwait.For(t, 3*time.Second, "replica 0's streams subscribed to the live events", func() bool {
		return c.engs[0].Conn().NumSubscriptions() == subs+1
	})
	for i := 3; i < 6; i++ {
		expect(t, c.nodes[1].do("POST", "/v1/chats/"+chat+"/messages", "fl", fmt.Sprintf(`{"text":"m%d"}`, i)), 201, "")
	}
	if o := c.owner("fl"); o != 1 {
		t.Errorf("owner %d, want replica 1", o)
	}
	want = "[m3 m4 m5]"
	for i, s := range []*sseStream{st, st2} {
		if got, _ := messages(t, s, 3); fmt.Sprint(got) != want {
			t.Fatalf("stream %d after the takeover got %q, want %s", i, got, want)
		}
	}
}
