package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

func testKey() []byte { return bytes.Repeat([]byte{0x5a}, 32) }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startEngine starts an engine and closes it at the end of the test.
func startEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.ClusterKey == nil {
		cfg.ClusterKey = testKey()
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	e, err := Start(ctxT(t, 20*time.Second), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func embedded(t testing.TB, mod func(*Config)) *Engine {
	cfg := Config{DataDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	return startEngine(t, cfg)
}

// runServer runs a nats-server with JetStream in the test process,
// listening on 127.0.0.1 only, for tests with several engines (nodes).
func runServer(t testing.TB) *server.Server {
	t.Helper()
	o := &server.Options{
		ServerName: "s1", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func sidOf(token string) SID { return CustomerKey(testKey(), "lic1", token) }

func TestCustomerKey(t *testing.T) {
	a := CustomerKey(testKey(), "lic", "token-abc")
	if !a.Valid() || len(a) != 26 {
		t.Fatalf("sid %q: not 26 chars of base32", a)
	}
	if a != CustomerKey(testKey(), "lic", "token-abc") {
		t.Fatal("not deterministic")
	}
	for _, b := range []SID{
		CustomerKey(testKey(), "lic2", "token-abc"),
		CustomerKey(testKey(), "lic", "token-abd"),
		CustomerKey(testKey(), "lict", "oken-abc"), // the 0 separator
		CustomerKey(bytes.Repeat([]byte{1}, 32), "lic", "token-abc"),
	} {
		if a == b {
			t.Fatalf("collision %q", a)
		}
	}
	if strings.Contains(string(a), "token") {
		t.Fatal("token in sid")
	}
	for _, bad := range []SID{"", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abc.def", SID(strings.Repeat("a", 25)) + ">"} {
		if bad.Valid() {
			t.Fatalf("%q valid", bad)
		}
	}
}

func TestStartConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no node":    {DataDir: t.TempDir(), ClusterKey: testKey()},
		"short key":  {DataDir: t.TempDir(), NodeID: "n", ClusterKey: []byte("short")},
		"no datadir": {NodeID: "n", ClusterKey: testKey()},
		"bad node":   {DataDir: t.TempDir(), NodeID: "a.b", ClusterKey: testKey()},
	} {
		if _, err := Start(ctxT(t, 5*time.Second), cfg); err == nil {
			t.Errorf("%s: Start accepted it", name)
		}
	}
}

func TestAppendChainAndFencing(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("t1")
	if e.Replicas() != 1 {
		t.Fatalf("replicas %d, want 1 embedded", e.Replicas())
	}
	last, err := e.LastSeq(ctx, sid)
	if err != nil || last != 0 {
		t.Fatalf("LastSeq of empty log: %d %v", last, err)
	}
	s1, err := e.Append(ctx, sid, 0, "m1", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	// Another customer in between: sequences are per stream, chains per
	// customer.
	other := sidOf("t2")
	if _, err := e.Append(ctx, other, 0, "x", []byte("other")); err != nil {
		t.Fatal(err)
	}
	s2, err := e.Append(ctx, sid, s1, "m2", []byte("two"))
	if err != nil || s2 <= s1 {
		t.Fatalf("second append: %d %v", s2, err)
	}
	if last, _ := e.LastSeq(ctx, sid); last != s2 {
		t.Fatalf("LastSeq %d, want %d", last, s2)
	}
	// Two writers both believe the last sequence is s2: the first wins, the
	// second is fenced.
	s3, err := e.Append(ctx, sid, s2, "w1", []byte("writer 1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Append(ctx, sid, s2, "w2", []byte("writer 2")); !errors.Is(err, ErrFenced) {
		t.Fatalf("second writer: %v, want ErrFenced", err)
	}
	// Expecting an empty log when it is not: fenced too.
	if _, err := e.Append(ctx, sid, 0, "w3", []byte("writer 3")); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale writer: %v, want ErrFenced", err)
	}
	p, err := e.Read(ctx, sid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := datas(p.Events); got != "one,two,writer 1" || p.TooOld || p.More || p.Last != s3 {
		t.Fatalf("log %q %+v", got, p)
	}
	if _, err := e.Append(ctx, "not a sid", 0, "", nil); err == nil {
		t.Fatal("invalid sid accepted")
	}
}

func datas(evs []Event) string {
	var b []string
	for _, e := range evs {
		b = append(b, string(e.Data))
	}
	return strings.Join(b, ",")
}

func TestAppendRetrySameMsgID(t *testing.T) {
	// SingleNode: a duplicate window of 100ms, under which a retry is
	// told by the customer's last event, as after any window.
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprint("single=", single), func(t *testing.T) {
			testAppendRetrySameMsgID(t, embedded(t, func(c *Config) { c.SingleNode = single }))
		})
	}
}

func testAppendRetrySameMsgID(t *testing.T, e *Engine) {
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("retry")
	s1, err := e.Append(ctx, sid, 0, "evt-1", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	// The acknowledgement was lost: the same append again answers the same
	// sequence and stores nothing.
	again, err := e.Append(ctx, sid, 0, "evt-1", []byte("a"))
	if err != nil || again != s1 {
		t.Fatalf("retry: %d %v, want %d", again, err, s1)
	}
	s2, err := e.Append(ctx, sid, s1, "evt-2", []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.Append(ctx, sid, s1, "evt-2", []byte("b")); err != nil || again != s2 {
		t.Fatalf("retry 2: %d %v, want %d", again, err, s2)
	}
	// An older event's retry, once another was appended after it, is
	// refused: the writer is not the last one any more.
	if _, err := e.Append(ctx, sid, 0, "evt-1", []byte("a")); !errors.Is(err, ErrFenced) {
		t.Fatalf("late retry: %v, want ErrFenced", err)
	}
	p, err := e.Read(ctx, sid, 0, 0)
	if err != nil || datas(p.Events) != "a,b" {
		t.Fatalf("log %q %v", datas(p.Events), err)
	}
}

func TestReadAfterAndTooOld(t *testing.T) {
	e := embedded(t, func(c *Config) { c.MaxEventsPerCustomer = 5 })
	ctx := ctxT(t, 20*time.Second)
	sid, other := sidOf("ring"), sidOf("ring-other")
	var seqs []uint64
	var last, olast uint64
	for i := range 8 {
		s, err := e.Append(ctx, sid, last, fmt.Sprint(i), []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs, last = append(seqs, s), s
		if olast, err = e.Append(ctx, other, olast, fmt.Sprint(i), []byte("o")); err != nil {
			t.Fatal(err)
		}
	}
	// The log keeps 3..7.
	p, err := e.Read(ctx, sid, seqs[2], 0)
	if err != nil || p.TooOld || datas(p.Events) != "3,4,5,6,7" || p.Last != seqs[7] {
		t.Fatalf("after the trimmed seqs[2] (its successor kept): %q %+v %v", datas(p.Events), p, err)
	}
	for _, after := range []uint64{0, seqs[0], seqs[1]} {
		p, err := e.Read(ctx, sid, after, 0)
		if err != nil || !p.TooOld {
			t.Fatalf("after %d: TooOld %v %v", after, p.TooOld, err)
		}
	}
	p, err = e.Read(ctx, sid, seqs[4], 1)
	if err != nil || p.TooOld || !p.More || datas(p.Events) != "5" || p.Last != seqs[5] {
		t.Fatalf("bounded read: %q %+v %v", datas(p.Events), p, err)
	}
	p, err = e.Read(ctx, sid, seqs[7], 0)
	if err != nil || len(p.Events) != 0 || p.TooOld || p.More || p.Last != seqs[7] {
		t.Fatalf("read at the end: %+v %v", p, err)
	}
	// Bounded in bytes too.
	small := embedded(t, func(c *Config) { c.ReadMaxBytes = 1 })
	s1, _ := small.Append(ctx, sid, 0, "", []byte("x"))
	if _, err := small.Append(ctx, sid, s1, "", []byte("y")); err != nil {
		t.Fatal(err)
	}
	p, err = small.Read(ctx, sid, 0, 0)
	if err != nil || datas(p.Events) != "x" || !p.More {
		t.Fatalf("byte-bounded read: %q %+v %v", datas(p.Events), p, err)
	}
}

func TestLiveGapDetection(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("live")
	ch := make(chan Live, 100)
	var mu sync.Mutex
	dropped := map[uint64]bool{}
	var dropNext int // drop the 3rd live event, and the 7th (the marker is the 1st)
	sub, err := e.Subscribe(sid, func(l Live) {
		mu.Lock()
		defer mu.Unlock()
		dropNext++
		if dropNext == 3 || dropNext == 7 {
			dropped[l.Seq] = true
			return
		}
		ch <- l
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	cur := e.NewCursor(sid, 0)
	var got []Event
	// The first message is an owner marker: the cursor consumes it.
	own, err := e.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	last := own.LastSeq
	for i := range 8 {
		s, err := e.Append(ctx, sid, last, "", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = s
	}
	// Live events arrive (some "missed"); one is delivered twice.
	deadline := time.After(10 * time.Second)
	var redelivered bool
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	fills := 0 // live events InOrder said need a read
	for cur.Last() < last {
		select {
		case l := <-ch:
			if !l.HasPrev {
				t.Fatal("republished event without Nats-Last-Sequence")
			}
			nctx := ctx
			if cur.InOrder(l) {
				// No read follows: Next needs no live context.
				nctx = canceled
			} else {
				fills++
			}
			evs, err := cur.Next(nctx, l)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, evs...)
			if !redelivered {
				redelivered = true
				evs, _ := cur.Next(ctx, l)
				if len(evs) != 0 {
					t.Fatal("duplicate delivered")
				}
			}
		case <-deadline:
			t.Fatalf("stuck at %d of %d, got %q", cur.Last(), last, datas(got))
		}
	}
	if datas(got) != "0,1,2,3,4,5,6,7" {
		t.Fatalf("delivered %q", datas(got))
	}
	mu.Lock()
	if len(dropped) != 2 {
		t.Fatalf("dropped %v", dropped)
	}
	mu.Unlock()
	if fills != 2 {
		t.Errorf("InOrder said %d live events need a read, want 2 (one after each dropped)", fills)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatal("out of order")
		}
	}
	// The newest event is missed and nothing follows: CatchUp (after a
	// reconnect) finds it against the leader's last sequence.
	cur2 := e.NewCursor(sid, got[6].Seq)
	evs, err := cur2.CatchUp(ctx)
	if err != nil || datas(evs) != "7" || cur2.Last() != last {
		t.Fatalf("CatchUp %q %v", datas(evs), err)
	}
	if evs, err := cur2.CatchUp(ctx); err != nil || len(evs) != 0 {
		t.Fatalf("CatchUp again %q %v", datas(evs), err)
	}
}

func TestLiveTooOld(t *testing.T) {
	e := embedded(t, func(c *Config) { c.MaxEventsPerCustomer = 3 })
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("live-old")
	ch := make(chan Live, 100)
	sub, err := e.Subscribe(sid, func(l Live) { ch <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var last, first uint64
	for i := range 6 {
		last, err = e.Append(ctx, sid, last, "", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = last
		}
	}
	// A reader stuck after the first event sees the sixth live: the events
	// between were trimmed from the ring, so it must send a snapshot.
	cur := e.NewCursor(sid, first)
	var l Live
	for l.Seq != last {
		l = <-ch
	}
	if _, err := cur.Next(ctx, l); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Next: %v, want ErrTooOld", err)
	}
}

func TestLeaseExpiryTakeover(t *testing.T) {
	s := runServer(t)
	ttl := time.Second
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a", LeaseTTL: ttl})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b", LeaseTTL: ttl})
	ctx := ctxT(t, 30*time.Second)
	sid := sidOf("owned")

	own, err := a.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if own.Node != "a" || own.LastSeq == 0 {
		t.Fatalf("ownership %+v: want node a and the marker's sequence", own)
	}
	if again, err := a.Own(ctx, sid); err != nil || again.Revision != own.Revision || again.LastSeq != own.LastSeq {
		t.Fatalf("Own again: %+v %v", again, err)
	}
	_, err = b.Own(ctx, sid)
	var owned *OwnedError
	if !errors.Is(err, ErrOwned) || !errors.As(err, &owned) || owned.Owner != a.Self() {
		t.Fatalf("b.Own: %v, want an OwnedError naming %q", err, a.Self())
	}
	if node, alive, err := b.Owner(ctx, sid); node != "a" || !alive || err != nil {
		t.Fatalf("Owner: %q %v %v", node, alive, err)
	}
	s1, err := a.Append(ctx, sid, own.LastSeq, "e1", []byte("from a"))
	if err != nil {
		t.Fatal(err)
	}
	// Renewals keep the lease past its TTL: four renewals (a TTL and a
	// third) later it is still valid.
	a.lease.mu.Lock()
	rev0 := a.lease.rev
	a.lease.mu.Unlock()
	testwait.For(t, 4*ttl, "four renewals", func() bool {
		a.lease.mu.Lock()
		defer a.lease.mu.Unlock()
		return a.lease.rev >= rev0+4
	})
	if !a.LeaseValid() {
		t.Fatal("lease not valid after renewals")
	}

	// a stops renewing (paused, partitioned): its lease runs out, locally
	// first, then in the engine, and b takes the session over.
	lost := a.LeaseLost()
	a.lease.partitioned.Store(true)
	select {
	case <-lost:
	case <-time.After(2 * ttl):
		t.Fatal("LeaseLost not closed")
	}
	if a.LeaseValid() {
		t.Fatal("lease valid after its deadline")
	}
	if _, err := a.Append(ctx, sid, s1, "e2", []byte("fenced locally")); !errors.Is(err, ErrFenced) {
		t.Fatalf("append after lease loss: %v", err)
	}
	var bown Ownership
	testwait.For(t, 5*ttl, "b takes the session over", func() bool {
		bown, err = b.Own(ctx, sid)
		return err == nil
	})
	if bown.Node != "b" || bown.LastSeq <= s1 {
		t.Fatalf("b's ownership %+v", bown)
	}
	if node, alive, _ := b.Owner(ctx, sid); node != "b" || !alive {
		t.Fatalf("Owner after takeover: %q %v", node, alive)
	}
	// a wakes up believing its lease still holds (its local check passes):
	// the engine refuses its append, since b's marker follows s1.
	a.stop()
	a.wg.Wait()
	a.lease.deadline.Store(int64(time.Hour + time.Since(a.lease.base)))
	if _, err := a.Append(ctx, sid, s1, "e2", []byte("stale owner")); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's append: %v, want ErrFenced", err)
	}
	if _, err := b.Append(ctx, sid, bown.LastSeq, "e2", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	p, err := b.Read(ctx, sid, 0, 0)
	if err != nil || datas(p.Events) != "from a,from b" || p.TooOld {
		t.Fatalf("log %q %+v %v", datas(p.Events), p, err)
	}
	// Release by a non-owner does nothing; by the owner, frees the record.
	if err := a.Release(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if node, _, _ := b.Owner(ctx, sid); node != "b" {
		t.Fatalf("a released b's record: %q", node)
	}
	if err := b.Release(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if node, alive, err := b.Owner(ctx, sid); node != "" || alive || err != nil {
		t.Fatalf("after Release: %q %v %v", node, alive, err)
	}
	if _, err := b.Own(ctx, sid); err != nil {
		t.Fatalf("Own after Release: %v", err)
	}
}

func TestAppendOwnedEpoch(t *testing.T) {
	e := embedded(t, func(c *Config) { c.LeaseTTL = time.Second })
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("epoch")
	own, err := e.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := e.AppendOwned(ctx, own, own.LastSeq, "", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	// The lease is lost (renewals fail), then taken again under a new
	// epoch: the old Ownership no longer appends; a new Own (which fences
	// the log with a marker) does.
	lost := e.LeaseLost()
	e.lease.partitioned.Store(true)
	<-lost
	e.lease.partitioned.Store(false)
	testwait.For(t, 5*time.Second, "a new lease", e.LeaseValid)
	if _, err := e.AppendOwned(ctx, own, s1, "", []byte("2")); !errors.Is(err, ErrFenced) {
		t.Fatalf("append under the old epoch: %v", err)
	}
	own2, err := e.Own(ctx, sid)
	if err != nil || own2.Epoch == own.Epoch || own2.LastSeq <= s1 {
		t.Fatalf("Own under the new epoch: %+v %v", own2, err)
	}
	if _, err := e.AppendOwned(ctx, own2, own2.LastSeq, "", []byte("2")); err != nil {
		t.Fatal(err)
	}
}

func TestCloseGivesUpLease(t *testing.T) {
	s := runServer(t)
	a, err := Start(ctxT(t, 10*time.Second), Config{URL: s.ClientURL(), NodeID: "a", ClusterKey: testKey(), LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b", LeaseTTL: time.Minute})
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("rolling")
	if _, err := a.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	lost := a.LeaseLost()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-lost
	// A rolling update: b takes over at once, not after a minute.
	if _, err := b.Own(ctx, sid); err != nil {
		t.Fatalf("Own after the owner's Close: %v", err)
	}
	if _, err := a.Append(ctx, sid, 0, "", nil); err == nil {
		t.Fatal("append on a closed engine")
	}
}

func TestRequestNoOwner(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("ops")
	if _, err := e.Request(ctx, sid, []byte("ping")); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Request without owner: %v", err)
	}
	// Served but not owned: nobody's session (no owner record).
	sub, err := e.Serve(sid, func(r Request) { _ = r.Respond(append([]byte("pong:"), r.Data...)) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request(ctx, sid, []byte("ping")); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Request, served without an owner record: %v", err)
	}
	if _, err := e.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	got, err := e.Request(ctx, sid, []byte("ping"))
	if err != nil || string(got) != "pong:ping" {
		t.Fatalf("Request: %q %v", got, err)
	}
	if err := sub.Stop(); err != nil {
		t.Fatal(err)
	}
	// Owned, not served: the node answers "not the owner" at once.
	if _, err := e.Request(ctx, sid, []byte("ping")); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Request after Stop: %v", err)
	}
}

// TestRequestOwnerNode: a request goes to the node named in the owner
// record, which hands it to the session's handler; a record of an epoch
// the node no longer holds, or of a node that is gone, is nobody's.
func TestRequestOwnerNode(t *testing.T) {
	s := runServer(t)
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b"})
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("owner-node")
	if _, err := a.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Serve(sid, func(r Request) { _ = r.Respond(append([]byte("a:"), r.Data...)) }, nil); err != nil {
		t.Fatal(err)
	}
	// b serves the same sid without owning it: never asked.
	if _, err := b.Serve(sid, func(r Request) { _ = r.Respond([]byte("b")) }, nil); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{a, b} {
		got, err := e.Request(ctx, sid, []byte("x"))
		if err != nil || string(got) != "a:x" {
			t.Fatalf("Request from %s: %q %v", e.NodeID(), got, err)
		}
	}
	// a's next epoch (a lost lease, say): the record's epoch is not served.
	if err := a.lease.acquire(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(ctx, sid, []byte("x")); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Request under a stale epoch: %v", err)
	}
	if _, err := a.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Request(ctx, sid, []byte("x")); err != nil || string(got) != "a:x" {
		t.Fatalf("Request after a's Own under its new epoch: %q %v", got, err)
	}
	// a gone (its connection closed): no responders.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(ctx, sid, []byte("x")); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Request to a closed node: %v", err)
	}
}

// TestKeep: one Keep asks the owner's node about several sessions and
// gets each one's answer in order, 0 for one it does not serve (no keep
// function, not registered, or its keep says no); a stale incarnation or
// a node that is gone is ErrNoOwner.
func TestKeep(t *testing.T) {
	s := runServer(t)
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b"})
	ctx := ctxT(t, 20*time.Second)
	served, noKeep, refusing, unknown := sidOf("k1"), sidOf("k2"), sidOf("k3"), sidOf("k4")
	var kept atomic.Int32 // the keep functions run on a's operations goroutine
	for _, sid := range []SID{served, noKeep, refusing} {
		if _, err := a.Own(ctx, sid); err != nil {
			t.Fatal(err)
		}
	}
	nop := func(Request) {}
	if _, err := a.Serve(served, nop, func() (uint64, bool) { kept.Add(1); return 42, true }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Serve(noKeep, nop, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Serve(refusing, nop, func() (uint64, bool) { return 7, false }); err != nil {
		t.Fatal(err)
	}
	owner, alive, err := b.OwnerID(ctx, served)
	if err != nil || !alive {
		t.Fatalf("OwnerID: %q %v %v", owner, alive, err)
	}
	if self := a.Self(); self != owner {
		t.Fatalf("a.Self() %q, OwnerID %q", self, owner)
	}
	if alive, err := b.Alive(ctx, owner); err != nil || !alive {
		t.Fatalf("Alive(%q): %v %v", owner, alive, err)
	}
	got, err := b.Keep(ctx, owner, []SID{unknown, served, noKeep, refusing, served})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 42, 0, 0, 42}; !slices.Equal(got, want) {
		t.Fatalf("Keep: %v, want %v", got, want)
	}
	if n := kept.Load(); n != 2 {
		t.Fatalf("keep function ran %d times, want 2", n)
	}
	if _, err := b.Keep(ctx, owner, nil); err == nil {
		t.Fatal("Keep of no session: no error")
	}
	if _, err := b.Keep(ctx, owner, make([]SID, MaxKeep+1)); err == nil {
		t.Fatal("Keep past MaxKeep: no error")
	}
	// a's next epoch: the old incarnation is nobody.
	if err := a.lease.acquire(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Keep(ctx, owner, []SID{served}); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Keep of a stale incarnation: %v", err)
	}
	if alive, err := b.Alive(ctx, owner); err != nil || alive {
		t.Fatalf("Alive of a stale incarnation: %v %v", alive, err)
	}
	if _, err := a.Own(ctx, served); err != nil {
		t.Fatal(err)
	}
	if owner, _, err = b.OwnerID(ctx, served); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Keep(ctx, owner, []SID{served}); err != nil || !slices.Equal(got, []uint64{42}) {
		t.Fatalf("Keep under a's new epoch: %v %v", got, err)
	}
	// a gone: no responders.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Keep(ctx, owner, []SID{served}); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Keep of a closed node: %v", err)
	}
}

func TestOnce(t *testing.T) {
	s := runServer(t)
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b"})
	ctx := ctxT(t, 20*time.Second)
	if first, err := a.Once(ctx, "ticket-1", time.Minute); !first || err != nil {
		t.Fatalf("first: %v %v", first, err)
	}
	if first, err := a.Once(ctx, "ticket-1", time.Minute); first || err != nil {
		t.Fatalf("again: %v %v", first, err)
	}
	if first, err := b.Once(ctx, "ticket-1", time.Minute); first || err != nil {
		t.Fatalf("on another replica: %v %v", first, err)
	}
	if first, err := b.Once(ctx, "ticket-2", time.Second); !first || err != nil {
		t.Fatalf("another id: %v %v", first, err)
	}
	// After its TTL the id is forgotten.
	testwait.For(t, 10*time.Second, "ticket-2 expires", func() bool {
		first, err := a.Once(ctx, "ticket-2", time.Second)
		return first && err == nil
	})
}

func TestRestartKeepsLog(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, NodeID: "n1", ClusterKey: testKey()}
	ctx := ctxT(t, 30*time.Second)
	e, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sid := sidOf("restart")
	var last uint64
	for i := range 3 {
		if last, err = e.Append(ctx, sid, last, fmt.Sprint(i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal("second Close:", err)
	}
	e2 := startEngine(t, cfg)
	if got, err := e2.LastSeq(ctx, sid); err != nil || got != last {
		t.Fatalf("LastSeq after restart %d %v, want %d", got, err, last)
	}
	p, err := e2.Read(ctx, sid, 0, 0)
	if err != nil || datas(p.Events) != "0,1,2" || p.TooOld {
		t.Fatalf("log after restart %q %+v %v", datas(p.Events), p, err)
	}
	if _, err := e2.Append(ctx, sid, last, "3", []byte("3")); err != nil {
		t.Fatal(err)
	}
	// Another stream count on the same store is refused.
	if err := e2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Streams = 8
	if _, err := Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), "must not change") {
		t.Fatalf("Start with another Streams: %v", err)
	}
}

func TestHealth(t *testing.T) {
	var mu sync.Mutex
	var states []State
	s := runServer(t)
	e := startEngine(t, Config{URL: s.ClientURL(), NodeID: "h", ReconnectWait: 50 * time.Millisecond,
		OnState: func(st State) { mu.Lock(); states = append(states, st); mu.Unlock() }})
	ctx := ctxT(t, 20*time.Second)
	if !e.Ready() || e.State() != StateConnected {
		t.Fatal("not ready")
	}
	if err := e.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	// The engine restarts on the same port and store: the connection
	// reconnects by itself.
	o2 := server.Options{ServerName: "s1", Host: "127.0.0.1", Port: s.Addr().(*net.TCPAddr).Port,
		JetStream: true, StoreDir: s.StoreDir(), NoLog: true, NoSigs: true}
	s.Shutdown()
	s.WaitForShutdown()
	testwait.For(t, 5*time.Second, "state reconnecting", func() bool { return e.State() == StateReconnecting })
	if e.Ready() {
		t.Fatal("ready while the engine is down")
	}
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := e.Probe(pctx); err == nil {
		t.Fatal("probe passed while the engine is down")
	}
	cancel()
	// Calls answer within their context, not hang.
	t0 := time.Now()
	actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, aerr := e.Append(actx, sidOf("down"), 0, "", []byte("x"))
	_, rerr := e.Read(actx, sidOf("down"), 0, 0)
	cancel()
	octx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, oerr := e.Once(octx, "ticket-during-outage", time.Minute)
	cancel()
	if aerr == nil || rerr == nil || oerr == nil || errors.Is(aerr, ErrFenced) || time.Since(t0) > 2*time.Second {
		t.Fatalf("engine down: append %v, read %v, once %v after %v", aerr, rerr, oerr, time.Since(t0))
	}
	s2, err := server.NewServer(&o2)
	if err != nil {
		t.Fatal(err)
	}
	s2.Start()
	t.Cleanup(func() { s2.Shutdown(); s2.WaitForShutdown() })
	t1 := time.Now()
	testwait.For(t, 10*time.Second, "reconnected", func() bool { return e.State() == StateConnected })
	t.Logf("reconnected in %v", time.Since(t1))
	testwait.For(t, 10*time.Second, "probe passes", func() bool { return e.Probe(ctx) == nil })
	t.Logf("probe passes after %v", time.Since(t1))
	// What failed during the outage did not land after it: the append is
	// not in the log, the one-time id is still unused.
	if p, err := e.Read(ctx, sidOf("down"), 0, 0); err != nil || len(p.Events) != 0 {
		t.Fatalf("after the outage: %d events of the failed append (%v)", len(p.Events), err)
	}
	if first, err := e.Once(ctx, "ticket-during-outage", time.Minute); err != nil || !first {
		t.Fatalf("the id refused during the outage was used by it: first %v, %v", first, err)
	}
	mu.Lock()
	if len(states) < 2 || states[0] != StateReconnecting || states[len(states)-1] != StateConnected {
		t.Fatalf("states %v", states)
	}
	mu.Unlock()
	// Close while the engine is up (the cleanups would stop the server
	// first, and Close would wait its bound to give the lease up).
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// sameShard returns two sids of one stream.
func sameShard(t testing.TB, e *Engine) (SID, SID) {
	a := sidOf("shard-a")
	for i := range 1000 {
		b := sidOf(fmt.Sprint("shard-b", i))
		if b.shard(len(e.streams)) == a.shard(len(e.streams)) {
			return a, b
		}
	}
	t.Fatal("no two sids in one stream")
	return "", ""
}

// TestEngineTruths pins what the design relies on in nats-server's
// behaviour, so that an upgrade that changes it fails here.
func TestEngineTruths(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	a, b := sameShard(t, e)
	sn, _ := e.names(a)

	// Republish's Nats-Last-Sequence is the previous sequence of the same
	// subject (stream.go loads the subject's last message before storing),
	// not of the stream: a live reader can see its own customer's gaps.
	ch := make(chan Live, 10)
	sub, err := e.Subscribe(a, func(l Live) { ch <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	a1, _ := e.Append(ctx, a, 0, "", []byte("a1"))
	if _, err := e.Append(ctx, b, 0, "", []byte("b1")); err != nil {
		t.Fatal(err)
	}
	a2, _ := e.Append(ctx, a, a1, "", []byte("a2"))
	if l := <-ch; l.Seq != a1 || l.Prev != 0 || !l.HasPrev {
		t.Fatalf("first live %+v", l)
	}
	if l := <-ch; l.Seq != a2 || l.Prev != a1 {
		t.Fatalf("second live %+v, want prev %d (per subject)", l, a1)
	}

	// On a single server (not clustered), the expected-last-subject-
	// sequence check runs before the duplicate check: a retried publish
	// whose first attempt was stored is answered "wrong last sequence"
	// (10071), not "duplicate". Append recognises its own message then.
	m := &nats.Msg{Subject: sn.evPfx + string(a), Data: []byte("a3"), Header: nats.Header{}}
	m.Header.Set(hdrMsgID, "raw-1")
	m.Header.Set(hdrExpSubjSeq, fmt.Sprint(a2))
	if _, err := e.publishOnce(ctx, time.Now().Add(5*time.Second), m); err != nil {
		t.Fatal(err)
	}
	_, err = e.publishOnce(ctx, time.Now().Add(5*time.Second), m)
	var ae *apiError
	if !errors.As(err, &ae) || ae.ErrCode != 10071 {
		t.Fatalf("retried publish: %v, want 10071", err)
	}
	// Without the expectation, the same retry is a duplicate.
	m.Header.Del(hdrExpSubjSeq)
	resp, err := e.nc.RequestMsgWithContext(ctx, m)
	if err != nil || !strings.Contains(string(resp.Data), `"duplicate": true`) {
		t.Fatalf("plain retry: %s %v", resp.Data, err)
	}
}

// TestCloseStopsEverything: after Close, none of the goroutines the
// engine started (renewal, connection, subscriptions, embedded server)
// is left.
func TestCloseStopsEverything(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := ctxT(t, 20*time.Second)
	e, err := Start(ctx, Config{DataDir: t.TempDir(), NodeID: "leak", ClusterKey: testKey(), LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sid := sidOf("leak")
	own, err := e.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Subscribe(sid, func(Live) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Serve(sid, func(r Request) { _ = r.Respond(nil) }, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AppendOwned(ctx, own, own.LastSeq, "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}

// TestOwnRace: two nodes claim the same sessions at once; each session
// gets exactly one owner, and only the owner's appends reach the log.
func TestOwnRace(t *testing.T) {
	s := runServer(t)
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b"})
	ctx := ctxT(t, 30*time.Second)
	const n = 20
	type result struct {
		own Ownership
		err error
	}
	res := make([][2]result, n)
	var wg sync.WaitGroup
	for i := range n {
		sid := sidOf(fmt.Sprint("race-", i))
		for j, e := range []*Engine{a, b} {
			wg.Go(func() {
				own, err := e.Own(ctx, sid)
				if err == nil {
					_, err = e.AppendOwned(ctx, own, own.LastSeq, "", []byte(e.NodeID()))
				}
				res[i][j] = result{own, err}
			})
		}
	}
	wg.Wait()
	for i := range n {
		sid := sidOf(fmt.Sprint("race-", i))
		var winner string
		for j, node := range []string{"a", "b"} {
			switch err := res[i][j].err; {
			case err == nil:
				if winner != "" {
					t.Fatalf("%d: two owners", i)
				}
				winner = node
			case errors.Is(err, ErrOwned):
			default:
				t.Fatalf("%d %s: %v", i, node, err)
			}
		}
		if node, alive, err := a.Owner(ctx, sid); node != winner || !alive || err != nil {
			t.Fatalf("%d: winner %q, record %q %v %v", i, winner, node, alive, err)
		}
		p, err := a.Read(ctx, sid, 0, 0)
		if err != nil || datas(p.Events) != winner {
			t.Fatalf("%d: log %q, winner %q", i, datas(p.Events), winner)
		}
	}
}

// TestResumeWhileAppending follows the reader's recipe while the owner
// keeps appending: subscribe, read the log after the resume point, then
// hand the live events to a Cursor; every event arrives once, in order.
func TestResumeWhileAppending(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 30*time.Second)
	sid := sidOf("resume")
	const n = 300
	var mu sync.Mutex
	var seqs []uint64
	writerDone := make(chan error, 1)
	go func() {
		var last uint64
		for i := range n {
			s, err := e.Append(ctx, sid, last, fmt.Sprint(i), []byte(fmt.Sprint(i)))
			if err != nil {
				writerDone <- err
				return
			}
			last = s
			mu.Lock()
			seqs = append(seqs, s)
			mu.Unlock()
		}
		writerDone <- nil
	}()
	// The client saw up to the 20th event, then reconnected.
	testwait.For(t, 10*time.Second, "20 events", func() bool { mu.Lock(); defer mu.Unlock(); return len(seqs) >= 20 })
	mu.Lock()
	resume := seqs[19]
	mu.Unlock()

	live := make(chan Live, n+10)
	sub, err := e.Subscribe(sid, func(l Live) { live <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var got []Event
	after := resume
	for {
		p, err := e.Read(ctx, sid, after, 37)
		if err != nil || p.TooOld {
			t.Fatalf("read: %+v %v", p, err)
		}
		got = append(got, p.Events...)
		after = p.Last
		if !p.More {
			break
		}
	}
	cur := e.NewCursor(sid, after)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	last := seqs[n-1]
	for cur.Last() < last {
		select {
		case l := <-live:
			evs, err := cur.Next(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, evs...)
		case <-time.After(2 * time.Second):
			evs, err := cur.CatchUp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("CatchUp at %d (last %d): %d events", cur.Last(), last, len(evs))
			got = append(got, evs...)
		}
	}
	if len(got) != n-20 {
		t.Fatalf("got %d events, want %d", len(got), n-20)
	}
	for i, ev := range got {
		if string(ev.Data) != fmt.Sprint(i+20) {
			t.Fatalf("event %d is %q", i, ev.Data)
		}
	}
}

// TestNoWriteAfterTakeover: two nodes keep claiming one session and
// appending to it while their lease renewals fail in turn. In the log,
// every event is written by the owner named by the last owner marker
// before it (nothing a node wrote reaches the log after another node took
// over), and the chain of predecessors has no fork.
func TestNoWriteAfterTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("several lease TTLs")
	}
	s := runServer(t)
	ttl := time.Second
	// A ring larger than what the writers write (≈ 1,200 events since
	// takeovers come when the lease is reaped): the walk below checks the
	// whole log, from its first event.
	const ring = 100_000
	a := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a", LeaseTTL: ttl, MaxEventsPerCustomer: ring})
	b := startEngine(t, Config{URL: s.ClientURL(), NodeID: "b", LeaseTTL: ttl, MaxEventsPerCustomer: ring})
	ctx := ctxT(t, 60*time.Second)
	sid := sidOf("takeovers")
	stop := make(chan struct{})
	errs := make(chan error, 2)
	writer := func(e *Engine) {
		for {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			own, err := e.Own(ctx, sid)
			if errors.Is(err, ErrOwned) || errors.Is(err, ErrFenced) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if err != nil {
				errs <- err
				return
			}
			last := own.LastSeq
			for {
				s, err := e.AppendOwned(ctx, own, last, "", []byte(e.NodeID()))
				if errors.Is(err, ErrFenced) {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				last = s
				select {
				case <-stop:
					errs <- nil
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
	}
	go writer(a)
	go writer(b)
	// Renewals fail on the owner's side until the other node owns the
	// session; twice each way.
	for range 4 {
		var cur, other *Engine
		testwait.For(t, 10*ttl, "an owner", func() bool {
			node, alive, err := a.Owner(ctx, sid)
			if err != nil || !alive {
				return false
			}
			cur, other = a, b
			if node == "b" {
				cur, other = b, a
			}
			return true
		})
		cur.lease.partitioned.Store(true)
		testwait.For(t, 10*ttl, "a takeover", func() bool {
			node, alive, _ := a.Owner(ctx, sid)
			return alive && node == other.NodeID()
		})
		cur.lease.partitioned.Store(false)
	}
	close(stop)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	// Walk the stream: markers set the owner; events must be the owner's.
	sn, _ := a.names(sid)
	st, err := a.js.Stream(ctx, sn.name)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq, err := a.LastSeq(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	var owner string
	var prev uint64
	markers, events := 0, map[string]int{}
	for seq := uint64(1); seq <= lastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil || m.Subject != sn.evPfx+string(sid) {
			continue
		}
		if p := m.Header.Get(hdrPrev); p != fmt.Sprint(prev) {
			t.Fatalf("seq %d: predecessor %s, want %d (a fork)", seq, p, prev)
		}
		prev = seq
		if o := m.Header.Get(hdrOwner); o != "" {
			owner = o
			markers++
			continue
		}
		if string(m.Data) != owner {
			t.Fatalf("seq %d written by %s after %s took over", seq, m.Data, owner)
		}
		events[owner]++
	}
	if markers < 5 || events["a"] == 0 || events["b"] == 0 {
		t.Fatalf("%d markers, events %v", markers, events)
	}
	t.Logf("%d owner markers, events %v", markers, events)
}

// TestRetryUnavailableBoundsAttempts: an attempt that gets no answer (a
// JetStream API request to a stream whose killed leader is not replaced
// yet is dropped) is given up after attemptTimeout and tried again, not
// waited for until the caller's context ends.
func TestRetryUnavailableBoundsAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		attempts := 0
		err := retryUnavailable(ctx, func(ctx context.Context) error {
			attempts++
			if attempts == 1 {
				<-ctx.Done() // the dropped request: no answer
				return ctx.Err()
			}
			return nil
		})
		if err != nil || attempts != 2 {
			t.Fatalf("err %v after %d attempts", err, attempts)
		}
		if took := time.Since(start); took > attemptTimeout+time.Second {
			t.Errorf("the unanswered attempt held the call for %v", took)
		}
		// The caller's own deadline still ends it, with its error.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel2()
		err = retryUnavailable(ctx2, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want the caller's deadline", err)
		}
	})
}

// TestReadAllocatesLittle: a Read costs kilobytes, not the 512 KiB channel
// nats.go's SubscribeSync makes for every subscription (64Ki pointers):
// at a few hundred stream opens a second, two reads each, that channel
// was most of the gateway's allocation.
func TestReadAllocatesLittle(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("read-allocs")
	own, err := e.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AppendOwned(ctx, own, own.LastSeq, "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	read := func() {
		if p, err := e.Read(ctx, sid, 0, 0); err != nil || len(p.Events) != 1 {
			t.Fatalf("Read: %+v %v", p, err)
		}
	}
	read() // warm up
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		read()
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("a Read allocates %d bytes", per)
	if per > 64<<10 {
		t.Errorf("a Read allocates %d KiB, want at most 64", per>>10)
	}
}

// TestOwnerID: the owner's incarnation changes with every change of owner,
// also when the same node, restarted, owns the session again (a forwarded
// call sent to an owner that died watches it: session.Pool.forward).
func TestOwnerID(t *testing.T) {
	s := runServer(t)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("owner-id")
	a1 := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	if id, alive, err := a1.OwnerID(ctx, sid); id != "" || alive || err != nil {
		t.Fatalf("no owner yet: %q %v %v", id, alive, err)
	}
	if _, err := a1.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	id1, alive, err := a1.OwnerID(ctx, sid)
	if !strings.HasPrefix(id1, "a ") || !alive || err != nil {
		t.Fatalf("owned by a: %q %v %v", id1, alive, err)
	}
	if err := a1.Release(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if err := a1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Node a again, a new process: a new lease epoch.
	a2 := startEngine(t, Config{URL: s.ClientURL(), NodeID: "a"})
	if _, err := a2.Own(ctx, sid); err != nil {
		t.Fatal(err)
	}
	id2, alive, err := a2.OwnerID(ctx, sid)
	if node, _, _ := a2.Owner(ctx, sid); node != "a" || id2 == id1 || !strings.HasPrefix(id2, "a ") || !alive || err != nil {
		t.Fatalf("owned by a restarted: %q (before %q), node %q, %v %v", id2, id1, node, alive, err)
	}
}

// TestAppendAllocatesLittle: an acknowledged Append on the embedded
// default (SingleNode) costs the process (client and embedded server
// together) at most 48 allocations (36 measured, 40–43 under the race
// detector): one timed request with no context of its own, the
// acknowledgement read without encoding/json, the header map made at its
// size. 72 before, 60 with the server republishing (not SingleNode).
func TestAppendAllocatesLittle(t *testing.T) {
	// SingleNode, as the gateway runs its embedded engine: no watch on
	// other nodes' leases, whose start would be counted here.
	e := embedded(t, func(c *Config) { c.SingleNode = true })
	ctx := context.Background()
	sid := sidOf("append-allocs")
	data := make([]byte, 256)
	last, err := e.Append(ctx, sid, 0, "warm", data)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		if last, err = e.Append(ctx, sid, last, strconv.Itoa(i), data); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.Mallocs - before.Mallocs) / n
	t.Logf("an Append allocates %d times, %d bytes", per, (after.TotalAlloc-before.TotalAlloc)/n)
	if per > 48 {
		t.Errorf("an Append allocates %d times, want at most 48", per)
	}
}

func TestParsePlainAck(t *testing.T) {
	for in, want := range map[string]uint64{
		`{"stream":"CGW_EV_0","seq":1}`:                                 1,
		`{"stream":"CGW_EV_12","seq":9876543}`:                          9876543,
		`{"stream":"CGW_EV_0","seq":0}`:                                 0, // no sequence: decoded in full
		`{"stream":"CGW_EV_0","seq":5,"duplicate": true}`:               0,
		`{"stream":"CGW_EV_0","domain":"d","seq":5}`:                    0,
		`{"error":{"code":400,"err_code":10071,"description":"wrong"}}`: 0,
		`{"stream":"CGW_EV_0","seq":-1}`:                                0,
		`{"stream":"CGW_EV_0","seq":}`:                                  0,
		`{"stream":"a\",\"seq\":7","seq":1x}`:                           0,
		``:                                                              0,
	} {
		got, ok := parsePlainAck([]byte(in))
		if got != want || ok != (want != 0) {
			t.Errorf("parsePlainAck(%s) = %d %v, want %d", in, got, ok, want)
		}
	}
}

// TestDuplicateWindowIsShort: the log streams keep appends' message ids
// for 20s by default, not the server's 2m (nats-server #8485): a retried
// append outside it is still recognised by the customer's last event
// (TestAppendRetrySameMsgID, TestEngineTruths).
func TestDuplicateWindowIsShort(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	s, err := e.js.Stream(ctx, streamPrefix+"0")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.Duplicates; d != 20*time.Second {
		t.Fatalf("duplicate window %v, want 20s", d)
	}
}

// TestSingleNodeNoRePublish: a SingleNode engine's log streams do not
// republish (and a store made without it loses its republish, and gets
// it back) and keep the least duplicate window, and its log works as
// before.
func TestSingleNodeNoRePublish(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t, 30*time.Second)
	republish := func(e *Engine) bool {
		t.Helper()
		s, err := e.js.Stream(ctx, streamPrefix+"0")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.RePublish != nil
	}
	sid := sidOf("single")
	var last uint64
	for i, single := range []bool{false, true, false, true} {
		e, err := Start(ctx, Config{DataDir: dir, NodeID: "n1", ClusterKey: testKey(), SingleNode: single})
		if err != nil {
			t.Fatal(err)
		}
		if got := republish(e); got == single || e.SingleNode() != single {
			t.Fatalf("start %d (single %v): republish %v", i, single, got)
		}
		s, err := e.js.Stream(ctx, streamPrefix+"0")
		if err != nil {
			t.Fatal(err)
		}
		if d, want := s.CachedInfo().Config.Duplicates, map[bool]time.Duration{false: 20 * time.Second, true: minDuplicates}[single]; d != want {
			t.Fatalf("start %d (single %v): duplicate window %v, want %v", i, single, d, want)
		}
		if last, err = e.Append(ctx, sid, last, fmt.Sprint(i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if p, err := e.Read(ctx, sid, 0, 0); err != nil || len(p.Events) != i+1 || p.Last != last {
			t.Fatalf("start %d: read %+v %v", i, p, err)
		}
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamsDefault: Streams 0 is one log stream for a new SingleNode
// store, four for another new store, and an existing store's own number
// whatever SingleNode says.
func TestStreamsDefault(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	count := func(e *Engine) int {
		t.Helper()
		n := 0
		for name := range e.js.StreamNames(ctx).Name() {
			if strings.HasPrefix(name, streamPrefix) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		single bool
		want   int
	}{{true, 1}, {false, 4}} {
		dir := t.TempDir()
		for i, single := range []bool{c.single, !c.single} {
			e, err := Start(ctx, Config{DataDir: dir, NodeID: "n1", ClusterKey: testKey(), SingleNode: single})
			if err != nil {
				t.Fatal(err)
			}
			if got := count(e); got != c.want || len(e.streams) != c.want {
				t.Errorf("new store single %v, start %d (single %v): %d streams (%d used), want %d", c.single, i, single, got, len(e.streams), c.want)
			}
			if err := e.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOwnEmptyLog: a customer's first owner learns that its log holds
// nothing earlier (Ownership.Empty); an owner after it (the record
// released) does not. A log with events but no owner record (an
// ownerless Append; a record the bucket's MaxAge dropped) refuses the
// marker appended as if empty: Own reads the last sequence then, and its
// marker follows the last event, as ever.
func TestOwnEmptyLog(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)

	first := sidOf("first-owner")
	own, err := e.Own(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if !own.Empty || own.LastSeq == 0 {
		t.Fatalf("the first Own of a customer: %+v, want Empty and the marker's sequence", own)
	}
	s1, err := e.AppendOwned(ctx, own, own.LastSeq, "", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	again, err := e.Own(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if again.Empty || again.LastSeq <= s1 {
		t.Fatalf("Own after a release: %+v, want not Empty, the marker after %d", again, s1)
	}

	orphan := sidOf("no-record")
	s2, err := e.Append(ctx, orphan, 0, "", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	own3, err := e.Own(ctx, orphan)
	if err != nil {
		t.Fatal(err)
	}
	if own3.Empty || own3.LastSeq <= s2 {
		t.Fatalf("Own of a log with events and no record: %+v, want not Empty, the marker after %d", own3, s2)
	}
	if _, err := e.AppendOwned(ctx, own3, own3.LastSeq, "", []byte("y")); err != nil {
		t.Fatalf("append after the marker: %v", err)
	}
}
