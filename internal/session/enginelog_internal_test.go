package session

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// engineLog is a test's embedded engine, a pool on it, and one customer's
// log: the owner marker (seqs[0]) and events e1..eN (seqs[i], named "ei").
type engineLog struct {
	eng  *engine.Engine
	pool *Pool
	sid  engine.SID
	own  engine.Ownership
	seqs []uint64
}

// newEngineLog starts an embedded engine and a pool on it, owns token's
// customer and appends n events to its log; both end with the test.
func newEngineLog(t *testing.T, token string, n int) *engineLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), NodeID: "n1", ClusterKey: []byte("0123456789abcdef0123456789abcdef"), SingleNode: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(context.Background()) })
	p := NewPool(Config{Engine: eng}, nil, nil)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	l := &engineLog{eng: eng, pool: p, sid: eng.CustomerKey("lic", token)}
	if l.own, err = eng.Own(ctx, l.sid); err != nil {
		t.Fatal(err)
	}
	l.seqs = []uint64{l.own.LastSeq}
	for i := 1; i <= n; i++ {
		s, err := eng.AppendOwned(ctx, l.own, l.seqs[len(l.seqs)-1], "", l.event(i))
		if err != nil {
			t.Fatal(err)
		}
		l.seqs = append(l.seqs, s)
	}
	return l
}

// event is ei as the log keeps it.
func (l *engineLog) event(i int) []byte { return EncodeLogEvent("e"+strconv.Itoa(i), []byte(`{}`)) }

// mirror is a mirror of sid with one subscriber that has had the log up
// to after, its cursor there.
func (l *engineLog) mirror(sid engine.SID, token string, after uint64) (*mirror, *Subscriber) {
	m := &mirror{sid: sid, token: token, s: newMirrorSession(l.pool)}
	m.s.mirror = m
	m.s.mu.Lock()
	sub := m.s.addLocked(0, 0)
	sub.after = after
	m.cur = l.eng.NewCursor(sid, after)
	m.s.mu.Unlock()
	return m, sub
}

// delivered checks that sub got exactly e<want...>, in order, with their
// log sequences as ids, and nothing more.
func (l *engineLog) delivered(t *testing.T, sub *Subscriber, want ...int) {
	t.Helper()
	for _, i := range want {
		select {
		case msg := <-sub.C():
			if msg.Name != "e"+strconv.Itoa(i) || msg.ID != strconv.FormatUint(l.seqs[i], 10) {
				t.Fatalf("delivered %s (id %s), want e%d (id %d)", msg.Name, msg.ID, i, l.seqs[i])
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
