package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
	"go.uber.org/goleak"
)

func TestAcquireSharesOneCreation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int32
		cfg := fastConfig()
		cfg.Dial = func(ctx context.Context, c chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
			dials.Add(1)
			// In the bubble the clock moves only when every other
			// goroutine is blocked: this returns once the other Acquires
			// all wait for this creation.
			time.Sleep(time.Second)
			return chatio.Dial(ctx, c)
		}
		e := newBubbleEnv(t, cfg, chatiosim.Config{})
		const n = 20
		got := make([]*Session, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s, err := e.pool.Acquire(ctxT(t), "tok-shared")
				if err != nil {
					t.Errorf("acquire: %v", err)
				}
				got[i] = s
			})
		}
		wg.Wait()
		for _, s := range got[1:] {
			if s != got[0] {
				t.Fatal("concurrent Acquires returned different sessions")
			}
		}
		if d := dials.Load(); d != 1 {
			t.Fatalf("dials = %d, want 1", d)
		}
		if n := e.srv.OpenSockets(); n != 1 {
			t.Fatalf("open sockets = %d, want 1", n)
		}
		if got[0].CustomerID() != chatiosim.CustomerIDForToken("tok-shared") {
			t.Fatalf("customer id %q", got[0].CustomerID())
		}
		if st := got[0].Status(); st != StatusConnected {
			t.Fatalf("status %q", st)
		}
		if v := metricValue(e.pool.m.sessions); v != 1 {
			t.Fatalf("gateway_sessions = %v", v)
		}
	})
}

