package jsonobj

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheck checks Check against encoding/json: without limits it
// accepts exactly what json.Valid && utf8.Valid accept (json.Valid's
// depth limit given as its own), and on a valid document each limit
// refuses exactly when the document's depth or member count, as the
// decoder's tokens show them, is above it.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `{}`, `[]`, `1`, `-0.5e+7`, `"x"`, `true`, `null`, ` {"a" : [1, {"b":null}] } `,
		`{"a":1,"a":2}`, `[[[[]]]]`, `{"a":{"b":{"c":{}}}}`, `[{},{"x":[{}]}]`,
		`{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nulll`,
		`"\u12"`, `"\x"`, "\"\x01\"", "\"\xff\"", "\"\xed\xa0\x80\"", `"\ud800"`, "{\"\xc3\":1}",
		"\xef\xbb\xbf{}", "{}\x00", "[1 2]", `{"a":1 "b":2}`, "\t\n\r [\r\n]\t",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := json.Valid(b) && utf8.Valid(b)
		err := Check(b, Limits{MaxDepth: 10000})
		if (err == nil) != want {
			t.Fatalf("%q: Check %v, json.Valid && utf8.Valid %v", b, err, want)
		}
		if err != nil {
			if utf8.Valid(b) && err == ErrUTF8 {
				t.Fatalf("%q: %v on valid UTF-8", b, err)
			}
			return
		}
		depth, members := shapeOf(t, b)
		if err := Check(b, Limits{MaxDepth: depth, MaxMembers: members}); err != nil {
			t.Fatalf("%q (depth %d, %d members): refused at its own shape: %v", b, depth, members, err)
		}
		if depth > 1 { // MaxDepth 0 is no limit
			if err := Check(b, Limits{MaxDepth: depth - 1}); err != ErrDepth {
				t.Fatalf("%q (depth %d): MaxDepth %d gives %v", b, depth, depth-1, err)
			}
		}
		if members > 1 {
			if err := Check(b, Limits{MaxMembers: members - 1}); err != ErrMembers {
				t.Fatalf("%q (%d members): MaxMembers %d gives %v", b, members, members-1, err)
			}
		}
	})
}

// shapeOf is a valid document's depth and object member count (duplicate
// keys each counted), from encoding/json's tokens.
func shapeOf(t *testing.T, b []byte) (depth, members int) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	type open struct{ object, wantKey bool }
	var stack []open
	for {
		tok, err := dec.Token()
		if err != nil {
			return depth, members
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].wantKey && tok != json.Delim('}') {
			members++
			stack[top].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, open{object: tok == json.Delim('{'), wantKey: tok == json.Delim('{')})
			depth = max(depth, len(stack))
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
		// a value ended: its object (if any) wants a key next
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].wantKey = true
		}
	}
}

// TestCheckLimits: each limit refuses one past it and accepts it
// exactly, with its own error; the first problem in byte order wins.
func TestCheckLimits(t *testing.T) {
	nest := func(n int) []byte { // n levels of {"a":…}, then 1
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	arrays := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	keys := func(n int) []byte {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strconv.Itoa(i) + `":[{}]`)
		}
		b.WriteString("}")
		return []byte(b.String())
	}
	lim := Limits{MaxDepth: 64, MaxMembers: 10000}
	for _, c := range []struct {
		name string
		doc  []byte
		want error
	}{
		{"64 objects", nest(64), nil},
		{"65 objects", nest(65), ErrDepth},
		{"64 arrays", arrays(64), nil},
		{"65 arrays", arrays(65), ErrDepth},
		{"65 levels, the last empty", []byte(strings.Repeat(`{"a":`, 64) + "{}" + strings.Repeat("}", 64)), ErrDepth},
		{"10,000 levels", nest(10000), ErrDepth},
		{"10,000 members", keys(10000), nil},
		{"10,001 members", keys(10001), ErrMembers},
		{"members at every depth count", []byte(`{"a":1,"b":{"c":[{"d":1}]}}`), nil},
		{"duplicate keys count", []byte(`{"a":1,"a":2}`), nil},
		{"array elements do not count", []byte("[" + strings.Repeat("0,", 20000) + "0]"), nil},
		{"too deep before invalid", []byte(strings.Repeat("[", 65) + "x"), ErrDepth},
		{"invalid before too deep", []byte("[x" + strings.Repeat("[", 65)), ErrSyntax},
		{"invalid UTF-8 in a string", []byte("{\"a\":\"\xc3\"}"), ErrUTF8},
		{"invalid UTF-8 in a key", []byte("{\"\xff\":1}"), ErrUTF8},
		{"invalid UTF-8 outside strings", []byte("[\xff]"), ErrSyntax},
		{"trailing data", []byte(`{} {}`), ErrSyntax},
		{"empty", nil, ErrSyntax},
	} {
		if err := Check(c.doc, lim); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := Check([]byte(`{"a":1,"b":2}`), Limits{MaxMembers: 1}); err != ErrMembers {
		t.Errorf("2 members, max 1: %v", err)
	}
	if err := Check(nest(20000), Limits{}); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

// BenchmarkCheck is the request body check on the same objects.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1000, 10000, 87000} {
		raw := wideObject(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := Check(raw, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
