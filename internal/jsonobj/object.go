package jsonobj

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
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

// absent is a json.RawMessage(nil) in an interface, made once.
var absent any = json.RawMessage(nil)

// IsAbsent reports whether v is an absent member value.
func IsAbsent(v any) bool {
	r, ok := v.(json.RawMessage)
	return ok && r == nil
}

// RawValue is Raw(key) as the member value it is stored as: the same
// interface value, so that copying it into another Object allocates
// nothing (Raw's json.RawMessage would be boxed again).
func (o Object) RawValue(key string) any {
	if v := o.Get(key); v != nil {
		if _, ok := v.(json.RawMessage); ok {
			return v
		}
	}
	return absent
}

// Set assigns key: an existing key keeps its position (as in JavaScript),
// a new one is appended. It scans o: a loop that sets many keys builds
// with a Builder instead.
func (o *Object) Set(key string, v any) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// smallObject is the size up to which a Builder finds a key by scanning
// (the protocol's objects are about that size or smaller).
const smallObject = 16

// Builder is Object.Set for building an object key by key in time linear
// in its member count: past smallObject members it keeps an index of the
// keys. Its zero value builds an empty (nil) Object; BuildOn gives it a
// start.
type Builder struct {
	o     Object
	index map[string]int // key → position in o, once o is large
}

// BuildOn returns a Builder that goes on from start (whose array it
// appends to).
func BuildOn(start Object) Builder { return Builder{o: start} }

// Object is what b has built.
func (b *Builder) Object() Object { return b.o }

// Set is o.Set(key, v) on the object being built.
func (b *Builder) Set(key string, v any) {
	if b.index == nil {
		if len(b.o) < smallObject {
			b.o.Set(key, v)
			return
		}
		b.index = make(map[string]int, 2*len(b.o))
		for i, m := range b.o {
			if _, dup := b.index[m.Key]; !dup { // a start may repeat a key: Set finds the first
				b.index[m.Key] = i
			}
		}
	}
	if i, ok := b.index[key]; ok {
		b.o[i].Value = v
		return
	}
	b.index[key] = len(b.o)
	b.o = append(b.o, Member{key, v})
}

// MarshalJSON encodes the members in JavaScript's property order (what
// JSON.stringify writes): array-index keys ("0", "17", …) first in
// ascending numeric order, then the other keys in insertion order. Absent
// members are skipped.
func (o Object) MarshalJSON() ([]byte, error) {
	buf := make([]byte, 0, 64*len(o)+2)
	return o.appendJSON(buf)
}

func (o Object) appendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, '{')
	first := true
	for _, m := range o.JSOrder() {
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

// Checked is an Object whose raw values are all known to be valid,
// compact JSON: cut from a document that CheckCompact found compact, or
// written by this package or by encoding/json. Its encoding needs neither
// the validation nor the compaction that encoding/json gives every
// json.RawMessage (and the output of every MarshalJSON): AppendJSON writes
// it in one pass, and what it writes is what json.Marshal would.
// Whoever makes a Checked vouches for its values.
type Checked Object

// AppendJSON appends c's encoding (Object.MarshalJSON's) to buf; the
// error is json.Marshal's on a value of another type that it refuses.
func (c Checked) AppendJSON(buf []byte) ([]byte, error) {
	return Object(c).appendJSON(buf)
}

// MarshalJSON is Object.MarshalJSON.
func (c Checked) MarshalJSON() ([]byte, error) { return Object(c).MarshalJSON() }

var errNotObject = errors.New("not a JSON object")

// ParseObject decodes a JSON object keeping its member order. A key given
// twice keeps its first position and its last value (JSON.parse does so).
// Values stay raw. Time linear in len(raw), however many members.
func ParseObject(raw json.RawMessage) (Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	if json.Valid(raw) {
		return scanObject(raw), nil
	}
	return decodeObject(raw)
}

// scanObject splits a valid JSON object into its members without a
// decoder: one copy of raw, the values are full-capacity-limited slices of
// it (appending to one cannot overwrite the next), a key is unquoted only
// when it holds an escape or invalid UTF-8. Same result as decodeObject
// (FuzzScanObject); several times cheaper on the push path.
func scanObject(raw []byte) Object {
	return scanOwned(bytes.Clone(raw))
}

// scanOwned is scanObject on a buffer that is already a private copy: the
// values are slices of buf itself.
func scanOwned(buf []byte) Object {
	var b Builder
	scanMembers(buf, func(k string, v []byte) {
		if b.o == nil {
			b.o = make(Object, 0, 8)
		}
		b.Set(k, json.RawMessage(v))
	})
	return b.o
}

// ParseValidObject is ParseObject for raw that Check has accepted and
// that is an object, with no surrounding white space: it is not validated
// again, nor copied — the Object's values are slices of raw, which the
// caller must not modify afterwards. Time linear in len(raw).
func ParseValidObject(raw json.RawMessage) Object {
	return scanOwned(raw)
}

// ParseMember is ParseObject for raw, a member value of an Object that
// ParseObject returned: valid JSON, a private copy, with no surrounding
// space. It is neither validated nor copied again.
func ParseMember(raw json.RawMessage) (Object, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	return scanOwned(raw), nil
}

// EachMember calls fn with each member of the JSON object raw, in order,
// duplicate keys included, without decoding the values: val is a slice of
// raw (fn must not keep it past raw's life nor write to it). An interned
// key (InternKeys) costs no allocation. False, and no call, when raw is
// not a valid JSON object.
func EachMember(raw json.RawMessage, fn func(key string, val json.RawMessage)) bool {
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' || !json.Valid(raw) {
		return false
	}
	scanMembers(raw[i:], func(k string, v []byte) { fn(k, v) })
	return true
}