func TestSnapshotAndFanOut(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-fan")
	a := subscribe(t, s, "")
	b := subscribe(t, s, "")

	snap := a.Snapshot()
	if len(snap) < 2 || snap[0].Name != sdk.EventCustomerID || snap[len(snap)-1].Name != sdk.EventConnected {
		t.Fatalf("snapshot %v", names(snap))
	}
	if string(snap[0].Data) != strconv.Quote(s.CustomerID()) || snap[0].ID != "" {
		t.Fatalf("customer_id message %+v", snap[0])
	}
	if snap[len(snap)-1].ID == "" {
		t.Fatal("connected without id")
	}

	chat := startChat(t, s)
	agent := e.srv.Agent("agent-1", "Agent One")
	agentMsg, err := agent.SendMessage(chat, "hello from the agent")
	if err != nil {
		t.Fatal(err)
	}
	own := sendMessage(t, s, chat, "hello from the customer")

	for _, sub := range []*Subscriber{a, b} {
		seen := map[string]int{}
		var last uint64
		for seen[own] == 0 {
			m := next(t, sub)
			if q := seqOf(t, m); q <= last {
				t.Fatalf("sequence not rising: %d after %d", q, last)
			} else {
				last = q
			}
			if id := newEventID(t, m); id != "" {
				seen[id]++
			}
		}
		if seen[agentMsg] != 1 || seen[own] != 1 {
			t.Fatalf("new_event counts: agent %d, own %d", seen[agentMsg], seen[own])
		}
	}
	// Nothing else queued: no duplicates behind.
	for _, sub := range []*Subscriber{a, b} {
		select {
		case m := <-sub.C():
			if id := newEventID(t, m); id == own || id == agentMsg {
				t.Fatalf("duplicate new_event %s", id)
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func names(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestResumeWithLastEventID(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-resume")
	chat := startChat(t, s)
	agent := e.srv.Agent("agent-1", "")

	ref := subscribe(t, s, "") // reads everything, as the reference
	first := subscribe(t, s, "")
	for i := range 5 {
		if _, err := agent.SendMessage(chat, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	// first reads up to some point, then goes away.
	var lastID string
	for n := 0; n < 3; {
		m := next(t, first)
		lastID = m.ID
		if m.Name == sdk.EventNewEvent {
			n++
		}
	}
	first.Close()
	if first.Err() != nil {
		t.Fatalf("err after Close: %v", first.Err())
	}
	first.Close() // idempotent
	for i := 5; i < 8; i++ {
		if _, err := agent.SendMessage(chat, fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	// reference: everything up to m7.
	var all []Message
	for {
		m := next(t, ref)
		all = append(all, m)
		if m.Name == sdk.EventNewEvent && len(all) > 0 && newEventID(t, m) == e.srv.Events(chat)[7].ID {
			break
		}
	}
	resumed := subscribe(t, s, lastID)
	if len(resumed.Snapshot()) != 0 {
		t.Fatalf("resume gave a snapshot %v", names(resumed.Snapshot()))
	}
	var want []Message
	for i, m := range all {
		if m.ID == lastID {
			want = all[i+1:]
		}
	}
	if len(want) == 0 {
		t.Fatal("lastID not in the reference stream")
	}
	for _, w := range want {
		g := next(t, resumed)
		if g.ID != w.ID || g.Name != w.Name || string(g.Data) != string(w.Data) {
			t.Fatalf("resumed %s %s, want %s %s", g.ID, g.Name, w.ID, w.Name)
		}
	}
	// and live events follow.
	id, err := agent.SendMessage(chat, "live")
	if err != nil {
		t.Fatal(err)
	}
	for {
		m := next(t, resumed)
		if newEventID(t, m) == id {
			break
		}
	}
}

func TestStaleEventIDGetsSnapshot(t *testing.T) {
	cfg := fastConfig()
	cfg.ReplayBuffer = 4
	e := newEnv(t, cfg, chatiosim.Config{})
	s := e.acquire(t, "tok-stale")
	chat := startChat(t, s)
	ref := subscribe(t, s, "")
	agent := e.srv.Agent("agent-1", "")
	for range 10 {
		if err := agent.Typing(chat, true); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []Message
	for len(msgs) < 10 {
		if m := next(t, ref); m.Name == sdk.EventUserIsTyping {
			msgs = append(msgs, m)
		}
	}
	cur := seqOf(t, msgs[9])
	for _, last := range []string{msgs[0].ID, "garbage", "-1", strconv.FormatUint(cur+100, 10)} {
		sub := subscribe(t, s, last)
		snap := sub.Snapshot()
		if len(snap) == 0 || snap[len(snap)-1].Name != sdk.EventConnected {
			t.Fatalf("last=%q: no fresh snapshot: %v", last, names(snap))
		}
		if got := seqOf(t, snap[len(snap)-1]); got != cur {
			t.Fatalf("last=%q: connected id %d, want %d", last, got, cur)
		}
		sub.Close()
	}
	// Within the ring: no snapshot, exactly the later events.
	sub := subscribe(t, s, msgs[7].ID)
	if len(sub.Snapshot()) != 0 {
		t.Fatal("snapshot for a resumable id")
	}
	for _, w := range msgs[8:] {
		if g := next(t, sub); g.ID != w.ID {
			t.Fatalf("got %s want %s", g.ID, w.ID)
		}
	}
	// The current id resumes with nothing to replay.
	sub2 := subscribe(t, s, msgs[9].ID)
	if len(sub2.Snapshot()) != 0 || len(sub2.C()) != 0 {
		t.Fatal("current id should resume empty")
	}
}

func TestSlowSubscriberIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.SubscriberBuffer = 4
		e := newBubbleEnv(t, cfg, chatiosim.Config{})
		s := e.acquire(t, "tok-slow")
		chat := startChat(t, s)
		slow := subscribe(t, s, "")
		healthy := subscribe(t, s, "")
		agent := e.srv.Agent("agent-1", "")
		// The agent joining produces events too; typing makes many small ones.
		const n = 40
		done := make(chan int)
		go func() {
			got := 0
			for m := range healthy.C() {
				if m.Name == sdk.EventUserIsTyping {
					got++
					if got == n {
						break
					}
				}
			}
			done <- got
		}()
		for range n {
			if err := agent.Typing(chat, true); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // the healthy one has read all there is
		}
		select {
		case got := <-done:
			if got != n {
				t.Fatalf("healthy got %d", got)
			}
		case <-time.After(waitLong):
			t.Fatal("healthy subscriber starved")
		}
		queued := waitClosed(t, slow)
		if !errors.Is(slow.Err(), ErrSlowSubscriber) {
			t.Fatalf("slow err = %v", slow.Err())
		}
		if len(queued) > cfg.SubscriberBuffer {
			t.Fatalf("slow queue held %d > %d", len(queued), cfg.SubscriberBuffer)
		}
		if v := metricValue(e.pool.m.subscribersCut.WithLabelValues(reasonSlow)); v != 1 {
			t.Fatalf("cut counter %v", v)
		}
		// The healthy one is still registered.
		if metricValue(e.pool.m.subscribers) != 1 {
			t.Fatal("subscribers gauge")
		}
	})
}

func TestReconnectFillsGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		s := e.acquire(t, "tok-gap")
		chat := startChat(t, s)
		agent := e.srv.Agent("agent-1", "")
		before, err := agent.SendMessage(chat, "before the drop")
		if err != nil {
			t.Fatal(err)
		}
		quiet := startChat(t, s) // a chat without any event yet
		sub := subscribe(t, s, "")
		waitDelivered(t, s, before)

		msgs := dropUpstream(t, e, sub, 300*time.Millisecond)
		if string(msgs[len(msgs)-1].Data) != "null" {
			t.Fatalf("connection_lost data %s", msgs[len(msgs)-1].Data)
		}
		eventually(t, "reconnecting status", func() bool { return s.Status() == StatusReconnecting })
		missed1, err := agent.SendMessage(chat, "while down 1")
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.CloseThread(chat); err != nil {
			t.Fatal(err)
		}
		missed2, err := agent.SendMessage(chat, "while down, new thread")
		if err != nil {
			t.Fatal(err)
		}
		missed3, err := agent.SendMessage(quiet, "while down, in the quiet chat")
		if err != nil {
			t.Fatal(err)
		}

		msgs = until(t, sub, sdk.EventConnectionRestored)
		var got []string
		sawSummary := false
		for _, m := range msgs {
			if id := newEventID(t, m); id != "" {
				got = append(got, id)
			}
			if m.Name == sdk.EventThreadSummary {
				sawSummary = true
			}
		}
		if want := []string{missed1, missed2, missed3}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("gap fill delivered %v, want %v", got, want)
		}
		if !sawSummary {
			t.Fatal("no thread_summary for the thread opened while down")
		}
		var restored struct {
			ChatsSummary []json.RawMessage `json:"chatsSummary"`
			TotalChats   int               `json:"totalChats"`
		}
		if err := json.Unmarshal(msgs[len(msgs)-1].Data, &restored); err != nil || restored.TotalChats != 2 {
			t.Fatalf("connection_restored %s (%v)", msgs[len(msgs)-1].Data, err)
		}
		if s.Status() != StatusConnected {
			t.Fatalf("status %s", s.Status())
		}
		// Live again, and the gap-filled events are not repeated.
		live, err := agent.SendMessage(chat, "after")
		if err != nil {
			t.Fatal(err)
		}
		for {
			m := next(t, sub)
			id := newEventID(t, m)
			if id == missed1 || id == missed2 || id == missed3 {
				t.Fatalf("duplicate %s", id)
			}
			if id == live {
				break
			}
		}
		if metricValue(e.pool.m.reconnects) != 1 {
			t.Fatal("reconnects counter")
		}
	})
}

func TestDoWaitsForReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		s := e.acquire(t, "tok-wait")
		chat := startChat(t, s)
		e.srv.RefuseConnections(200 * time.Millisecond)
		e.srv.DropAll()
		eventually(t, "reconnecting", func() bool { return s.Status() == StatusReconnecting })
		// Waits for the reconnect, then succeeds.
		sendMessage(t, s, chat, "after reconnect")

		// While down, a call's own deadline ends its wait.
		e.srv.RefuseConnections(time.Second)
		e.srv.DropAll()
		eventually(t, "reconnecting", func() bool { return s.Status() == StatusReconnecting })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.Do(ctx, func(context.Context, *chatio.Client) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("Do while down: %v after %v", err, time.Since(start))
		}

		// Without a deadline of its own, a call waits ReconnectWait, then
		// fails with ErrConnectionLost.
		e.srv.RefuseConnections(time.Hour)
		e.srv.DropAll()
		eventually(t, "reconnecting", func() bool { return s.Status() == StatusReconnecting })
		start = time.Now()
		err = s.Do(context.Background(), func(context.Context, *chatio.Client) error { return nil })
		if !errors.Is(err, chatio.ErrConnectionLost) || time.Since(start) != s.cfg.ReconnectWait {
			t.Fatalf("Do while down: %v after %v, want ErrConnectionLost after ReconnectWait (%v)", err, time.Since(start), s.cfg.ReconnectWait)
		}
	})
}

