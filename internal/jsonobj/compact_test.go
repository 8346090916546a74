package jsonobj

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzCheckCompact holds CheckCompact to Check and to json.Compact: the
// same verdict as Check, and compact exactly when json.Compact would leave
// the document as it is. On a compact object, EachValidMember (no
// validation) gives what EachMember gives, and a Checked built from its
// members encodes as json.Marshal encodes the Object.
func FuzzCheckCompact(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `{}`, `[]`, `1`, `"x"`, `{"a":1}`, `{"a": 1}`, ` {"a":1}`, `{"a":1} `, `{"a":"x y"}`,
		`{"a":[1,2,{"b":null}],"c":"\u0020"}`, `[1, 2]`, `{"a":{"b":{"c":{}}}}`, "{\"a\":\"\xff\"}",
		`{"1":1,"a":2,"0":3}`, `{"a":"<&>","b":"\u2028"}`, `{"a":1,"a":2}`, `{`, `{"a":1,}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		compact, err := CheckCompact(b, Limits{MaxDepth: 10000})
		if werr := Check(b, Limits{MaxDepth: 10000}); err != werr {
			t.Fatalf("%q: CheckCompact %v, Check %v", b, err, werr)
		}
		if err != nil {
			if compact {
				t.Fatalf("%q: compact and refused", b)
			}
			return
		}
		var buf bytes.Buffer
		if cerr := json.Compact(&buf, b); cerr != nil {
			t.Fatalf("%q: accepted, json.Compact: %v", b, cerr)
		}
		if same := bytes.Equal(buf.Bytes(), b); same != compact {
			t.Fatalf("%q: compact %v, json.Compact leaves it unchanged %v", b, compact, same)
		}
		if !compact {
			return
		}
		type member struct {
			k string
			v string
		}
		var got, want []member
		okGot := EachValidMember(b, func(k string, v json.RawMessage) { got = append(got, member{k, string(v)}) })
		okWant := EachMember(b, func(k string, v json.RawMessage) { want = append(want, member{k, string(v)}) })
		if okGot != okWant || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: EachValidMember %v %q, EachMember %v %q", b, okGot, got, okWant, want)
		}
		if !okGot {
			return
		}
		o := ParseValidObject(b)
		enc, err := Checked(o).AppendJSON(nil)
		if err != nil {
			t.Fatalf("%q: Checked: %v", b, err)
		}
		var jb bytes.Buffer
		e := json.NewEncoder(&jb)
		e.SetEscapeHTML(false)
		if err := e.Encode(o); err != nil {
			t.Fatalf("%q: encoder: %v", b, err)
		}
		if w := bytes.TrimSuffix(jb.Bytes(), []byte("\n")); !bytes.Equal(enc, w) {
			t.Fatalf("%q: Checked writes %q, the encoder %q", b, enc, w)
		}
	})
}

// FuzzParseValidArray holds ParseValidArray, on valid JSON, to ParseArray
// (encoding/json): the same elements, and an array exactly when ParseArray
// gives a non-nil one.
func FuzzParseValidArray(f *testing.F) {
	for _, seed := range []string{`[]`, `[ ]`, `[1]`, `[1,"a",{"b":[2,3]},null]`, `[ 1 , [ ] , { } ]`, `["]",",","\"]"]`, `null`, `{}`, `"x"`, `[[[]]]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || len(raw) == 0 || raw[0] != '[' && raw[0] != '{' && raw[0] != 'n' && raw[0] != '"' {
			return
		}
		got, ok := ParseValidArray(raw)
		want, err := ParseArray(raw)
		if ok != (err == nil && want != nil) {
			t.Fatalf("%q: ParseValidArray %v, ParseArray %q %v", raw, ok, want, err)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, ParseArray %d", raw, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d %q, ParseArray %q", raw, i, got[i], want[i])
			}
		}
	})
}
