package sdk

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// TestParseEventLargeDefault: an event of another type with many members
// keeps them all in order, a member named as one of the SDK's own keys
// ("author", "thread", "customId") overwriting it in place, as Object.Set
// does.
func TestParseEventLargeDefault(t *testing.T) {
	w := jsonobj.Object{
		{Key: "id", Value: json.RawMessage(`"E"`)},
		{Key: "author_id", Value: json.RawMessage(`"A"`)},
		{Key: "timestamp", Value: json.RawMessage(`1`)},
		{Key: "custom_id", Value: json.RawMessage(`"C"`)},
		{Key: "type", Value: json.RawMessage(`"system_message"`)},
	}
	for i := range 40 {
		w = append(w, jsonobj.Member{Key: "x" + strconv.Itoa(i), Value: json.RawMessage(strconv.Itoa(i))})
	}
	w = append(w,
		jsonobj.Member{Key: "thread", Value: json.RawMessage(`"from the event"`)},
		jsonobj.Member{Key: "customId", Value: json.RawMessage(`"own"`)},
		jsonobj.Member{Key: "author", Value: json.RawMessage(`"someone"`)})
	want := jsonobj.Object{
		{Key: "id", Value: w.RawValue("id")},
		{Key: "author", Value: w.RawValue("author_id")},
		{Key: "timestamp", Value: msTimestamp(w.Raw("timestamp"))},
		{Key: "thread", Value: json.RawMessage(`"T"`)},
		{Key: "customId", Value: w.RawValue("custom_id")},
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

func fmtObject(o jsonobj.Object) string {
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
