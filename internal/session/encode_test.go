package session

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// FuzzEncodeObject checks encodeJSON's shortcut for jsonobj.Object against
// the encoder it replaces.
func FuzzEncodeObject(f *testing.F) {
	for _, seed := range []string{`1`, `"a b"`, `{ "x" : [1, 2] }`, "\"<&>\"", `"\u2028"`, `{"a":"\"} "}`, `[`, ``} {
		f.Add("k", []byte(seed))
	}
	f.Fuzz(func(t *testing.T, key string, raw []byte) {
		v := jsonobj.Object{{Key: key, Value: json.RawMessage(raw)}, {Key: "s", Value: "t e\"x\\t<"}}
		got, gerr := encodeJSON(v)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		werr := enc.Encode(v)
		want := bytes.TrimRight(buf.Bytes(), "\n")
		if (gerr != nil) != (werr != nil) || (gerr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("%q %q:\ngot  %s (%v)\nwant %s (%v)", key, raw, got, gerr, want, werr)
		}
	})
}
