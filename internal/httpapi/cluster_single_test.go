package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// TestSingleNodeStreamsRefed: with a SingleNode engine (the embedded
// default: no live subjects, no RePublish), streams are fed by the
// session's own appender only. When the session ends here under open
// streams (fenced: its lease lost) and is owned here again (the keep
// round takes it over), the new session's appender feeds the same
// streams: nothing lost, nothing twice, no live subscription. Without
// Pool.feedLocked the streams stay unfed after the first session.
func TestSingleNodeStreamsRefed(t *testing.T) {
	c := newClusterEngine(t, 1, 900*time.Millisecond, nil, func(ec *engine.Config) { ec.SingleNode = true })
	n := c.nodes[0]
	subs := c.engs[0].Conn().NumSubscriptions()
	chat, _ := n.startChat("sg")
	st := n.openStream("/v1/events", "sg")
	st.waitEvent("connected")
	if m, fed := n.pool.StreamsFed("sg"); !m || !fed {
		t.Fatalf("streams here %v, fed by the session %v: want both", m, fed)
	}
	for i := range 3 {
		expect(t, n.do("POST", "/v1/chats/"+chat+"/messages", "sg", fmt.Sprintf(`{"text":"m%d"}`, i)), 201, "")
	}
	if got, _ := messages(t, st, 3); fmt.Sprint(got) != "[m0 m1 m2]" {
		t.Fatalf("stream got %q", got)
	}

	// The replica loses its lease: its session is fenced and ends; the
	// stream stays. The keep round owns the session here again.
	c.takeLease(0)
	testwait.For(t, 3*time.Second, "the session fenced: its socket closed", func() bool { return c.sockets("sg") == 0 })
	testwait.For(t, 10*time.Second, "the session owned here again, feeding the stream", func() bool {
		m, fed := n.pool.StreamsFed("sg")
		return m && fed && c.sockets("sg") == 1
	})
	for i := 3; i < 6; i++ {
		expect(t, n.do("POST", "/v1/chats/"+chat+"/messages", "sg", fmt.Sprintf(`{"text":"m%d"}`, i)), 201, "")
	}
	if got, _ := messages(t, st, 3); fmt.Sprint(got) != "[m3 m4 m5]" {
		t.Fatalf("stream after the session came back got %q, want [m3 m4 m5]", got)
	}
	if s := c.engs[0].Conn().NumSubscriptions(); s != subs {
		t.Errorf("%d engine subscriptions with a stream open, want %d as before the session", s, subs)
	}
}