// TestReconnectBackoff: while the upstream refuses connections, the
// session redials with full-jitter exponential backoff at the defaults
// (ReconnectMin 250ms doubling up to ReconnectMax 30s): the pause before
// attempt n is below min(30s, 250ms·2^n), so a minute of refusal sees at
// least seven refused attempts (the first seven pauses add up to less than
// 32 s), and no more than a few dozen; the session is back
// within one pause of the refusal's end. In a synctest bubble: each pause
// is measured exactly, in no wall time.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var starts, ends []time.Time
		cfg := fastConfig()
		cfg.ReconnectMin, cfg.ReconnectMax = 0, 0 // the defaults
		cfg.ReconnectWait = time.Hour
		cfg.Dial = func(ctx context.Context, c chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			cl, lr, err := chatio.Dial(ctx, c)
			mu.Lock()
			ends = append(ends, time.Now())
			mu.Unlock()
			return cl, lr, err
		}
		e := newBubbleEnv(t, cfg, chatiosim.Config{})
		s := e.acquire(t, "tok-backoff")
		if s.cfg.ReconnectMin != 250*time.Millisecond || s.cfg.ReconnectMax != 30*time.Second {
			t.Fatalf("backoff defaults %v..%v", s.cfg.ReconnectMin, s.cfg.ReconnectMax)
		}
		sub := subscribe(t, s, "")
		const refusal = time.Minute
		e.srv.RefuseConnections(refusal)
		droppedAt := time.Now()
		e.srv.DropAll()
		wait := time.After(refusal + 2*s.cfg.ReconnectMax)
	restored:
		for {
			select {
			case m := <-sub.C():
				if m.Name == sdk.EventConnectionRestored {
					break restored
				}
			case <-wait:
				t.Fatal("not back after the refusal")
			}
		}
		back := time.Since(droppedAt)

		mu.Lock()
		defer mu.Unlock()
		starts, ends = starts[1:], ends[1:] // the first dial, before the drop
		t.Logf("%d dials over a %v refusal; back %v after the drop", len(starts), refusal, back)
		if len(starts) < 8 || len(starts) > 40 {
			t.Fatalf("%d dials for a %v refusal, want 8..40 (7 or more refused, then one)", len(starts), refusal)
		}
		window := s.cfg.ReconnectMin
		prev := droppedAt
		for n, at := range starts {
			if pause := at.Sub(prev); pause < 0 || pause >= window {
				t.Errorf("attempt %d after a pause of %v, want below %v", n, pause, window)
			}
			prev = ends[n]
			window = min(2*window, s.cfg.ReconnectMax)
		}
		if last := starts[len(starts)-1]; last.Sub(droppedAt) < refusal {
			t.Errorf("reconnected %v after the drop, during the refusal", last.Sub(droppedAt))
		}
		if back > refusal+s.cfg.ReconnectMax {
			t.Errorf("back %v after the drop, more than one pause after the refusal", back)
		}
		if v := metricValue(e.pool.m.dialFailures.WithLabelValues("network")) + metricValue(e.pool.m.dialFailures.WithLabelValues("request")); v != float64(len(starts)-1) {
			t.Errorf("dial failures counted %v, want %d", v, len(starts)-1)
		}
	})
}

