package session

import (
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// TestMirrorLiveWithoutRead: a live event the mirror's cursor takes as it
// comes (the next one, or one it had) is delivered by live without
// mayRead; one after a gap is left alone (false, nothing delivered) for
// onLive, which reads the gap from the log and delivers it all, in order.
// The appender relies on it: on the engine's acknowledgement goroutine it
// must not wait for a read.
func TestMirrorLiveWithoutRead(t *testing.T) {
	l := newEngineLog(t, "tok-mirror-live", 5)
	live := func(i int) engine.Live { // event ei, as the appender hands it over
		return engine.Live{Event: engine.Event{Seq: l.seqs[i], Data: l.event(i)}, Prev: l.seqs[i-1], HasPrev: true}
	}
	m, sub := l.mirror(l.sid, "tok-mirror-live", l.seqs[1]) // the stream has had e1

	if !m.live(live(2), false) {
		t.Fatal("the next event was left for a read")
	}
	l.delivered(t, sub, 2)
	if !m.live(live(2), false) {
		t.Fatal("an event the cursor had was left for a read")
	}
	l.delivered(t, sub)
	if m.live(live(4), false) {
		t.Fatal("an event after a gap (e3 missing) was taken without a read")
	}
	l.delivered(t, sub)
	m.onLive(live(4)) // reads e3 from the log
	l.delivered(t, sub, 3, 4)
	if !m.live(live(5), false) {
		t.Fatal("the next event after the gap was filled was left for a read")
	}
	l.delivered(t, sub, 5)
}
