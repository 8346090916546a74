package engine

import (
	"strings"
	"testing"
	"time"
)

// TestAppendFromOrigin: an event's origin tag comes back with it, live (the
// stream's republish keeps the header) and read from the log; an event
// appended without one has none; a tag that is too long or not one line is
// refused.
func TestAppendFromOrigin(t *testing.T) {
	e := embedded(t, nil)
	ctx := ctxT(t, 20*time.Second)
	sid := sidOf("origin")
	ch := make(chan Live, 10)
	sub, err := e.Subscribe(sid, func(l Live) { ch <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	first, err := e.AppendFrom(ctx, sid, 0, "", "5eed", []byte("tagged"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Append(ctx, sid, first, "", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	want := []string{"5eed", ""}
	for i := range want {
		if l := <-ch; l.Origin != want[i] {
			t.Fatalf("live event %d (%s): origin %q, want %q", i, l.Data, l.Origin, want[i])
		}
	}
	p, err := e.Read(ctx, sid, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Events[0].Origin != "5eed" || p.Events[1].Origin != "" {
		t.Fatalf("read %+v", p.Events)
	}
	for _, bad := range []string{strings.Repeat("f", MaxOriginLen+1), "a\nb"} {
		if _, err := e.AppendFrom(ctx, sid, 0, "", bad, []byte("x")); err == nil {
			t.Fatalf("AppendFrom with origin %q: no error", bad)
		}
	}
}
