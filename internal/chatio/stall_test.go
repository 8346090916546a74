package chatio

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestCallTimeoutProbesStall: with a long ping interval, the first call
// that gets no answer in time makes the client ping at once; a peer that
// does not pong either is then declared stalled within PongTimeout and the
// socket is given up (the session redials).
func TestCallTimeoutProbesStall(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	f.stall.Store(true)
	const reqTO, pong = 100 * time.Millisecond, 150 * time.Millisecond
	c, _, _ := dialFake(t, f, Config{PingInterval: time.Hour, PongTimeout: pong, RequestTimeout: reqTO})
	start := time.Now()
	_, err := c.Call(bg(), ActionGetChatThreads, nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("call on a stalled peer: %v, want ErrTimeout", err)
	}
	waitDone(t, c)
	if d := time.Since(start); d > reqTO+pong+2*time.Second {
		t.Errorf("stall confirmed after %v, want about %v", d, reqTO+pong)
	}
	if !errors.Is(c.Err(), ErrTimeout) {
		t.Errorf("Err = %v, want ErrTimeout", c.Err())
	}
}

// TestStallFailsCallsWithTimeout: calls in flight when the keepalive finds
// the peer stalled fail with ErrTimeout (the HTTP layer answers TIMEOUT),
// which also matches ErrConnectionLost (the socket is gone).
func TestStallFailsCallsWithTimeout(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	f.stall.Store(true)
	c, _, _ := dialFake(t, f, Config{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond, RequestTimeout: time.Minute})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Call(bg(), ActionGetChatsSummary, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrConnectionLost) {
			t.Errorf("call %d: %v, want ErrTimeout and ErrConnectionLost", i, err)
		}
	}
	// A call made afterwards fails the same way, at once.
	if _, err := c.Call(bg(), ActionPing, nil); !errors.Is(err, ErrTimeout) {
		t.Errorf("call after the stall: %v", err)
	}
}

// TestOnIgnored: every ignored frame is reported to Config.OnIgnored with
// the counter it lands in, and none of them ends the client.
func TestOnIgnored(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	var mu sync.Mutex
	got := map[string]int{}
	c, p, _ := dialFake(t, f, Config{OnIgnored: func(reason string) {
		mu.Lock()
		got[reason]++
		mu.Unlock()
	}})
	for _, s := range []string{
		`{not json`, `[1]`, `""`, `{"type":"push"}`, `{"action":5}`,
		`{"action":"x","type":"response","success":true}`,
		`{"request_id":"999","action":"send_event","type":"response","success":true,"payload":{}}`,
		`{"request_id":"998","action":"incoming_event","type":"push","payload":{}}`,
		`{"request_id":7,"action":"incoming_event","type":"push","payload":{}}`,
		`{"action":"what_is_this","type":"mystery"}`,
	} {
		p.raw(t, s)
	}
	p.push(t, PushIncomingEvent, `{"chat_id":"C"}`)
	if it := itemOf(t, c); it.Frame.Action != PushIncomingEvent {
		t.Fatalf("stream item %+v", it)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"malformed": 6, "unknown_id": 2, "dropped": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("OnIgnored(%q) × %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	st := c.Stats()
	if st.Malformed != 6 || st.UnknownIDs != 2 || st.Dropped != 2 {
		t.Errorf("stats %+v", st)
	}
	select {
	case <-c.Done():
		t.Fatalf("client ended: %v", c.Err())
	default:
	}
}
