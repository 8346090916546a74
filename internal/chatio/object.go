package chatio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
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

// isAbsent reports whether v is an absent member value.
func isAbsent(v any) bool {
	r, ok := v.(json.RawMessage)
	return ok && r == nil
}

// rawValue is Raw(key) as the member value it is stored as: the same
// interface value, so that copying it into another Object allocates
// nothing (Raw's json.RawMessage would be boxed again).
func (o Object) rawValue(key string) any {
	if v := o.Get(key); v != nil {
		if _, ok := v.(json.RawMessage); ok {
			return v
		}
	}
	return absent
}

// Set assigns key: an existing key keeps its position (as in JavaScript),
// a new one is appended. It scans o: a loop that sets many keys builds
// with an objectBuilder instead.
func (o *Object) Set(key string, v any) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// smallObject is the size up to which objectBuilder finds a key by
// scanning (the protocol's objects are about that size or smaller).
const smallObject = 16

// objectBuilder is Object.Set for building an object key by key in time
// linear in its member count: past smallObject members it keeps an index
// of the keys. Its zero value builds an empty (nil) Object; o may be
// given a start.
type objectBuilder struct {
	o     Object
	index map[string]int // key → position in o, once o is large
}

// set is o.Set(key, v).
func (b *objectBuilder) set(key string, v any) {
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
	for _, m := range jsKeyOrder(o) {
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
	var b objectBuilder
	scanMembers(buf, func(k string, v []byte) {
		if b.o == nil {
			b.o = make(Object, 0, 8)
		}
		b.set(k, json.RawMessage(v))
	})
	return b.o
}

// ParseValidObject is ParseObject for raw that CheckJSON has accepted and
// that is an object, with no surrounding white space: it is not validated
// again, nor copied — the Object's values are slices of raw, which the
// caller must not modify afterwards. Time linear in len(raw).
func ParseValidObject(raw json.RawMessage) Object {
	return scanOwned(raw)
}

// parseMember is ParseObject for raw, a member value of an Object that
// ParseObject returned: valid JSON, a private copy, with no surrounding
// space. It is neither validated nor copied again.
func parseMember(raw json.RawMessage) (Object, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	return scanOwned(raw), nil
}

// EachMember calls fn with each member of the JSON object raw, in order,
// duplicate keys included, without decoding the values: val is a slice of
// raw (fn must not keep it past raw's life nor write to it). A protocol
// key costs no allocation. False, and no call, when raw is not a valid
// JSON object.
func EachMember(raw json.RawMessage, fn func(key string, val json.RawMessage)) bool {
	i := skipSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' || !json.Valid(raw) {
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
// a protocol key without an allocation, else a copy, unquoted only when it
// holds an escape or invalid UTF-8.
func memberKey(q []byte) string {
	key := q[1 : len(q)-1]
	if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
		return unquote(q)
	}
	if wk, ok := wireKeys[string(key)]; ok {
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

// wireKeys are the member names of the protocol's objects, so that
// scanObject can share one string per name.
var wireKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"action", "active", "added", "agent", "author_id", "avatar", "chat", "chat_id", "chats_summary",
		"content_type", "custom_id", "customer", "email", "event", "events", "events_count", "fields",
		"height", "id", "is_typing", "last_event_per_type", "last_seen_timestamp", "name", "order",
		"payload", "present", "properties", "reason", "recipients", "removed_ids", "request_id",
		"routing_scope", "success", "text", "thread", "thread_id", "thread_order", "threads",
		"threads_summary", "timestamp", "total_chats", "total_threads", "type", "typing_indicator",
		"updated_users", "url", "user_id", "user_ids", "users", "width",
	} {
		m[k] = k
	}
	return m
}()

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
	var b objectBuilder
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
		b.set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return b.o, nil
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

// number returns the value of a raw JSON number; ok is false for anything
// else. A literal beyond float64's range is ±Inf (JSON.parse("1e400") is
// Infinity), one below it 0.
func number(r json.RawMessage) (float64, bool) {
	if !isNumber(r) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
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

// jsString is String(v) of a raw JSON value, as JavaScript makes property
// keys of it (keyBy, obj[type]): a string's value, a number in JavaScript's
// shortest form, "true", "false", "null", "undefined" when absent, an
// array's elements joined by "," (null as ""), "[object Object]".
func jsString(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return "undefined"
	}
	switch r[0] {
	case '"':
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	case '{':
		return "[object Object]"
	case '[':
		elems, err := ParseArray(r)
		if err != nil {
			break
		}
		parts := make([]string, len(elems))
		for i, e := range elems {
			if !isNull(e) {
				parts[i] = jsString(e)
			}
		}
		return strings.Join(parts, ",")
	default:
		if f, ok := number(r); ok {
			return jsNumberString(f)
		}
	}
	return string(r)
}

// jsNumberString is Number.prototype.toString(): encoding/json writes
// floats in ECMAScript's shortest form; -0 prints as 0.
func jsNumberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// jsStrictEqual is a === b for two raw JSON values (absent is undefined):
// strings and numbers by value, objects and arrays never (two parsed
// objects are distinct).
func jsStrictEqual(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	switch {
	case a[0] == '{' || a[0] == '[' || b[0] == '{' || b[0] == '[':
		return false
	case a[0] == '"' && b[0] == '"':
		return jsString(a) == jsString(b)
	case isNumber(a) && isNumber(b):
		fa, okA := number(a)
		fb, okB := number(b)
		return okA && okB && fa == fb
	}
	return string(a) == string(b)
}

// jsToNumber is JavaScript's ToNumber of a raw JSON value, as the SDK's
// numeric sorts apply it (a.order - b.order): absent (undefined) and
// objects are NaN, null and false 0, true 1, strings by StringToNumber,
// arrays through their join.
func jsToNumber(r json.RawMessage) float64 {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return math.NaN()
	}
	switch r[0] {
	case 'n', 'f':
		return 0
	case 't':
		return 1
	case '{':
		return math.NaN()
	case '"', '[':
		return jsStringToNumber(jsString(r))
	}
	if f, ok := number(r); ok {
		return f
	}
	return math.NaN()
}

