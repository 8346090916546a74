package chatio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Object is a JSON object whose members keep their insertion order, the way
// a JavaScript object built by the SDK does. Values are json.RawMessage
// (passed through untouched, so absent, null and every wire value stay as
// the upstream sent them), Object, []Object, string, bool or float64.
//
// A member whose value is a nil json.RawMessage is absent: it is skipped
// when encoding, as JSON.stringify skips undefined.
type Object []Member

// Member is one key and value of an Object.
type Member struct {
	Key   string
	Value any
}

// Get returns the value stored under key, or nil.
func (o Object) Get(key string) any {
	for i := range o {
		if o[i].Key == key {
			return o[i].Value
		}
	}
	return nil
}

// Raw returns the value under key when it is raw JSON, else nil (absent).
func (o Object) Raw(key string) json.RawMessage {
	if r, ok := o.Get(key).(json.RawMessage); ok {
		return r
	}
	return nil
}

// Set assigns key: an existing key keeps its position (as in JavaScript),
// a new one is appended.
func (o *Object) Set(key string, v any) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// MarshalJSON encodes the members in order, skipping absent ones.
func (o Object) MarshalJSON() ([]byte, error) {
	buf := make([]byte, 0, 64*len(o)+2)
	return o.appendJSON(buf)
}

func (o Object) appendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, '{')
	first := true
	for _, m := range o {
		if r, ok := m.Value.(json.RawMessage); ok && r == nil {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		if needsJSONEscape(m.Key) {
			k, _ := json.Marshal(m.Key)
			buf = append(buf, k...)
		} else {
			buf = append(buf, '"')
			buf = append(buf, m.Key...)
			buf = append(buf, '"')
		}
		buf = append(buf, ':')
		var err error
		if buf, err = appendValue(buf, m.Value); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func needsJSONEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return true
		}
	}
	return false
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case json.RawMessage:
		if v == nil {
			return append(buf, "null"...), nil
		}
		return append(buf, v...), nil
	case Object:
		return v.appendJSON(buf)
	case []Object:
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = e.appendJSON(buf); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(buf, b...), nil
	}
}

var errNotObject = errors.New("not a JSON object")

// ParseObject decodes a JSON object keeping its member order. A key given
// twice keeps its first position and its last value (JSON.parse does so).
// Values stay raw.
func ParseObject(raw json.RawMessage) (Object, error) {
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

// ParseArray decodes a JSON array into its raw elements.
func ParseArray(raw json.RawMessage) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	if a == nil && !isNull(raw) {
		a = []json.RawMessage{}
	}
	return a, nil
}

// --- JavaScript value semantics on raw JSON ---

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

// isNumber is `typeof v === 'number'`.
func isNumber(r json.RawMessage) bool {
	if len(r) == 0 {
		return false
	}
	c := r[0]
	return c == '-' || (c >= '0' && c <= '9')
}

// number returns the value of a raw JSON number; ok is false for anything else.
func number(r json.RawMessage) (float64, bool) {
	if !isNumber(r) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	return f, err == nil
}

// truthy is JavaScript's truthiness of a JSON value (undefined is falsy).
func truthy(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return false
	}
	switch string(r) {
	case "null", "false", `""`:
		return false
	}
	if f, ok := number(r); ok {
		return f != 0
	}
	return true
}

// jsString is the value of a raw JSON string, or its raw text otherwise
// (what String(v) gives for numbers and booleans).
func jsString(r json.RawMessage) string {
	var s string
	if len(r) > 0 && r[0] == '"' && json.Unmarshal(r, &s) == nil {
		return s
	}
	if len(r) == 0 {
		return "undefined"
	}
	return string(r)
}

// msTimestamp is parseServerTimestamp: seconds × 1000 for a number, else null.
func msTimestamp(r json.RawMessage) json.RawMessage {
	f, ok := number(r)
	if !ok {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(f * 1000) // same shortest form JavaScript prints
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

var (
	rawEmptyObject = json.RawMessage("{}")
	rawTrue        = json.RawMessage("true")
)

func rawString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
