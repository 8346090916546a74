package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// members returns n object members "k0":0,"k1":0,… (no braces).
func members(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

// nestedProperties is a properties object n levels deep (n ≥ 3):
// namespace → name → arrays inside arrays.
func nestedProperties(n int) string {
	return `{"ns":{"k":` + strings.Repeat("[", n-2) + strings.Repeat("]", n-2) + `}}`
}

// TestBodyMemberLimit: a body of 87,000 keys in under 1 MiB (issue 14: 12
// CPU-seconds of parsing before) is refused with INVALID_ARGS naming the
// limit, and starts no chat; a body of exactly maxBodyMembers members, at
// any depth together, goes through; one more is refused and not forwarded.
func TestBodyMemberLimit(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	cust := chatiosim.CustomerIDForToken("tok")

	wide := "{" + members(87000) + "}"
	if len(wide) > DefaultMaxBodyBytes {
		t.Fatalf("the body is %d bytes, over the body limit", len(wide))
	}
	for _, body := range []string{wide, `{"properties":{"ns":` + wide + `}}`} {
		m := expect(t, e.do("POST", "/v1/chats", "tok", body), 400, CodeInvalidArgs)
		if msg, _ := m["message"].(string); !strings.Contains(msg, "members") || !strings.Contains(msg, strconv.Itoa(maxBodyMembers)) {
			t.Fatalf("message %q does not name the limit", msg)
		}
	}
	if cs := e.sim.Chats(cust); len(cs) != 1 {
		t.Fatalf("%d chats: a refused body started one", len(cs))
	}

	// {"ns":{…}} is 1 + the inner members
	props := "/v1/chats/" + chat + "/properties"
	expect(t, e.do("PATCH", props, "tok", `{"ns":{`+members(maxBodyMembers-1)+`}}`), 200, "")
	expect(t, e.do("PATCH", props, "tok", `{"ns":{`+members(maxBodyMembers-1)+`},"more":{}}`), 400, CodeInvalidArgs)
	ci, _ := e.sim.Chat(chat)
	var got map[string]map[string]json.RawMessage
	if err := json.Unmarshal(ci.Properties, &got); err != nil {
		t.Fatal(err)
	}
	if len(got["ns"]) != maxBodyMembers-1 {
		t.Fatalf("the body at the limit left %d properties upstream", len(got["ns"]))
	}
	if _, ok := got["more"]; ok {
		t.Fatal("a body over the limit reached the upstream")
	}
}

// TestBodyDepthLimit: a body nested deeper than maxBodyDepth is refused
// with INVALID_ARGS naming the limit and never forwarded — properties
// 10,000 levels deep were a 500 (the frame could not be encoded), 9,999
// levels a 504 (the upstream's decoder gave up on the frame); a body
// exactly maxBodyDepth deep goes through.
func TestBodyDepthLimit(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	cust := chatiosim.CustomerIDForToken("tok")
	props := "/v1/chats/" + chat + "/properties"

	refused := func(method, path, body string) {
		t.Helper()
		m := expect(t, e.do(method, path, "tok", body), 400, CodeInvalidArgs)
		if msg, _ := m["message"].(string); !strings.Contains(msg, "nested") || !strings.Contains(msg, strconv.Itoa(maxBodyDepth)) {
			t.Fatalf("message %q does not name the limit", msg)
		}
	}
	for _, n := range []int{10000, 9999, maxBodyDepth + 1} {
		refused("PATCH", props, nestedProperties(n))
	}
	ci, _ := e.sim.Chat(chat)
	if bytes.Contains(ci.Properties, []byte(`"ns"`)) {
		t.Fatalf("a body over the limit reached the upstream: %s", ci.Properties)
	}
	refused("POST", "/v1/chats", `{"properties":`+nestedProperties(maxBodyDepth)+`}`)
	if cs := e.sim.Chats(cust); len(cs) != 1 {
		t.Fatalf("%d chats: a refused body started one", len(cs))
	}

	expect(t, e.do("PATCH", props, "tok", nestedProperties(maxBodyDepth)), 200, "")
	ci, _ = e.sim.Chat(chat)
	if !bytes.Contains(ci.Properties, []byte(strings.Repeat("[", maxBodyDepth-2))) {
		t.Fatalf("the body at the limit did not reach the upstream: %s", ci.Properties)
	}
}

// BenchmarkObjectBody is a JSON object body's whole decoding (read,
// check, split into members): linear up to the member limit; the 87,000
// keys of issue 14 are refused after the check has read 10,001 of them.
func BenchmarkObjectBody(b *testing.B) {
	for _, n := range []int{1000, maxBodyMembers, 87000} {
		raw := []byte("{" + members(n) + "}")
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/chats", bytes.NewReader(raw))
				_, err := objectBody(r, false)
				if (err == nil) != (n <= maxBodyMembers) {
					b.Fatal(err)
				}
			}
		})
	}
}
