package jsonobj

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzScanObject checks that the decoder-free ParseObject splits every
// valid object exactly as encoding/json's decoder does.
func FuzzScanObject(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2,"b":[1,{"c":"}"}],"d":{"e":"]\""}}`,
		`{"k\u00e9y":"v","\"":null,"t":true,"f":false,"n":-1.5e3}`,
		"{\"a\"\t:\n[ ]\r, \"b\" : \"x\\\\\" }",
		`{"chat_id":"C","thread_id":"T","event":{"id":"T_1","type":"message","text":"hi","order":1}}`,
		"{\"\xff\":1}", `{"a":"\ud800"}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"b":18,"r":19,"q":20,"a":21}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gerr := ParseObject(raw)
		want, werr := decoderParseObject(raw)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%q: errors %v vs %v", raw, gerr, werr)
		}
		if gerr == nil && werr == nil && fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("%q:\nscan   %q\ndecode %q", raw, got, want)
		}
	})
}

// decoderParseObject is ParseObject as it was: the decoder for
// everything, each key stored with Object.Set.
func decoderParseObject(raw json.RawMessage) (Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var o Object
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := t.(string)
		if !ok {
			return nil, fmt.Errorf("object key: %v", t)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.Set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

// BenchmarkParseObject: an incoming_event payload, its keys interned as
// package chatio interns the protocol's.
func BenchmarkParseObject(b *testing.B) {
	InternKeys("chat_id", "thread_id", "event", "id", "author_id", "timestamp", "type", "text", "order", "custom_id")
	raw := json.RawMessage(`{"chat_id":"Q1W2E3R4T5","thread_id":"K9L8M7N6","event":{"id":"K9L8M7N6_3","author_id":"agent-1","timestamp":1712345678,"type":"message","text":"How can I help you today?","order":3,"custom_id":"x1"}}`)
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseObject(raw); err != nil {
			b.Fatal(err)
		}
	}
}
