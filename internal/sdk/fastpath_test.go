package sdk

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// FuzzMsTimestamp holds msTimestamp's float formatting to json.Marshal's,
// which it stands in for in the range json.Marshal writes without an
// exponent.
func FuzzMsTimestamp(f *testing.F) {
	for _, v := range []float64{1, 1.5, 1712345678, 1712345678.123, 1e-9, 1e-6, 9.99e-7, 1e18, 1e21, 9.999e20, -3.25, 0.1, 123456789012345678} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		raw, _ := json.Marshal(v)
		got := msTimestamp(raw)
		want := json.RawMessage("null")
		if w := v * 1000; w == 0 {
			want = json.RawMessage("0")
		} else if b, err := json.Marshal(w); err == nil {
			want = b
		}
		if string(got) != string(want) {
			t.Fatalf("msTimestamp(%s) = %s, want %s", raw, got, want)
		}
	})
}

// FuzzIsJSString holds isJSString's shortcut for strings without escapes
// to the decoder, on the valid JSON values it is given.
func FuzzIsJSString(f *testing.F) {
	for _, s := range []string{`"message"`, ` "message" `, `"mess\u0061ge"`, `"file"`, `"x"`, `5`, `null`, "\"\xff\"", `"`, ``} {
		f.Add([]byte(s), "message")
	}
	f.Fuzz(func(t *testing.T, raw []byte, s string) {
		if !json.Valid(raw) {
			return
		}
		got := isJSString(raw, s)
		r := bytes.TrimSpace(raw)
		want := len(r) > 0 && r[0] == '"' && jsString(r) == s
		if got != want {
			t.Fatalf("isJSString(%q, %q) = %v, decoder %v", raw, s, got, want)
		}
	})
}
