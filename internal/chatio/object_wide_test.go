package chatio

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestParseObjectDuplicatesLarge: in an object larger than the builder's
// scan size, a repeated key keeps its first position and its last value,
// as with Object.Set one key at a time (and JSON.parse).
func TestParseObjectDuplicatesLarge(t *testing.T) {
	var b strings.Builder
	var want Object
	b.WriteString("{")
	for i := range 200 {
		if i > 0 {
			b.WriteString(",")
		}
		k := "k" + strconv.Itoa(i%37)
		if i%5 == 0 {
			k = "k" + strconv.Itoa(i) // some keys only once
		}
		v := strconv.Itoa(i)
		b.WriteString(`"` + k + `":` + v)
		want.Set(k, json.RawMessage(v))
	}
	b.WriteString("}")
	raw := []byte(b.String())
	for name, parse := range map[string]func([]byte) (Object, error){
		"scan":    func(r []byte) (Object, error) { return ParseObject(r) },
		"valid":   func(r []byte) (Object, error) { return ParseValidObject(bytes.Clone(r)), nil },
		"decoder": func(r []byte) (Object, error) { return decodeObject(r) },
	} {
		got, err := parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g, w := fmtObject(got), fmtObject(want); g != w {
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
}

// TestParseEventLargeDefault: an event of another type with many members
// keeps them all in order, a member named as one of the SDK's own keys
// ("author", "thread", "customId") overwriting it in place, as Object.Set
// does.
func TestParseEventLargeDefault(t *testing.T) {
	w := Object{
		{"id", json.RawMessage(`"E"`)},
		{"author_id", json.RawMessage(`"A"`)},
		{"timestamp", json.RawMessage(`1`)},
		{"custom_id", json.RawMessage(`"C"`)},
		{"type", json.RawMessage(`"system_message"`)},
	}
	for i := range 40 {
		w = append(w, Member{"x" + strconv.Itoa(i), json.RawMessage(strconv.Itoa(i))})
	}
	w = append(w,
		Member{"thread", json.RawMessage(`"from the event"`)},
		Member{"customId", json.RawMessage(`"own"`)},
		Member{"author", json.RawMessage(`"someone"`)})
	want := Object{
		{"id", w.rawValue("id")},
		{"author", w.rawValue("author_id")},
		{"timestamp", msTimestamp(w.Raw("timestamp"))},
		{"thread", json.RawMessage(`"T"`)},
		{"customId", w.rawValue("custom_id")},
	}
	for _, m := range w[4:] {
		want.Set(m.Key, m.Value)
	}
	got := parseEvent(json.RawMessage(`"T"`), w)
	if g, wn := fmtObject(got), fmtObject(want); g != wn {
		t.Fatalf("\n got %s\nwant %s", g, wn)
	}
	if got.Raw("thread") == nil || string(got.Raw("thread")) != `"from the event"` || got[3].Key != "thread" {
		t.Fatalf("thread member %v at %q", got.Get("thread"), got[3].Key)
	}
}

func fmtObject(o Object) string {
	var b strings.Builder
	for _, m := range o {
		b.WriteString(m.Key)
		b.WriteString("=")
		if r, ok := m.Value.(json.RawMessage); ok {
			b.Write(r)
		} else {
			j, _ := json.Marshal(m.Value)
			b.Write(j)
		}
		b.WriteString(" ")
	}
	return b.String()
}

// wideObject is a JSON object of n members "k0":0, "k1":1, …
func wideObject(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// BenchmarkParseObjectWide shows ParseObject linear in the member count
// (ns/op per member about constant from 1,000 to 87,000 members).
func BenchmarkParseObjectWide(b *testing.B) {
	for _, n := range []int{1000, 10000, 87000} {
		raw := wideObject(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if o, err := ParseObject(raw); err != nil || len(o) != n {
					b.Fatal(len(o), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
		})
	}
}

// BenchmarkParseEventWide is an upstream event of a type of its own with
// many members, as an incoming_event push brings it: linear too.
func BenchmarkParseEventWide(b *testing.B) {
	for _, n := range []int{1000, 10000, 87000} {
		raw := append([]byte(`{"id":"E","type":"custom",`), wideObject(n)[1:]...)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if ev, err := ParseEvent(json.RawMessage(`"T"`), raw); err != nil || len(ev) != n+5 {
					b.Fatal(len(ev), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
		})
	}
}
