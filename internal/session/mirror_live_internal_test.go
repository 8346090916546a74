package session

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// TestMirrorLiveWithoutRead: a live event the mirror's cursor takes as it
// comes (the next one, or one it had) is delivered by live without
// mayRead; one after a gap is left alone (false, nothing delivered) for
// onLive, which reads the gap from the log and delivers it all, in order.
// The appender relies on it: on the engine's acknowledgement goroutine it
// must not wait for a read.
func TestMirrorLiveWithoutRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), NodeID: "n1", ClusterKey: []byte("0123456789abcdef0123456789abcdef"), SingleNode: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close(context.Background()) }()
	p := NewPool(Config{Engine: eng}, nil, nil)
	defer func() { _ = p.Shutdown(context.Background()) }()

	sid := eng.CustomerKey("lic", "tok-mirror-live")
	own, err := eng.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	// The log: the owner marker, then events e1..e5.
	seqs := []uint64{own.LastSeq}
	for i := 1; i <= 5; i++ {
		s, err := eng.AppendOwned(ctx, own, seqs[len(seqs)-1], "", EncodeLogEvent("e"+strconv.Itoa(i), []byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	live := func(i int) engine.Live { // event ei, as the appender hands it over
		return engine.Live{Event: engine.Event{Seq: seqs[i], Data: EncodeLogEvent("e"+strconv.Itoa(i), []byte(`{}`))}, Prev: seqs[i-1], HasPrev: true}
	}

	m := &mirror{sid: sid, token: "tok-mirror-live", s: newMirrorSession(p)}
	m.s.mirror = m
	m.s.mu.Lock()
	sub := m.s.addLocked(0, 0)
	sub.after = seqs[1]
	m.cur = eng.NewCursor(sid, seqs[1]) // the stream has had e1
	m.s.mu.Unlock()

	delivered := func(want ...int) {
		t.Helper()
		for _, i := range want {
			select {
			case msg := <-sub.C():
				if msg.Name != "e"+strconv.Itoa(i) || msg.ID != strconv.FormatUint(seqs[i], 10) {
					t.Fatalf("delivered %s (id %s), want e%d (id %d)", msg.Name, msg.ID, i, seqs[i])
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("e%d not delivered", i)
			}
		}
		select {
		case msg := <-sub.C():
			t.Fatalf("delivered %s beyond what was expected", msg.Name)
		default:
		}
	}

	if !m.live(live(2), false) {
		t.Fatal("the next event was left for a read")
	}
	delivered(2)
	if !m.live(live(2), false) {
		t.Fatal("an event the cursor had was left for a read")
	}
	delivered()
	if m.live(live(4), false) {
		t.Fatal("an event after a gap (e3 missing) was taken without a read")
	}
	delivered()
	m.onLive(live(4)) // reads e3 from the log
	delivered(3, 4)
	if !m.live(live(5), false) {
		t.Fatal("the next event after the gap was filled was left for a read")
	}
	delivered(5)
}
