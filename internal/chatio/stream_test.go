package chatio

import (
	"errors"
	"fmt"
	"testing"
)

// Stream holds up to StreamBuffer items in order; one more ends the client
// with ErrStreamOverflow and the channel keeps what it held; Close never
// waits for a consumer.
func TestStreamBuffer(t *testing.T) {
	leakCheck(t)
	const buffer = 13

	t.Run("order", func(t *testing.T) {
		f := newFake(t)
		c, p, _ := dialFake(t, f, Config{StreamBuffer: buffer})
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
				it := itemOf(t, c)
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
		c, p, _ := dialFake(t, f, Config{StreamBuffer: buffer})
		for i := range buffer + 1 {
			p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, i))
		}
		waitDone(t, c)
		if !errors.Is(c.Err(), ErrStreamOverflow) {
			t.Fatalf("Err = %v", c.Err())
		}
		n := 0
		for it := range c.Stream() {
			if want := fmt.Sprintf(`{"i":%d}`, n); string(it.Frame.Payload) != want {
				t.Fatalf("item %d = %s, want %s", n, it.Frame.Payload, want)
			}
			n++
		}
		if n != buffer {
			t.Errorf("stream kept %d items, want %d", n, buffer)
		}
	})

	t.Run("close does not wait for a consumer", func(t *testing.T) {
		f := newFake(t)
		c, p, _ := dialFake(t, f, Config{StreamBuffer: buffer})
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
		for range c.Stream() {
			n++
		}
		if n != buffer {
			t.Errorf("stream delivered %d items after Close, want %d", n, buffer)
		}
	})
}
