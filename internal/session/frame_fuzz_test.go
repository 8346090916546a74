package session

import (
	"encoding/json"
	"reflect"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// FuzzHandleFrame feeds any upstream frame to a session the way its run
// goroutine does (handleItem: conversion, gap-fill bookkeeping, publish,
// fan-out) and reads it as a get_chats_summary answer (gap filling's
// parsers). Nothing may panic — handleItem's recover would log it at error
// level, which fails the test — and whatever reaches a subscriber is
// well-formed: a rising id, a name, JSON data (the stream encoder makes
// names and data safe for SSE; FuzzAppendMessage). The seed corpus
// (testdata/fuzz/FuzzHandleFrame) is the chatio package's frame and push
// corpora: every push and result shape of the protocol, and broken ones.
func FuzzHandleFrame(f *testing.F) {
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","order":1,"text":"hi"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr chatio.Frame
		if json.Unmarshal(data, &fr) != nil || fr.Action == "" {
			return // the client counts it as malformed; it never reaches the session
		}
		core, logs := observer.New(zapcore.ErrorLevel)
		p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}, CursorKey: []byte("k")}, zap.New(core), nil)
		s := newSession(p, "fuzz")
		defer s.cancel()
		sub, err := s.resume(s.seq)
		if err != nil || sub == nil {
			t.Fatalf("subscribe: %v", err)
		}
		it := chatio.StreamItem{Frame: fr}
		s.handleItem(it)
		it.ResultOf = fr.Action // the same frame as the result of a call
		s.handleItem(it)
		s.tracker.seedFromSummary(fr.Payload)
		_, _ = newestInSummary(fr.Payload)
		if d := parseWireDelivery(fr); d != nil {
			_ = s.tracker.duplicate(d)
		}
		if logs.Len() > 0 {
			t.Fatalf("frame %q: %s", data, logs.All()[0].Message)
		}
		sub.Close()
		var last uint64
		for m := range sub.C() {
			id, ok := parseEventID(m.ID)
			if !ok || id <= last {
				t.Fatalf("event id %q after %d", m.ID, last)
			}
			last = id
			if m.Name == "" {
				t.Fatalf("event without a name from %q", data)
			}
			if !json.Valid(m.Data) {
				t.Fatalf("event %s data %q", m.Name, m.Data)
			}
		}
	})
}

// FuzzWireDelivery holds parseWireDelivery's scanner for incoming_event
// payloads to the decoder it stands in for: whenever the scanner decides,
// its result is the decoder's.
func FuzzWireDelivery(f *testing.F) {
	for _, s := range []string{
		`{"chat_id":"C","thread_id":"T","event":{"id":"E","type":"message","order":1,"text":"hi"}}`,
		`{"chat_id":"C","event":{"id":"E"}}`,
		`{"chat_id":"C","thread_id":"T","event":{"id":"E","order":null}}`,
		`{"chat_id":"C","event":{"id":"E","order":"7"}}`,
		`{"chat_id":"C","event":{"id":"E","order":1},"event":{"order":2}}`,
		`{"chat_id":"C","chat_id":"D","event":{"id":"E"}}`,
		`{"chat_id":"C","chat_id":null,"event":{"id":"E"}}`,
		`{"Chat_ID":"C","event":{"id":"E"}}`,
		`{"chat_id":"C","event":{"ID":"E"}}`,
		`{"chat_id":"C","event":{"id":"E","ORDER":3}}`,
		`{"chat_id":"C\u0041","event":{"id":"E"}}`,
		`{"\u0063hat_id":"C","event":{"id":"E"}}`,
		`{"chat_id":5,"event":{"id":"E"}}`,
		`{"chat_id":"C","event":null}`,
		`{"chat_id":"C","event":[1]}`,
		`{"chat_id":"","event":{"id":"E"}}`,
		`{"chat_id":"C","event":{"id":""}}`,
		"{\"chat_id\":\"\xff\",\"event\":{\"id\":\"E\"}}",
		` {"chat_id" : "C" , "event" : { "id" : "E" , "order" : 1e2 } } `,
		`null`, `[]`, `{}`, `{"chat_id":"C","event":{"id":"E"}`, `{"chat_id":"C"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, ok := scanIncomingEvent(payload)
		if !ok {
			return
		}
		want := decodeWireDelivery(chatio.Frame{Action: chatio.PushIncomingEvent, Payload: payload})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scanner %+v, decoder %+v", payload, got, want)
		}
	})
}