func TestReloginRefusedEndsSession(t *testing.T) {
	var revoked atomic.Bool
	policy := func(tok string) (string, error) {
		if revoked.Load() {
			return "", chatiosim.ErrTokenExpired
		}
		return chatiosim.AnyToken(tok)
	}
	e := newEnv(t, fastConfig(), chatiosim.Config{Tokens: policy})
	s := e.acquire(t, "tok-revoked")
	sub := subscribe(t, s, "")
	revoked.Store(true)
	e.srv.DropAll()
	msgs := until(t, sub, sdk.EventDisconnected)
	if msgs[0].Name != sdk.EventConnectionLost {
		t.Fatalf("first %s", msgs[0].Name)
	}
	if d := string(msgs[len(msgs)-1].Data); d != `{"reason":"authentication"}` {
		t.Fatalf("disconnected data %s", d)
	}
	waitClosed(t, sub)
	if !errors.Is(sub.Err(), ErrSessionClosed) || !errors.Is(sub.Err(), chatio.ErrAuthentication) {
		t.Fatalf("sub err %v", sub.Err())
	}
	<-s.Done()
	if e.pool.Len() != 0 {
		t.Fatal("session still in the pool")
	}
	if _, err := e.pool.Acquire(ctxT(t), "tok-revoked"); !errors.Is(err, chatio.ErrAuthentication) {
		t.Fatalf("acquire after revoke: %v", err)
	}
	if s.Status() != StatusDisconnected {
		t.Fatal(s.Status())
	}
}

