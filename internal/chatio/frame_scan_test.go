package chatio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzUnmarshalFrame checks UnmarshalFrame against encoding/json on any
// input: the same Frame, and an error exactly when the decoder has one.
// The seeds cover the fast path and every way off it.
func FuzzUnmarshalFrame(f *testing.F) {
	for _, s := range []string{
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"C"}}`,
		`{"request_id":"7","action":"login","type":"response","success":true,"payload":{}}`,
		`{"request_id":7,"action":"send_event","type":"push","success":null,"payload":null}`,
		`{"request_id":null,"action":"x","type":"push"}`,
		` {"action" : "a" , "type":"push"} `,
		`{"Action":"a","TYPE":"push"}`,
		`{"actioN":"a"}`,
		`{"ſuccess":true,"action":"a"}`,
		`{"action":"a\u0062","type":"p\"ush"}`,
		`{"\u0061ction":"a"}`,
		`{"action":"a","action":null}`,
		`{"action":null,"action":"b"}`,
		`{"action":"a","action":"b","success":true,"success":false}`,
		`{"action":5}`,
		`{"action":5,"action":"b","type":"push"}`, // an error although the last value is a string
		`{"success":"x","success":true,"action":"a"}`,
		`{"action":"a","success":"yes"}`,
		`{"action":"a","success":1}`,
		`{"action":"a","extra":[1,{"b":2}],"payload":"s"}`,
		"{\"action\":\"\xff\"}",
		`{"action":"a"`,
		`[]`,
		`null`,
		`"x"`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := UnmarshalFrame(data)
		var want Frame
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, decoder's %v", data, err, werr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Fatalf("%q:\n got %s\nwant %s", data, norm(got), norm(want))
		}
	})
}

// FuzzDecodeFrameBytes holds DecodeFrame, the read loop's one-pass
// decoder, to encoding/json as FuzzUnmarshalFrame holds UnmarshalFrame,
// and a Checked frame to its promise: its raw members are valid, compact
// JSON (json.Compact leaves them as they are).
func FuzzDecodeFrameBytes(f *testing.F) {
	for _, s := range []string{
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"C"}}`,
		`{"request_id":"7","action":"login","type":"response","success":true,"payload":{}}`,
		`{"request_id":7,"action":"send_event","type":"push","success":null,"payload":null}`,
		` {"action" : "a" , "type":"push"} `,
		`{"action":"a","payload":{"b": 1}}`,
		`{"Action":"a","TYPE":"push"}`,
		`{"action":"a\u0062","type":"p\"ush"}`,
		`{"action":"a","action":"b","success":true,"success":false}`,
		`{"action":5,"action":"b","type":"push"}`,
		"{\"action\":\"a\",\"payload\":\"\xff\"}",
		"{\"action\":\"\xff\"}",
		`{"action":"a"`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		got, err := DecodeFrame(data)
		var want Frame
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, decoder's %v", data, err, werr)
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("%q: DecodeFrame changed its input", orig)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Fatalf("%q:\n got %s\nwant %s", data, norm(got), norm(want))
		}
		if !got.Checked {
			return
		}
		for _, raw := range []json.RawMessage{got.RequestID, got.Payload} {
			if raw == nil {
				continue
			}
			var buf bytes.Buffer
			if json.Compact(&buf, raw) != nil || !bytes.Equal(buf.Bytes(), raw) || !utf8.Valid(raw) {
				t.Fatalf("%q: Checked, but %q is not valid compact UTF-8 JSON", data, raw)
			}
		}
	})
}

// norm prints a Frame with its raw members as strings (nil and empty
// compare equal, as both are absent).
func norm(f Frame) string {
	s := "<nil>"
	if f.Success != nil {
		s = fmt.Sprint(*f.Success)
	}
	return fmt.Sprintf("id=%q action=%q type=%q success=%s payload=%q", f.RequestID, f.Action, f.Type, s, f.Payload)
}

// BenchmarkUnmarshalFrame: an incoming_event push, decoded by
// UnmarshalFrame, by the read loop's decoder (DecodeFrame) and by
// encoding/json (the baseline, in the same run).
func BenchmarkUnmarshalFrame(b *testing.B) {
	data := []byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"Q1W2E3R4T5","thread_id":"K9L8M7N6","event":{"id":"K9L8M7N6_3","author_id":"agent-1","timestamp":1712345678,"type":"message","text":"How can I help you today?","order":3,"custom_id":"x1"}}}`)
	b.Run("UnmarshalFrame", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := UnmarshalFrame(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeFrame", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := DecodeFrame(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var f Frame
			if err := json.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
