package chatio

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// With OnItem the read loop hands each item over itself: in order, an
// Emit()-result before its Call returns, nothing on Stream, and a refused
// item ends the client with ErrStreamOverflow.
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
		if cap(c.Stream()) != 0 {
			t.Errorf("Stream buffers %d items though OnItem takes them", cap(c.Stream()))
		}
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
		if _, ok := <-c.Stream(); ok {
			t.Error("an item reached Stream")
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