func TestCustomerDisconnectedNoRetry(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-kicked")
	sub := subscribe(t, s, "")
	e.srv.DisconnectCustomer(s.CustomerID(), "logged_out_remotely")
	msgs := until(t, sub, sdk.EventDisconnected)
	if d := string(msgs[len(msgs)-1].Data); d != `{"reason":"logged_out_remotely"}` {
		t.Fatalf("disconnected data %s", d)
	}
	waitClosed(t, sub)
	var de *chatio.DisconnectedError
	if !errors.Is(sub.Err(), ErrSessionClosed) || !errors.As(sub.Err(), &de) {
		t.Fatalf("sub err %v", sub.Err())
	}
	<-s.Done()
	if e.pool.Len() != 0 {
		t.Fatal("session left in the pool")
	}
	eventually(t, "socket closed", func() bool { return e.srv.OpenSockets() == 0 })
}

// TestIdleEviction: a session without subscriber and without call ends
// IdleTimeout (the default, 2 minutes) after its last use, not before, and
// closes its socket; one with a subscriber stays, and ends IdleTimeout
// after its last subscriber left. In a synctest bubble: to the instant.
func TestIdleEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.IdleTimeout = 0 // the default
		e := newBubbleEnv(t, cfg, chatiosim.Config{})
		s := e.acquire(t, "tok-idle")
		busy := e.acquire(t, "tok-busy")
		sub := subscribe(t, busy, "")
		idle := s.cfg.IdleTimeout
		if idle != 2*time.Minute {
			t.Fatalf("IdleTimeout %v, want the default 2m", idle)
		}
		// endsAt: done is open until d from now, closed at d.
		endsAt := func(what string, done <-chan struct{}, d time.Duration) {
			t.Helper()
			time.Sleep(d - time.Millisecond)
			synctest.Wait()
			select {
			case <-done:
				t.Fatalf("%s: ended before its idle timeout", what)
			default:
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			select {
			case <-done:
			default:
				t.Fatalf("%s: not ended at its idle timeout", what)
			}
		}
		endsAt("idle session", s.Done(), idle)
		if n := e.srv.OpenSockets(); n != 1 {
			t.Fatalf("%d sockets open, want the busy session's", n)
		}
		if e.pool.Len() != 1 {
			t.Fatalf("pool len %d", e.pool.Len())
		}
		if busy.Status() != StatusConnected {
			t.Fatal("session with a subscriber evicted")
		}
		// A new Acquire makes a fresh session.
		s2 := e.acquire(t, "tok-idle")
		if s2 == s {
			t.Fatal("evicted session returned")
		}
		if err := s.Do(ctxT(t), func(context.Context, *chatio.Client) error { return nil }); !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("Do on evicted: %v", err)
		}
		time.Sleep(idle / 2)
		sub.Close()
		endsAt("session whose last subscriber left", busy.Done(), idle)
	})
}

func TestMaxSessions(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxSessions = 2
	e := newEnv(t, cfg, chatiosim.Config{})
	e.acquire(t, "a")
	e.acquire(t, "b")
	if _, err := e.pool.Acquire(ctxT(t), "c"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third session: %v", err)
	}
	e.acquire(t, "a") // existing ones are still served
}