// jsStringToNumber is ECMAScript's StringToNumber: surrounding white space
// and line terminators ignored, "" is 0, a decimal literal with optional
// sign (or ±Infinity), or an unsigned 0x/0o/0b integer; anything else NaN.
func jsStringToNumber(s string) float64 {
	s = strings.TrimFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
			return true
		}
		return r >= '\u2000' && r <= '\u200a'
	})
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || strings.ContainsAny(s[2:], "_+-") {
				return math.NaN()
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f
		}
	}
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return math.NaN()
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if !isDecimalLiteral(body) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return math.NaN()
	}
	return f
}

// isDecimalLiteral: digits [. digits] [e[±]digits], or . digits [exponent],
// or digits . [exponent] (StrUnsignedDecimalLiteral without Infinity).
func isDecimalLiteral(s string) bool {
	digits := func(i int) int {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	i := digits(0)
	intDigits := i
	frac := 0
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		frac = j - i - 1
		i = j
	}
	if intDigits == 0 && frac == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

// msTimestamp is parseServerTimestamp: seconds × 1000 for a number, else
// null. JSON.stringify writes an infinite result as null and -0 as 0.
func msTimestamp(r json.RawMessage) json.RawMessage {
	f, ok := serverTimestamp(r)
	if !ok {
		return json.RawMessage("null")
	}
	if f == 0 {
		return json.RawMessage("0")
	}
	b, err := json.Marshal(f) // same shortest form JavaScript prints
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// serverTimestamp is parseServerTimestamp's numeric value (possibly
// infinite); ok is false where it gives null.
func serverTimestamp(r json.RawMessage) (float64, bool) {
	f, ok := number(r)
	if !ok {
		return 0, false
	}
	return f * 1000, true
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

// jsKeyOrder returns o's members in the order of JavaScript's
// OrdinaryOwnPropertyKeys (Object.keys, for…in, JSON.stringify): array
// indices ascending, then the other keys in insertion order. o itself is
// returned when it has no array-index key.
func jsKeyOrder(o Object) Object {
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

var (
	rawEmptyObject = json.RawMessage("{}")
	rawTrue        = json.RawMessage("true")
)

func rawString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// --- Array.prototype.sort ---

// jsSort sorts xs in place as V8's Array.prototype.sort (the TimSort of
// third_party/v8/builtins/array-sort.tq, Node ≥ 11) does with comparefn
// cmp, step for step, so that the result is the SDK's even when cmp is not
// a consistent order (a NaN result counts as 0, "equal": an event without a
// numeric order compares equal to every other one).
func jsSort[T any](xs []T, cmp func(a, b T) float64) {
	if len(xs) < 2 {
		return
	}
	s := &timSort[T]{a: xs, cmp: cmp, minGallop: minGallopWins}
	s.sort()
}

const minGallopWins = 7

type timSort[T any] struct {
	a         []T
	cmp       func(a, b T) float64
	minGallop int
	runs      []run
}

type run struct{ base, n int }

// less is Compare(x, y) < 0; NaN is not below 0.
func (s *timSort[T]) less(x, y T) bool { return s.cmp(x, y) < 0 }

func (s *timSort[T]) sort() {
	low, remaining := 0, len(s.a)
	minRun := minRunLength(remaining)
	for remaining != 0 {
		n := s.countAndMakeRun(low, low+remaining)
		if n < minRun {
			forced := min(minRun, remaining)
			s.binaryInsertionSort(low, low+n, low+forced)
			n = forced
		}
		s.runs = append(s.runs, run{low, n})
		s.mergeCollapse()
		low += n
		remaining -= n
	}
	s.mergeForceCollapse()
}

func minRunLength(n int) int {
	r := 0
	for n >= 64 {
		r |= n & 1
		n >>= 1
	}
	return n + r
}

// countAndMakeRun returns the length of the run starting at low: ascending
// (a[i] >= a[i-1]) or strictly descending, which it reverses.
func (s *timSort[T]) countAndMakeRun(low, high int) int {
	if low+1 == high {
		return 1
	}
	n := 2
	descending := s.less(s.a[low+1], s.a[low])
	prev := s.a[low+1]
	for i := low + 2; i < high; i++ {
		if s.less(s.a[i], prev) != descending {
			break
		}
		prev = s.a[i]
		n++
	}
	if descending {
		for i, j := low, low+n-1; i < j; i, j = i+1, j-1 {
			s.a[i], s.a[j] = s.a[j], s.a[i]
		}
	}
	return n
}

// binaryInsertionSort sorts a[low:high], of which a[low:start] is sorted.
func (s *timSort[T]) binaryInsertionSort(low, start, high int) {
	if low == start {
		start++
	}
	for ; start < high; start++ {
		left, right := low, start
		pivot := s.a[start]
		for left < right {
			mid := left + (right-left)>>1
			if s.less(pivot, s.a[mid]) {
				right = mid
			} else {
				left = mid + 1
			}
		}
		copy(s.a[left+1:start+1], s.a[left:start])
		s.a[left] = pivot
	}
}

func (s *timSort[T]) invariantHolds(n int) bool {
	if n < 2 {
		return true
	}
	return s.runs[n-2].n > s.runs[n-1].n+s.runs[n].n
}

func (s *timSort[T]) mergeCollapse() {
	for len(s.runs) > 1 {
		n := len(s.runs) - 2
		if !s.invariantHolds(n+1) || !s.invariantHolds(n) {
			if s.runs[n-1].n < s.runs[n+1].n {
				n--
			}
			s.mergeAt(n)
		} else if s.runs[n].n <= s.runs[n+1].n {
			s.mergeAt(n)
		} else {
			break
		}
	}
}

func (s *timSort[T]) mergeForceCollapse() {
	for len(s.runs) > 1 {
		n := len(s.runs) - 2
		if n > 0 && s.runs[n-1].n < s.runs[n+1].n {
			n--
		}
		s.mergeAt(n)
	}
}

func (s *timSort[T]) mergeAt(i int) {
	baseA, lenA := s.runs[i].base, s.runs[i].n
	baseB, lenB := s.runs[i+1].base, s.runs[i+1].n
	s.runs[i].n = lenA + lenB
	s.runs = append(s.runs[:i+1], s.runs[i+2:]...)

	k := s.gallopRight(s.a, s.a[baseB], baseA, lenA, 0)
	baseA += k
	lenA -= k
	if lenA == 0 {
		return
	}
	lenB = s.gallopLeft(s.a, s.a[baseA+lenA-1], baseB, lenB, lenB-1)
	if lenB == 0 {
		return
	}
	if lenA <= lenB {
		s.mergeLow(baseA, lenA, baseB, lenB)
	} else {
		s.mergeHigh(baseA, lenA, baseB, lenB)
	}
}

// gallopLeft returns k such that a[base+k-1] < key <= a[base+k], searching
// from hint.
func (s *timSort[T]) gallopLeft(a []T, key T, base, n, hint int) int {
	lastOfs, ofs := 0, 1
	if s.less(a[base+hint], key) {
		maxOfs := n - hint
		for ofs < maxOfs {
			if !s.less(a[base+hint+ofs], key) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs += hint
		ofs += hint
	} else {
		maxOfs := hint + 1
		for ofs < maxOfs {
			if s.less(a[base+hint-ofs], key) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs, ofs = hint-ofs, hint-lastOfs
	}
	lastOfs++
	for lastOfs < ofs {
		m := lastOfs + (ofs-lastOfs)>>1
		if s.less(a[base+m], key) {
			lastOfs = m + 1
		} else {
			ofs = m
		}
	}
	return ofs
}

// gallopRight returns k such that a[base+k-1] <= key < a[base+k],
// searching from hint.
func (s *timSort[T]) gallopRight(a []T, key T, base, n, hint int) int {
	lastOfs, ofs := 0, 1
	if s.less(key, a[base+hint]) {
		maxOfs := hint + 1
		for ofs < maxOfs {
			if !s.less(key, a[base+hint-ofs]) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs, ofs = hint-ofs, hint-lastOfs
	} else {
		maxOfs := n - hint
		for ofs < maxOfs {
			if s.less(key, a[base+hint+ofs]) {
				break
			}
			lastOfs = ofs
			ofs = ofs<<1 + 1
		}
		ofs = min(ofs, maxOfs)
		lastOfs += hint
		ofs += hint
	}
	lastOfs++
	for lastOfs < ofs {
		m := lastOfs + (ofs-lastOfs)>>1
		if s.less(key, a[base+m]) {
			ofs = m
		} else {
			lastOfs = m + 1
		}
	}
	return ofs
}

// mergeLow merges the adjacent runs a[baseA:baseA+lenA] and
// a[baseB:baseB+lenB] (lenA <= lenB) from the left.
func (s *timSort[T]) mergeLow(baseA, lenA, baseB, lenB int) {
	a := s.a
	tmp := append([]T(nil), a[baseA:baseA+lenA]...)
	dest, cursorTmp, cursorB := baseA, 0, baseB
	a[dest] = a[cursorB]
	dest++
	cursorB++
	lenB--

	copyB := func() { // the last element of A goes after what is left of B
		copy(a[dest:dest+lenB], a[cursorB:cursorB+lenB])
		a[dest+lenB] = tmp[cursorTmp]
	}
	succeed := func() {
		if lenA > 0 {
			copy(a[dest:dest+lenA], tmp[cursorTmp:cursorTmp+lenA])
		}
	}
	if lenB == 0 {
		succeed()
		return
	}
	if lenA == 1 {
		copyB()
		return
	}
	minGallop := s.minGallop
	for {
		winsA, winsB := 0, 0
		for {
			if s.less(a[cursorB], tmp[cursorTmp]) {
				a[dest] = a[cursorB]
				dest++
				cursorB++
				winsB++
				lenB--
				winsA = 0
				if lenB == 0 {
					succeed()
					return
				}
				if winsB >= minGallop {
					break
				}
			} else {
				a[dest] = tmp[cursorTmp]
				dest++
				cursorTmp++
				winsA++
				lenA--
				winsB = 0
				if lenA == 1 {
					copyB()
					return
				}
				if winsA >= minGallop {
					break
				}
			}
		}
		minGallop++
		for first := true; first || winsA >= minGallopWins || winsB >= minGallopWins; first = false {
			minGallop = max(1, minGallop-1)
			s.minGallop = minGallop

			winsA = s.gallopRight(tmp, a[cursorB], cursorTmp, lenA, 0)
			if winsA > 0 {
				copy(a[dest:dest+winsA], tmp[cursorTmp:cursorTmp+winsA])
				dest += winsA
				cursorTmp += winsA
				lenA -= winsA
				if lenA == 1 {
					copyB()
					return
				}
				if lenA == 0 { // an inconsistent comparefn
					succeed()
					return
				}
			}
			a[dest] = a[cursorB]
			dest++
			cursorB++
			lenB--
			if lenB == 0 {
				succeed()
				return
			}

			winsB = s.gallopLeft(a, tmp[cursorTmp], cursorB, lenB, 0)
			if winsB > 0 {
				copy(a[dest:dest+winsB], a[cursorB:cursorB+winsB])
				dest += winsB
				cursorB += winsB
				lenB -= winsB
				if lenB == 0 {
					succeed()
					return
				}
			}
			a[dest] = tmp[cursorTmp]
			dest++
			cursorTmp++
			lenA--
			if lenA == 1 {
				copyB()
				return
			}
		}
		minGallop++
		s.minGallop = minGallop
	}
}

// mergeHigh merges the adjacent runs a[baseA:baseA+lenA] and
// a[baseB:baseB+lenB] (lenA > lenB) from the right.
func (s *timSort[T]) mergeHigh(baseA, lenA, baseB, lenB int) {
	a := s.a
	tmp := append([]T(nil), a[baseB:baseB+lenB]...)
	dest, cursorTmp, cursorA := baseB+lenB-1, lenB-1, baseA+lenA-1
	a[dest] = a[cursorA]
	dest--
	cursorA--
	lenA--

	copyA := func() { // the first element of B goes before what is left of A
		dest -= lenA
		cursorA -= lenA
		copy(a[dest+1:dest+1+lenA], a[cursorA+1:cursorA+1+lenA])
		a[dest] = tmp[cursorTmp]
	}
	succeed := func() {
		if lenB > 0 {
			copy(a[dest-(lenB-1):dest+1], tmp[:lenB])
		}
	}
	if lenA == 0 {
		succeed()
		return
	}
	if lenB == 1 {
		copyA()
		return
	}
	minGallop := s.minGallop
	for {
		winsA, winsB := 0, 0
		for {
			if s.less(tmp[cursorTmp], a[cursorA]) {
				a[dest] = a[cursorA]
				dest--
				cursorA--
				winsA++
				lenA--
				winsB = 0
				if lenA == 0 {
					succeed()
					return
				}
				if winsA >= minGallop {
					break
				}
			} else {
				a[dest] = tmp[cursorTmp]
				dest--
				cursorTmp--
				winsB++
				lenB--
				winsA = 0
				if lenB == 1 {
					copyA()
					return
				}
				if winsB >= minGallop {
					break
				}
			}
		}
		minGallop++
		for first := true; first || winsA >= minGallopWins || winsB >= minGallopWins; first = false {
			minGallop = max(1, minGallop-1)
			s.minGallop = minGallop

			k := s.gallopRight(a, tmp[cursorTmp], baseA, lenA, lenA-1)
			winsA = lenA - k
			if winsA > 0 {
				dest -= winsA
				cursorA -= winsA
				copy(a[dest+1:dest+1+winsA], a[cursorA+1:cursorA+1+winsA])
				lenA -= winsA
				if lenA == 0 {
					succeed()
					return
				}
			}
			a[dest] = tmp[cursorTmp]
			dest--
			cursorTmp--
			lenB--
			if lenB == 1 {
				copyA()
				return
			}

			k = s.gallopLeft(tmp, a[cursorA], 0, lenB, lenB-1)
			winsB = lenB - k
			if winsB > 0 {
				dest -= winsB
				cursorTmp -= winsB
				copy(a[dest+1:dest+1+winsB], tmp[cursorTmp+1:cursorTmp+1+winsB])
				lenB -= winsB
				if lenB == 1 {
					copyA()
					return
				}
				if lenB == 0 { // an inconsistent comparefn
					succeed()
					return
				}
			}
			a[dest] = a[cursorA]
			dest--
			cursorA--
			lenA--
			if lenA == 0 {
				succeed()
				return
			}
		}
		minGallop++
		s.minGallop = minGallop
	}
}
