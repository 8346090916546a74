package jsonobj

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