func TestLimits(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxSubscribers = 1
	cfg.MaxInFlight = 1
	e := newEnv(t, cfg, chatiosim.Config{})
	s := e.acquire(t, "tok-limits")
	subscribe(t, s, "")
	if _, err := s.Subscribe(ctxT(t), ""); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("second subscriber: %v", err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_ = s.Do(context.Background(), func(context.Context, *chatio.Client) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	if err := s.Do(ctxT(t), func(context.Context, *chatio.Client) error { return nil }); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second call: %v", err)
	}
	close(release)
}

// TestSneakPeekThrottle: the first SetSneakPeek of a quiet period is sent
// at once; those within SneakPeekInterval of it are held, and only the
// latest is sent, when the interval has passed; after a quiet interval the
// next call is sent at once again. In a synctest bubble, at the SDK's own
// interval (the default, 2 s), to the instant, in no wall time.
func TestSneakPeekThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.SneakPeekInterval = 0 // the default: the SDK's throttle
		e := newBubbleEnv(t, cfg, chatiosim.Config{})
		s := e.acquire(t, "tok-peek")
		chat := startChat(t, s)
		interval := s.cfg.SneakPeekInterval
		if interval != 2*time.Second {
			t.Fatalf("default interval %v, want the SDK's 2s", interval)
		}
		acts, stop := e.srv.Watch(64)
		defer stop()
		start := time.Now()
		type sent struct {
			text string
			at   time.Duration // since start, on the bubble's clock
		}
		// sends are the send_sneak_peeks the simulator has carried out
		// since the last look, once everything in the bubble has settled.
		sends := func() []sent {
			synctest.Wait()
			var got []sent
			for {
				select {
				case a := <-acts:
					if a.Action != chatio.ActionSendSneakPeek {
						continue
					}
					var p struct {
						Text string `json:"sneak_peek_text"`
					}
					_ = json.Unmarshal(a.Payload, &p)
					got = append(got, sent{p.Text, a.Time.Sub(start)})
				default:
					return got
				}
			}
		}
		want := func(what string, got []sent, w ...sent) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("%s: sends %+v, want %+v", what, got, w)
			}
		}

		s.SetSneakPeek(chat, "h")
		s.SetSneakPeek(chat, "he")
		s.SetSneakPeek(chat, "hel")
		want("leading", sends(), sent{"h", 0})
		time.Sleep(interval - time.Millisecond)
		want("held within the interval", sends())
		time.Sleep(time.Millisecond)
		want("trailing", sends(), sent{"hel", interval})
		time.Sleep(10 * interval)
		want("quiet", sends())

		// After a quiet interval the next call is leading again.
		s.SetSneakPeek(chat, "hello")
		want("leading again", sends(), sent{"hello", 11 * interval})
		if ci, _ := e.srv.Chat(chat); ci.SneakPeek != "hello" {
			t.Fatalf("simulator holds %q", ci.SneakPeek)
		}
	})
}

func TestSendRating(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-rate")
	chat := startChat(t, s)
	res, err := s.SendRating(ctxT(t), op.SendRating{ChatID: chat, Value: "good", Comment: "thanks"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if string(b) != `{"value":"good","comment":"thanks"}` {
		t.Fatalf("result %s", b)
	}
	ci, _ := e.srv.Chat(chat)
	props := string(ci.Threads[len(ci.Threads)-1].Properties)
	var p map[string]map[string]any
	if err := json.Unmarshal([]byte(props), &p); err != nil || p["rating"]["score"] != float64(1) || p["rating"]["comment"] != "thanks" {
		t.Fatalf("thread properties %s", props)
	}
	res, err = s.SendRating(ctxT(t), op.SendRating{ChatID: chat, Value: "bad", Comment: ""})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res); string(b) != `{"value":"bad"}` {
		t.Fatalf("result %s", b)
	}
	if _, err := s.SendRating(ctxT(t), op.SendRating{ChatID: chat, Value: "meh", Comment: ""}); !errors.Is(err, ErrBadRating) {
		t.Fatal(err)
	}
	var re *chatio.RequestError
	if _, err := s.SendRating(ctxT(t), op.SendRating{ChatID: "no-such-chat", Value: "good", Comment: ""}); !errors.As(err, &re) || re.Type != chatio.ErrTypeNotFound {
		t.Fatalf("unknown chat: %v", err)
	}
}

func TestDisconnect(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-bye")
	a := subscribe(t, s, "")
	b := subscribe(t, s, "")
	s.Disconnect()
	for _, sub := range []*Subscriber{a, b} {
		rest := waitClosed(t, sub)
		if len(rest) == 0 || rest[len(rest)-1].Name != sdk.EventDisconnected {
			t.Fatalf("no final disconnected: %v", names(rest))
		}
		if !errors.Is(sub.Err(), ErrSessionClosed) {
			t.Fatalf("err %v", sub.Err())
		}
	}
	if e.pool.Len() != 0 {
		t.Fatal("still pooled")
	}
	eventually(t, "socket closed", func() bool { return e.srv.OpenSockets() == 0 })
	s.Disconnect() // idempotent
	if _, err := s.Subscribe(ctxT(t), ""); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("subscribe after disconnect: %v", err)
	}
	if e.acquire(t, "tok-bye") == s {
		t.Fatal("old session returned")
	}
}

