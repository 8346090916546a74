package session

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// spillSession is a session without upstream whose subscribers queue
// buffer events: more than their channel holds.
func spillSession(t *testing.T, buffer, replay int) *Session {
	t.Helper()
	p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}, CursorKey: []byte("key"),
		SubscriberBuffer: buffer, ReplayBuffer: replay}, nil, nil)
	t.Cleanup(p.cancel)
	return newSession(p, "tok")
}

func addSub(s *Session) *Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(0, 0)
}

func publishN(s *Session, from, n int) {
	for i := from; i < from+n; i++ {
		s.publish(sdk.Event{Name: "e", Data: i})
	}
}

// readAll reads sub until it closes and checks the data are first, first+1, ….
func readAll(t *testing.T, sub *Subscriber, first int) int {
	t.Helper()
	n := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return n
			}
			if m.Name == "e" {
				if want := fmt.Sprint(first + n); string(m.Data) != want {
					t.Fatalf("event %d = %s, want %s", n, m.Data, want)
				}
			}
			n++
		case <-timeout:
			t.Fatalf("subscriber not closed after %d events", n)
		}
	}
}

func TestSubscriberSpill(t *testing.T) {
	const buffer = 3*subChanCap + 5

	t.Run("order and limit", func(t *testing.T) {
		s := spillSession(t, buffer, 8)
		sub := addSub(s)
		publishN(s, 0, buffer) // all queued: channel full, the rest spilled
		publishN(s, buffer, 2) // too many: cut off (the feeder's event in hand may let one more in)
		if n := readAll(t, sub, 0); n != buffer && n != buffer+1 {
			t.Fatalf("read %d events, want %d", n, buffer)
		}
		if !errors.Is(sub.Err(), ErrSlowSubscriber) {
			t.Fatalf("Err = %v", sub.Err())
		}
		sub.Close()
	})

	t.Run("keeps up", func(t *testing.T) {
		// Rounds of a full queue each, the next once the reader has taken
		// the last: the feeder starts and ends each round.
		s := spillSession(t, buffer, 8)
		sub := addSub(s)
		const rounds = 20
		roundRead := make(chan struct{})
		go func() {
			for round := range rounds {
				publishN(s, round*buffer, buffer)
				<-roundRead
			}
			s.stop(ErrSessionClosed, nil, nil)
		}()
		n := 0
		for m := range sub.C() {
			if want := fmt.Sprint(n); string(m.Data) != want {
				t.Fatalf("event %d = %s, want %s", n, m.Data, want)
			}
			n++
			if n%buffer == 0 {
				roundRead <- struct{}{}
			}
		}
		if n != rounds*buffer || !errors.Is(sub.Err(), ErrSessionClosed) {
			t.Fatalf("read %d events, want %d; Err = %v", n, rounds*buffer, sub.Err())
		}
	})

	t.Run("final slot", func(t *testing.T) {
		s := spillSession(t, buffer, 8)
		sub := addSub(s)
		publishN(s, 0, buffer)
		final := reasonMessage(DisconnectReasonLoggedOut)
		s.stop(ErrSessionClosed, &final, nil)
		var last Message
		n := 0
		for m := range sub.C() {
			last = m
			n++
		}
		if n != buffer+1 || last.Name != sdk.EventDisconnected {
			t.Fatalf("read %d events, last %q; want %d, the final one last", n, last.Name, buffer+1)
		}
	})

	t.Run("close drops the queue", func(t *testing.T) {
		s := spillSession(t, buffer, 8)
		sub := addSub(s)
		publishN(s, 0, buffer)
		sub.Close() // the feeder must not wait for a reader; TestMain checks for leaks
		n := 0
		for range sub.C() {
			n++
		}
		if n < subChanCap || n > buffer {
			t.Fatalf("read %d events after Close", n)
		}
		if sub.Err() != nil {
			t.Fatalf("Err = %v", sub.Err())
		}
	})

	t.Run("resume replays beyond the channel", func(t *testing.T) {
		s := spillSession(t, 4, 3*subChanCap)
		publishN(s, 0, 3*subChanCap)
		s.mu.Lock()
		from := s.seq - uint64(3*subChanCap)
		s.mu.Unlock()
		sub, err := s.resume(from)
		if err != nil || sub == nil {
			t.Fatalf("resume: %v %v", sub, err)
		}
		publishN(s, 3*subChanCap, 4)
		s.stop(ErrSessionClosed, nil, nil)
		if n := readAll(t, sub, 0); n != 3*subChanCap+4 {
			t.Fatalf("read %d events, want %d", n, 3*subChanCap+4)
		}
	})
}

// The ring grows with the log and then wraps: resumable ids are the same as
// with a ring allocated whole.
func TestRingGrows(t *testing.T) {
	const replay = 20
	s := spillSession(t, 256, replay)
	for total := 1; total <= 3*replay; total++ {
		publishN(s, total-1, 1)
		s.mu.Lock()
		seq, kept := s.seq, s.ringLen
		s.mu.Unlock()
		if kept != min(total, replay) {
			t.Fatalf("after %d events the ring keeps %d", total, kept)
		}
		// The oldest resumable id replays exactly the kept events, in order.
		sub, err := s.resume(seq - uint64(kept))
		if err != nil || sub == nil {
			t.Fatalf("resume after %d events: %v %v", total, sub, err)
		}
		for i := range kept {
			m := <-sub.C()
			if want := fmt.Sprint(total - kept + i); string(m.Data) != want {
				t.Fatalf("after %d events, replay %d = %s, want %s", total, i, m.Data, want)
			}
		}
		sub.Close()
		if sub2, _ := s.resume(seq - uint64(kept) - 1); sub2 != nil {
			t.Fatalf("after %d events an id older than the ring resumed", total)
		}
	}
	if cap(s.ring) != replay {
		t.Fatalf("ring capacity %d, want %d", cap(s.ring), replay)
	}
}
