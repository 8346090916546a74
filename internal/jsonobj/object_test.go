package jsonobj

import (
	"bytes"
	"encoding/json"
	"testing"
	"unsafe"
)

// JSON.stringify writes own properties in OrdinaryOwnPropertyKeys order:
// array indices (canonical integers below 2^32 - 1) ascending, then string
// keys in creation order.
func TestObjectKeyOrder(t *testing.T) {
	o := Object{
		{Key: "b", Value: json.RawMessage("1")}, {Key: "4294967295", Value: json.RawMessage("2")}, {Key: "10", Value: json.RawMessage("3")},
		{Key: "a", Value: json.RawMessage("4")}, {Key: "2", Value: json.RawMessage("5")}, {Key: "-1", Value: json.RawMessage("6")},
		{Key: "02", Value: json.RawMessage("7")}, {Key: "0", Value: json.RawMessage("8")}, {Key: "4294967294", Value: json.RawMessage("9")},
		{Key: "gone", Value: json.RawMessage(nil)},
	}
	want := `{"0":8,"2":5,"10":3,"4294967294":9,"b":1,"4294967295":2,"a":4,"-1":6,"02":7}`
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// An interned key is one shared string, in every object parsed; any other
// key is a copy of its own.
func TestInternKeys(t *testing.T) {
	InternKeys("interned_key")
	raw := json.RawMessage(`{"interned_key":1,"other_key":2}`)
	a, err := ParseObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := ParseValidObject(bytes.Clone(raw))
	if unsafe.StringData(a[0].Key) != unsafe.StringData(b[0].Key) {
		t.Error("an interned key was copied")
	}
	if unsafe.StringData(a[1].Key) == unsafe.StringData(b[1].Key) {
		t.Error("a key that is not interned was shared")
	}
}