func TestShutdownLeavesNothing(t *testing.T) {
	// Runs after Start's cleanup (LIFO): the simulator and its listener are
	// gone by then, so every goroutine left would be ours.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	srv, url := chatiotest.Start(t, chatiosim.Config{})
	cfg := fastConfig()
	cfg.Upstream.URL, cfg.Upstream.License = url, 1
	p := NewPool(cfg, nil, nil)
	var subs []*Subscriber
	for i := range 5 {
		s, err := p.Acquire(ctxT(t), fmt.Sprint("tok-", i))
		if err != nil {
			t.Fatal(err)
		}
		sub, err := s.Subscribe(ctxT(t), "")
		if err != nil {
			t.Fatal(err)
		}
		s.SetSneakPeek("x", "y")
		subs = append(subs, sub)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		waitClosed(t, sub)
		if !errors.Is(sub.Err(), ErrDraining) {
			t.Fatalf("sub err %v", sub.Err())
		}
	}
	if _, err := p.Acquire(ctxT(t), "tok-0"); !errors.Is(err, ErrDraining) {
		t.Fatalf("acquire after shutdown: %v", err)
	}
	eventually(t, "sockets closed", func() bool { return srv.OpenSockets() == 0 })
}

func TestUpstreamRequestsLikeTheSDK(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	s := e.acquire(t, "tok-requests")
	if n := e.srv.Stats().Requests; n != 2 {
		t.Fatalf("creation sent %d requests, want 2 (login, get_chats_summary)", n)
	}
	// The first subscriber reuses the creation's summary.
	a := subscribe(t, s, "")
	b := subscribe(t, s, "")
	if n := e.srv.Stats().Requests; n != 2 {
		t.Fatalf("first subscribers sent %d requests", n-2)
	}
	if string(a.Snapshot()[len(a.Snapshot())-1].Data) != string(b.Snapshot()[len(b.Snapshot())-1].Data) {
		t.Fatal("snapshots differ")
	}
	chat := startChat(t, s)
	msg := sendMessage(t, s, chat, "hi")
	waitDelivered(t, s, msg)
	// The log moved: a new subscriber needs a fresh summary, which shows
	// the chat.
	before := e.srv.Stats().Requests
	c := subscribe(t, s, "")
	if n := e.srv.Stats().Requests - before; n != 1 {
		t.Fatalf("fresh snapshot sent %d requests", n)
	}
	var conn struct {
		TotalChats int `json:"totalChats"`
	}
	_ = json.Unmarshal(c.Snapshot()[len(c.Snapshot())-1].Data, &conn)
	if conn.TotalChats != 1 {
		t.Fatalf("snapshot %s", c.Snapshot()[len(c.Snapshot())-1].Data)
	}
	// A reconnect that missed nothing costs login + get_chats_summary only.
	before = e.srv.Stats().Requests
	e.srv.DropAll()
	until(t, a, sdk.EventConnectionRestored)
	if n := e.srv.Stats().Requests - before; n != 2 {
		t.Fatalf("reconnect sent %d requests, want 2", n)
	}
	// And the restored summary serves the next subscriber.
	before = e.srv.Stats().Requests
	subscribe(t, s, "")
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Fatalf("subscriber after restore sent %d requests", n)
	}
}
