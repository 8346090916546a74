package chatio

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

// decoderParseObject is ParseObject as it was: the decoder for everything.
func decoderParseObject(raw json.RawMessage) (Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	return decodeObject(raw)
}

func BenchmarkParseObject(b *testing.B) {
	raw := json.RawMessage(`{"chat_id":"Q1W2E3R4T5","thread_id":"K9L8M7N6","event":{"id":"K9L8M7N6_3","author_id":"agent-1","timestamp":1712345678,"type":"message","text":"How can I help you today?","order":3,"custom_id":"x1"}}`)
	b.ReportAllocs()
	for range b.N {
		if _, err := ParseObject(raw); err != nil {
			b.Fatal(err)
		}
	}
}
