package chatio

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The read loop hands each item to OnItem itself: in order, an
// Emit()-result before its Call returns, and a refused item ends the
// client with ErrStreamOverflow.
func TestOnItem(t *testing.T) {
	leakCheck(t)

	t.Run("order and emit", func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		take := func(it StreamItem) bool {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, it.ResultOf+string(it.Frame.Payload))
			return true
		}
		seen := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), got...)
		}
		f := newFake(t)
		c, p, _ := dialFake(t, f, Config{OnItem: take})
		for i := range 3 {
			p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, i))
		}
		ch := goCall(c, bg(), ActionSendEvent, map[string]any{}, Emit())
		req := p.next(t)
		p.respond(t, req, `{}`)
		p.result(t, req, PushIncomingEvent, `{"r":1}`)
		if o := outOf(t, ch); o.err != nil {
			t.Fatal(o.err)
		}
		want := []string{`{"i":0}`, `{"i":1}`, `{"i":2}`, ActionSendEvent + `{"r":1}`}
		if g := seen(); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("OnItem saw %q when the call returned, want %q", g, want)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		f := newFake(t)
		n := 0
		c, p, _ := dialFake(t, f, Config{OnItem: func(StreamItem) bool { n++; return n < 2 }})
		p.push(t, PushIncomingEvent, `{"i":0}`)
		p.push(t, PushIncomingEvent, `{"i":1}`)
		waitDone(t, c)
		if !errors.Is(c.Err(), ErrStreamOverflow) {
			t.Fatalf("Err = %v, want ErrStreamOverflow", c.Err())
		}
		if n != 2 {
			t.Errorf("OnItem called %d times, want 2", n)
		}
	})

	t.Run("no OnItem", func(t *testing.T) {
		f := newFake(t)
		_, _, err := Dial(bg(), Config{URL: f.url, License: testLicense, Token: testToken, HTTPClient: f.srv.Client()})
		if !errors.Is(err, errNoOnItem) {
			t.Fatalf("Dial without OnItem: %v", err)
		}
	})
}

// A consumer that queues items and refuses one when its queue is full (as
// the session's inbox does) gets them all in order while they fit; one
// more ends the client with ErrStreamOverflow and the queue keeps what it
// took; Close never waits for the consumer.
func TestOnItemQueue(t *testing.T) {
	leakCheck(t)
	const buffer = 13

	t.Run("order", func(t *testing.T) {
		f := newFake(t)
		var cfg Config
		q := queueItems(&cfg, buffer)
		c, p, _ := dialFake(t, f, cfg)
		for round := range 2 {
			for i := range buffer {
				p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, round*buffer+i))
			}
			// A call's answer comes after the pushes: they are all queued.
			ch := goCall(c, bg(), ActionPing, nil)
			p.respond(t, p.next(t), `{}`)
			if o := outOf(t, ch); o.err != nil {
				t.Fatal(o.err)
			}
			for i := range buffer {
				it := <-q
				if want := fmt.Sprintf(`{"i":%d}`, round*buffer+i); string(it.Frame.Payload) != want {
					t.Fatalf("item %d = %s, want %s", i, it.Frame.Payload, want)
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("overflow", func(t *testing.T) {
		f := newFake(t)
		var cfg Config
		q := queueItems(&cfg, buffer)
		c, p, _ := dialFake(t, f, cfg)
		for i := range buffer + 1 {
			p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, i))
		}
		waitDone(t, c)
		if !errors.Is(c.Err(), ErrStreamOverflow) {
			t.Fatalf("Err = %v", c.Err())
		}
		n := 0
		for it := range q {
			if want := fmt.Sprintf(`{"i":%d}`, n); string(it.Frame.Payload) != want {
				t.Fatalf("item %d = %s, want %s", n, it.Frame.Payload, want)
			}
			n++
		}
		if n != buffer {
			t.Errorf("the queue kept %d items, want %d", n, buffer)
		}
	})

	t.Run("close does not wait for the consumer", func(t *testing.T) {
		f := newFake(t)
		var cfg Config
		q := queueItems(&cfg, buffer)
		c, p, _ := dialFake(t, f, cfg)
		for i := range buffer {
			p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, i))
		}
		ch := goCall(c, bg(), ActionPing, nil)
		p.respond(t, p.next(t), `{}`)
		if o := outOf(t, ch); o.err != nil {
			t.Fatal(o.err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for range q {
			n++
		}
		if n != buffer {
			t.Errorf("the queue held %d items after Close, want %d", n, buffer)
		}
	})
}

// OnDone is called once, on the read loop's way out, with Done closed and
// Err set: the client's end needs no watcher.
func TestOnDone(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	type seen struct {
		done bool
		err  error
	}
	calls := make(chan seen, 2)
	var c *Client
	ready := make(chan struct{})
	c, p, _ := dialFake(t, f, Config{OnDone: func() {
		<-ready
		d := false
		select {
		case <-c.Done():
			d = true
		default:
		}
		calls <- seen{d, c.Err()}
	}})
	close(ready)
	p.push(t, PushCustomerDisconnected, `{"reason":"misdirected_connection"}`)
	_ = p.conn.Close(websocket.StatusNormalClosure, "")
	got := <-calls
	var de *DisconnectedError
	if !got.done || !errors.As(got.err, &de) {
		t.Fatalf("OnDone saw done=%v err=%v", got.done, got.err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case again := <-calls:
		t.Fatalf("OnDone called twice (%+v)", again)
	case <-time.After(50 * time.Millisecond):
	}
}
