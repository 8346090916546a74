package chatio

import (
	"errors"
	"fmt"
	"sync"
	"testing"
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
