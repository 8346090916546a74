package session

import (
	"context"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// TestKeepBatch: one Keep to the owner's incarnation catches each mirror
// up to the last sequence the owner answers (reading what the live
// subscription missed, and no further), reads nothing when the mirror
// has it, and hands back, their owner forgotten, the mirrors the owner
// does not serve and all of them when the incarnation is not there.
func TestKeepBatch(t *testing.T) {
	l := newEngineLog(t, "tok-keep", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The owner has appended up to e3 as far as its keep answers.
	if _, err := l.eng.Serve(l.sid, func(engine.Request) {}, func() (uint64, bool) { return l.seqs[3], true }); err != nil {
		t.Fatal(err)
	}
	ownerID, alive, err := l.eng.OwnerID(ctx, l.sid)
	if err != nil || !alive {
		t.Fatalf("OwnerID: %q %v %v", ownerID, alive, err)
	}
	m, sub := l.mirror(l.sid, "tok-keep", l.seqs[1]) // the stream has had e1
	other, _ := l.mirror(l.eng.CustomerKey("lic", "tok-other"), "tok-other", 0)
	m.setOwner(ownerID)
	other.setOwner(ownerID)
	p := l.pool

	miss := p.keepBatch(ctx, ownerID, []*mirror{m, other})
	if len(miss) != 1 || miss[0] != other {
		t.Fatalf("misses %v, want the mirror the owner does not serve", miss)
	}
	if o, _ := other.keepState(); o != "" {
		t.Fatalf("a miss keeps its owner %q", o)
	}
	if o, _ := m.keepState(); o != ownerID {
		t.Fatalf("a kept mirror's owner: %q", o)
	}
	l.delivered(t, sub, 2, 3) // up to the owner's sequence, not e4
	if got := m.cur.Last(); got != l.seqs[3] {
		t.Fatalf("cursor at %d, want %d", got, l.seqs[3])
	}
	if miss := p.keepBatch(ctx, ownerID, []*mirror{m}); len(miss) != 0 {
		t.Fatalf("misses %v", miss)
	}
	l.delivered(t, sub)

	// An incarnation that is gone: every mirror back, owners forgotten.
	stale := "n1 not-an-epoch"
	m.setOwner(stale)
	miss = p.keepBatch(ctx, stale, []*mirror{m})
	if len(miss) != 1 || miss[0] != m {
		t.Fatalf("misses %v, want the mirror", miss)
	}
	if o, _ := m.keepState(); o != "" {
		t.Fatalf("owner %q kept after the incarnation did not answer", o)
	}
	l.delivered(t, sub)
}
