package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sseMessage is one message read from an event stream.
type sseMessage struct {
	ID    string
	Event string
	Data  string
	Retry string
}

// sseStream reads an event stream in its own goroutine, message by message.
type sseStream struct {
	resp *http.Response
	msgs chan sseMessage
	done chan struct{}
}

func (s *sseStream) read() {
	defer close(s.done)
	defer close(s.msgs)
	_ = readSSE(s.resp.Body, func(m sseMessage) {
		if m.Event == "" && m.ID == "" && m.Data == "" {
			return // a retry hint alone
		}
		s.msgs <- m
	})
}

// readSSE reads an event stream until r ends, calling each for every
// complete message (a block of fields ended by a blank line; a block cut
// short by the end of the stream is not one). Comments are skipped. It
// returns the reader's error.
func readSSE(r io.Reader, each func(sseMessage)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var m sseMessage
	var data []string
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if seen {
				m.Data = strings.Join(data, "\n")
				each(m)
			}
			m, data, seen = sseMessage{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment: heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			m.Retry = value
		default:
			continue
		}
		seen = true
	}
	return sc.Err()
}

// Close ends the stream.
func (s *sseStream) Close() {
	s.resp.Body.Close()
	<-s.done
}

// next returns the next message with an event name (retry-only messages are
// skipped), or fails after the deadline.
func (s *sseStream) next(t testing.TB, within time.Duration) sseMessage {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("stream ended while waiting for an event")
			}
			if m.Event == "" {
				continue
			}
			return m
		case <-timer.C:
			t.Fatalf("no event within %v", within)
		}
	}
}

// quiet fails if an event arrives within d.
func (s *sseStream) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return
			}
			if m.Event == "" {
				continue
			}
			t.Errorf("unexpected event %s: %s", m.Event, m.Data)
		case <-timer.C:
			return
		}
	}
}

// expectEvents reads len(want) events and compares names and data as JSON
// values.
func (s *sseStream) expectEvents(t testing.TB, want [][2]json.RawMessage, within time.Duration) []sseMessage {
	t.Helper()
	var got []sseMessage
	for i, w := range want {
		var name string
		_ = json.Unmarshal(w[0], &name)
		m := s.next(t, within)
		got = append(got, m)
		if m.Event != name {
			t.Fatalf("event %d: got %s %s, want %s %s", i, m.Event, m.Data, name, w[1])
		}
		if !sameJSON(json.RawMessage(m.Data), w[1]) {
			t.Fatalf("event %d (%s) data:\n got  %s\n want %s", i, name, m.Data, w[1])
		}
	}
	return got
}

// sameJSON compares two JSON texts as values (key order aside; absent and
// null differ).
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
