package session

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// The push path's fast ways for frames the read loop found valid and
// compact (chatio.DecodeFrame sets Frame.Checked): nothing is validated
// again, and what comes out is what the validating ways give.

// FuzzCheckedWireDelivery holds the gap tracker's scan of a checked
// incoming_event payload (no validation) to its scan of any payload,
// which FuzzWireDelivery holds to the decoder.
func FuzzCheckedWireDelivery(f *testing.F) {
	for _, s := range []string{
		`{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","order":1,"text":"hi"}}`,
		`{"chat_id":"C","event":{"id":"E","order":1},"event":{"order":2}}`,
		`{"Chat_ID":"C","event":{"ID":"E"}}`, `{"chat_id":"C","event":[1]}`, `{"chat_id":"C","event":null}`,
		`{"chat_id":"C\u0041","event":{"id":"E"}}`, `{"chat_id": "C","event":{"id":"E"}}`, `null`, `[]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		compact, err := jsonobj.CheckCompact(payload, jsonobj.Limits{MaxDepth: 10000})
		if err != nil || !compact {
			return
		}
		got, gok := scanIncomingEventOf(payload, true)
		want, wok := scanIncomingEvent(payload)
		if gok != wok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: checked scan %v %+v, scan %v %+v", payload, gok, got, wok, want)
		}
	})
}

// FuzzHandleCheckedFrame: a frame as the read loop decodes it (DecodeFrame:
// slices of the message, Checked when compact) and the same frame as the
// decoder gives it, each handled by a session of its own as a push and as
// the result of a call, reach the subscribers as the same messages. The
// seeds are FuzzHandleFrame's corpus.
func FuzzHandleCheckedFrame(f *testing.F) {
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","order":1,"text":"hi","timestamp":1.5}}}`))
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"x","1":{"a":[1,"<&>"]},"order":1}}}`))
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","text":"a b"}} }`))
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzHandleFrame/*")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			if data, ok := corpusBytes(b); ok {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr chatio.Frame
		if json.Unmarshal(data, &fr) != nil || fr.Action == "" {
			return // the client counts it as malformed; it never reaches the session
		}
		dfr, err := chatio.DecodeFrame(data)
		if err != nil {
			t.Fatalf("%q: DecodeFrame %v, the decoder none", data, err)
		}
		got := handled(t, dfr)
		want := handled(t, fr)
		if len(got) != len(want) {
			t.Fatalf("%q (checked %v): %d messages, %d from the decoder's frame", data, dfr.Checked, len(got), len(want))
		}
		for i := range got {
			if got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("%q (checked %v): %s %s, from the decoder's frame %s %s", data, dfr.Checked, got[i].Name, got[i].Data, want[i].Name, want[i].Data)
			}
		}
	})
}

// handled is what one new session logs (its replay ring, in order) from
// fr, handled as a push and then as the result of a call.
func handled(t *testing.T, fr chatio.Frame) []Message {
	core, logs := observer.New(zapcore.ErrorLevel)
	p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}, CursorKey: []byte("k")}, zap.New(core), nil)
	s := newSession(p, "fuzz")
	defer s.cancel()
	s.mu.Lock()
	first := s.seq
	s.mu.Unlock()
	it := chatio.StreamItem{Frame: fr}
	s.handleItem(it)
	it.ResultOf = fr.Action
	s.handleItem(it)
	if logs.Len() > 0 {
		t.Fatalf("%s", logs.All()[0].Message)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, s.ringLen)
	for i := range s.ringLen {
		out = append(out, s.ring[(s.ringHead+i)%len(s.ring)].msg)
	}
	if uint64(len(out)) != s.seq-first {
		t.Fatalf("%d events logged, %d kept", s.seq-first, len(out))
	}
	return out
}

// corpusBytes reads a "go test fuzz v1" file holding one []byte.
func corpusBytes(b []byte) ([]byte, bool) {
	lines := bytes.SplitN(b, []byte("\n"), 3)
	if len(lines) < 2 || !bytes.HasPrefix(lines[1], []byte("[]byte(")) || !bytes.HasSuffix(bytes.TrimSpace(lines[1]), []byte(")")) {
		return nil, false
	}
	q := bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(lines[1]), []byte("[]byte(")), []byte(")"))
	var s string
	if err := json.Unmarshal(q, &s); err != nil { // Go's %q of the corpus is JSON for plain ASCII seeds
		return nil, false
	}
	return []byte(s), true
}
