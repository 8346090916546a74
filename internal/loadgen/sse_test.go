package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The parser gives the same messages however the stream is cut into
// pieces: every cut point of a stream with CRLF and LF lines, a comment,
// a retry field and a message with two data lines.
func TestSSEParserPieces(t *testing.T) {
	stream := ": hello\n\nretry: 1000\nevent: connected\ndata: {\"a\":1}\n\n" +
		"event: new_event\r\ndata: {\"b\":2}\r\n\r\n" +
		"event: multi\ndata: x\ndata: y\n\n" +
		"event: unfinished\ndata: z\n"
	want := []string{`connected {"a":1}`, `new_event {"b":2}`, "multi x\ny"}
	parse := func(pieces ...string) []string {
		var got []string
		p := sseParser{message: func(event, data []byte) {
			got = append(got, string(event)+" "+string(data))
		}}
		for _, piece := range pieces {
			if err := p.feed([]byte(piece)); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	for cut := 0; cut <= len(stream); cut++ {
		for cut2 := cut; cut2 <= len(stream); cut2 += 7 {
			got := parse(stream[:cut], stream[cut:cut2], stream[cut2:])
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("cut at %d and %d: %q, want %q", cut, cut2, got, want)
			}
		}
	}
	// One byte at a time.
	var bytewise []string
	for i := range len(stream) {
		bytewise = append(bytewise, stream[i:i+1])
	}
	if got := parse(bytewise...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("byte by byte: %q", got)
	}
}

// A line longer than maxSSELine is refused, whether it comes in one piece
// or many, instead of growing the buffer without bound.
func TestSSEParserLongLine(t *testing.T) {
	p := sseParser{message: func(event, data []byte) { t.Fatal("no message expected") }}
	long := bytes.Repeat([]byte("x"), maxSSELine/4)
	var err error
	for range 5 {
		if err = p.feed(long); err != nil {
			break
		}
	}
	if !errors.Is(err, errSSELine) {
		t.Fatalf("feeding 5/4 MiB without a newline: %v", err)
	}
	q := sseParser{message: func(event, data []byte) {}}
	if err := q.feed([]byte("data: " + strings.Repeat("y", maxSSELine/2))); err != nil {
		t.Fatal(err)
	}
	if err := q.feed([]byte(strings.Repeat("y", maxSSELine/2) + "\n\n")); !errors.Is(err, errSSELine) {
		t.Fatalf("a line ending past the limit: %v", err)
	}
}