// EachValidMember is EachMember for raw that is known to be valid JSON (a
// document that Check, CheckCompact or json.Valid accepted, or a member
// value cut from one): it is not validated again. False, and no call,
// when raw is not an object.
func EachValidMember(raw json.RawMessage, fn func(key string, val json.RawMessage)) bool {
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return false
	}
	scanMembers(raw[i:], func(k string, v []byte) { fn(k, v) })
	return true
}

// scanMembers calls fn with each member of the valid JSON object in buf,
// in order, duplicate keys included. The value is a full-capacity-limited
// slice of buf.
func scanMembers(buf []byte, fn func(key string, val []byte)) {
	i := 1
	for {
		i = skipSpace(buf, i)
		switch buf[i] {
		case '}':
			return
		case ',':
			i = skipSpace(buf, i+1)
		}
		ke := endOfString(buf, i)
		k := memberKey(buf[i:ke])
		i = skipSpace(buf, ke) + 1 // past ':'
		i = skipSpace(buf, i)
		ve := endOfValue(buf, i)
		fn(k, buf[i:ve:ve])
		i = ve
	}
}

// PlainString returns the bytes between the quotes of raw when raw is a
// JSON string without escapes and of valid UTF-8 (its value is then those
// bytes, as the decoder would give it); false for any other value, and
// for a string the decoder would have to unescape or repair.
func PlainString(raw json.RawMessage) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// memberKey returns the key of the valid JSON string q (quotes included):
// an interned key without an allocation, else a copy, unquoted only when
// it holds an escape or invalid UTF-8.
func memberKey(q []byte) string {
	key := q[1 : len(q)-1]
	if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
		return unquote(q)
	}
	if wk, ok := (*interned.Load())[string(key)]; ok {
		return wk
	}
	return string(key)
}

// unquote decodes the valid JSON string q (invalid UTF-8 becomes U+FFFD,
// as with the decoder). Its own function so that only this rare path
// allocates the string's destination.
func unquote(q []byte) string {
	var k string
	_ = json.Unmarshal(q, &k) // valid JSON: cannot fail
	return k
}

// interned holds the keys the scanner returns as shared strings (key →
// the same key): a map that is replaced, never changed (InternKeys).
var interned atomic.Pointer[map[string]string]

func init() { interned.Store(&map[string]string{}) }

// InternKeys makes the scanner (ParseObject, EachMember and the rest)
// return each of keys as one shared string instead of a copy per member:
// the member names of a protocol's objects, given once by the package that
// knows them (chatio does, at init). Safe for concurrent use; meant for
// init time (each call copies the table).
func InternKeys(keys ...string) {
	for {
		old := interned.Load()
		m := make(map[string]string, len(*old)+len(keys))
		for k, v := range *old {
			m[k] = v
		}
		for _, k := range keys {
			m[k] = k
		}
		if interned.CompareAndSwap(old, &m) {
			return
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the string starting at b[i] == '"'.
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// endOfValue returns the index after the valid JSON value starting at b[i].
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = endOfString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' &&
			b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}

// decodeObject is ParseObject with encoding/json's decoder: it reports
// what is wrong with a malformed object.
func decodeObject(raw []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var b Builder
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
		b.Set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return b.o, nil
}

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

// ParseArray decodes a JSON array into its raw elements (nil for null).
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

// ParseValidArray is ParseArray for raw that is known to be valid JSON
// (a member value of an Object this package parsed, say) and starts with
// '[': its elements are slices of raw, neither validated nor copied (nor
// trimmed: a valid document's elements carry no space of their own once
// cut). False when raw is not an array (ParseArray then says why).
func ParseValidArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	a := []json.RawMessage{}
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return a, true
	}
	for {
		ve := endOfValue(raw, i)
		a = append(a, raw[i:ve:ve])
		i = skipSpace(raw, ve)
		if raw[i] == ']' {
			return a, true
		}
		i = skipSpace(raw, i+1) // past ','
	}
}

// isArrayIndex: the keys JavaScript orders first, ascending (canonical
// decimal integers below 2^32 - 1).
func isArrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' { // what ParseUint refuses, without its error value
			return 0, false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	if err != nil || n >= math.MaxUint32 {
		return 0, false
	}
	return n, true
}

// JSOrder returns o's members in the order of JavaScript's
// OrdinaryOwnPropertyKeys (Object.keys, for…in, JSON.stringify): array
// indices ascending, then the other keys in insertion order. o itself is
// returned when it has no array-index key.
func (o Object) JSOrder() Object {
	n := 0
	for _, m := range o {
		if _, ok := isArrayIndex(m.Key); ok {
			n++
		}
	}
	if n == 0 {
		return o
	}
	out := make(Object, 0, len(o))
	for _, m := range o {
		if _, ok := isArrayIndex(m.Key); ok {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := isArrayIndex(out[i].Key)
		b, _ := isArrayIndex(out[j].Key)
		return a < b
	})
	for _, m := range o {
		if _, ok := isArrayIndex(m.Key); !ok {
			out = append(out, m)
		}
	}
	return out
}

// Kind is the kind of the JSON value v (known valid), by its first byte:
// 'o' object, 'a' array, 's' string, 'b' boolean, 'n' null, 'd' number;
// 0 for an empty v.
func Kind(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	switch v[0] {
	case '{':
		return 'o'
	case '[':
		return 'a'
	case '"':
		return 's'
	case 't', 'f':
		return 'b'
	case 'n':
		return 'n'
	default:
		return 'd'
	}
}
