package session

import (
	"context"
	"strconv"
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), NodeID: "n1", ClusterKey: []byte("0123456789abcdef0123456789abcdef"), SingleNode: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close(context.Background()) }()
	p := NewPool(Config{Engine: eng}, nil, nil)
	defer func() { _ = p.Shutdown(context.Background()) }()

	sid := eng.CustomerKey("lic", "tok-keep")
	own, err := eng.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	seqs := []uint64{own.LastSeq} // the owner marker, then e1..e4
	for i := 1; i <= 4; i++ {
		s, err := eng.AppendOwned(ctx, own, seqs[len(seqs)-1], "", EncodeLogEvent("e"+strconv.Itoa(i), []byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	// The owner has appended up to e3 as far as its keep answers.
	if _, err := eng.Serve(sid, func(engine.Request) {}, func() (uint64, bool) { return seqs[3], true }); err != nil {
		t.Fatal(err)
	}
	ownerID, alive, err := eng.OwnerID(ctx, sid)
	if err != nil || !alive {
		t.Fatalf("OwnerID: %q %v %v", ownerID, alive, err)
	}

	newMirror := func(sid engine.SID, token string, after uint64) (*mirror, *Subscriber) {
		m := &mirror{sid: sid, token: token, s: newMirrorSession(p), owner: ownerID}
		m.s.mirror = m
		m.s.mu.Lock()
		sub := m.s.addLocked(0, 0)
		sub.after = after
		m.cur = eng.NewCursor(sid, after)
		m.s.mu.Unlock()
		return m, sub
	}
	m, sub := newMirror(sid, "tok-keep", seqs[1]) // the stream has had e1
	other, _ := newMirror(eng.CustomerKey("lic", "tok-other"), "tok-other", 0)

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
	delivered(2, 3) // up to the owner's sequence, not e4
	if got := m.cur.Last(); got != seqs[3] {
		t.Fatalf("cursor at %d, want %d", got, seqs[3])
	}
	if miss := p.keepBatch(ctx, ownerID, []*mirror{m}); len(miss) != 0 {
		t.Fatalf("misses %v", miss)
	}
	delivered()

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
	delivered()
}
