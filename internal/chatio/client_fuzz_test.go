package chatio

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeFrame checks classify, the read loop's pure decoder, on any
// input: no panic, a verdict consistent with the frame, and the helpers the
// read loop applies to a decoded frame never panic either. The seed corpus
// is in testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"action":"incoming_event","type":"push","payload":{"chat_id":"C"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := classify(data)
		again, err2 := classify(data)
		if (err == nil) != (err2 == nil) || d.class != again.class || d.id != again.id {
			t.Fatalf("classify is not deterministic on %q", data)
		}
		if err != nil {
			return
		}
		fr := d.frame
		if fr.Action == "" {
			t.Fatalf("accepted a frame without action: %q", data)
		}
		stringID := func() bool {
			var s string
			raw := strings.TrimSpace(string(fr.RequestID))
			return strings.HasPrefix(raw, `"`) && json.Unmarshal([]byte(raw), &s) == nil && s == d.id
		}
		switch d.class {
		case classPush:
			if len(fr.RequestID) != 0 || fr.Type != TypePush {
				t.Fatalf("push with request_id %q / type %q", fr.RequestID, fr.Type)
			}
		case classResponse:
			if fr.Type != TypeResponse || !stringID() {
				t.Fatalf("response verdict for %q", data)
			}
		case classResult:
			if fr.Type == TypeResponse || fr.Action == PushCustomerUpdated || !stringID() {
				t.Fatalf("result verdict for %q", data)
			}
		case classDropped:
			if d.why == "" {
				t.Fatalf("dropped without a reason: %q", data)
			}
		default:
			t.Fatalf("unknown class %d for %q", d.class, data)
		}
		// What the read loop does next with it.
		err = responseError(fr.Action, fr.Payload)
		if err == nil || err.Error() == "" {
			t.Fatal("responseError returned nothing")
		}
		_ = disconnectReason(fr.Payload)
		if _, err := json.Marshal(StreamItem{Frame: fr}); err != nil {
			t.Fatalf("a decoded frame does not re-encode: %v", err)
		}
	})
}
