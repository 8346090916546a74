package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// TestBadInputOfEveryKind sends every kind of bad input the issue lists
// (invalid JSON, wrong types, huge numbers, unknown fields, empty and
// enormous ids, path tricks, invalid UTF-8, bad Authorization) and checks
// that each is answered with the contract's error — a 4xx JSON body with a
// code, never a 5xx — that nothing bad reached the upstream, and that the
// session, its stream and the server are unharmed.
func TestBadInputOfEveryKind(t *testing.T) {
	e := newEnv(t)
	chat, thread := e.startChat("tok")
	c := "/v1/chats/" + chat
	stream := e.openStream("/v1/events", "tok")
	stream.waitEvent("connected")

	type tc struct {
		method, path, body string
		status             int // 0: any 4xx
		headers            []string
	}
	huge := "99999999999999999999999999999999"
	cases := []tc{
		// invalid JSON
		{"POST", c + "/messages", `{"text":"x"`, 400, nil},
		{"POST", c + "/messages", `{"text":"x"}}`, 400, nil},
		{"POST", c + "/messages", `{'text':'x'}`, 400, nil},
		{"POST", c + "/messages", "\x00\x01", 400, nil},
		{"PATCH", c + "/properties", `{"ns":{"k":NaN}}`, 400, nil},
		// wrong types
		{"POST", c + "/messages", `{"text":["x"]}`, 400, nil},
		{"POST", c + "/events", `{"type":true}`, 400, nil},
		{"POST", "/v1/chats", `{"events":"no"}`, 400, nil},
		{"POST", c + "/rating", `{"value":1}`, 400, nil},
		{"PATCH", "/v1/customer", `{"email":{}}`, 400, nil},
		{"PATCH", "/v1/customer", `"just a string"`, 400, nil},
		{"POST", c + "/last-seen", `{"timestamp":[1]}`, 400, nil},
		{"POST", c + "/events", `{"type":"message","text":1e400}`, 400, nil},
		{"POST", c + "/last-seen", `{"timestamp":"1e400"}`, 400, nil},
		// huge numbers
		{"GET", "/v1/chats?offset=" + huge, "", 400, nil},
		{"GET", "/v1/chats?limit=" + huge, "", 400, nil},
		{"GET", c + "/threads-summary?offset=" + huge, "", 400, nil},
		{"GET", "/v1/chats?limit=1e3", "", 400, nil},
		{"GET", "/v1/chats?limit=0x10", "", 400, nil},
		// enormous and empty ids, bad characters
		{"POST", "/v1/chats/" + strings.Repeat("c", 10000) + "/messages", `{"text":"x"}`, 400, nil},
		{"GET", c + "/threads?ids=" + strings.Repeat("t", 200), "", 400, nil},
		{"GET", c + "/threads?ids=" + strings.Repeat("a,", 1001) + "a", "", 400, nil},
		{"GET", c + "/threads?ids=", "", 400, nil},
		{"PATCH", c + "/threads/%20%09/properties", `{}`, 400, nil},
		{"POST", "/v1/chats/%00/close-thread", "", 400, nil},
		{"POST", "/v1/chats/%E2%80/close-thread", "", 400, nil}, // invalid UTF-8 in the path
		// path tricks: never another route, never a 5xx
		{"POST", "/v1/chats/..%2F..%2Fsession/close-thread", "", 0, nil},
		{"POST", "/v1/chats/%2e%2e/close-thread", "", 0, nil},
		{"GET", "/v1/chats/" + chat + "/../../session", "", 0, nil},
		{"GET", "/v1//chats", "", 0, nil},
		{"POST", "/v1/chats//messages", `{"text":"x"}`, 0, nil},
		{"GET", c + "/history?cursor=" + strings.Repeat("A", 5000), "", 400, nil},
		{"GET", c + "/history?cursor=%FF%FE", "", 400, nil},
		{"GET", c + "/history?cursor=bm90IGEgY3Vyc29y", "", 400, nil},
		// invalid UTF-8 in bodies
		{"POST", c + "/messages", "{\"text\":\"\xff\xfe\"}", 400, nil},
		{"PUT", c + "/sneak-peek", "{\"text\":\"a\xc3\"}", 400, nil},
		// Authorization
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearer"}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearertok"}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Token tok"}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearer tok en"}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearer " + strings.Repeat("k", 9000)}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearer expired:x"}},
		{"GET", "/v1/session", "", 401, []string{"Authorization: Bearer t\xc3\xb6k"}},
		{"GET", "/v1/events?ticket=" + strings.Repeat("T", 500), "", 401, nil},
		{"GET", "/v1/events?ticket=", "", 401, nil},
	}
	for _, k := range cases {
		var body any
		if k.body != "" {
			body = k.body
		}
		token := "tok"
		for _, h := range k.headers {
			if strings.HasPrefix(h, "Authorization:") {
				token = ""
			}
		}
		if strings.HasPrefix(k.path, "/v1/events") {
			token = ""
		}
		r := e.rawDo(t, k.method, k.path, token, body, k.headers...)
		label := k.method + " " + trunc(k.path) + " " + trunc(k.body)
		if r.status >= 500 || r.status < 400 || (k.status != 0 && r.status != k.status) {
			t.Errorf("%s: status %d %s", label, r.status, trunc(string(r.body)))
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil || m["code"] == "" || m["message"] == "" {
			t.Errorf("%s: not an error body: %s", label, trunc(string(r.body)))
		}
	}

	// unknown fields: accepted and dropped as the SDK drops them (a message
	// carries text, type and custom_id only)
	m := expect(t, e.do("POST", c+"/messages", "tok", `{"text":"hello","bogus":{"deep":[1,2]},"author_id":"agent"}`), 201, "")
	if m["text"] != "hello" {
		t.Fatalf("answer %v", m)
	}
	evs := e.sim.Events(chat)
	if len(evs) != 1 {
		t.Fatalf("upstream events %+v", evs)
	}
	if b, _ := json.Marshal(evs[0]); bytes.Contains(b, []byte("bogus")) {
		t.Fatalf("an unknown field went upstream: %s", b)
	}
	_ = thread

	// nothing else reached the simulator; one customer, one session
	if cs := e.sim.Chats(chatiosim.CustomerIDForToken("tok")); len(cs) != 1 {
		t.Fatalf("chats %+v", cs)
	}
	if n := e.pool.Len(); n != 1 {
		t.Fatalf("%d sessions after bad input", n)
	}
	// the stream is unharmed and saw the one good message
	for {
		ev := stream.event()
		if ev.Event == "new_event" {
			break
		}
	}
	expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
}

// TestBodyStopsHalfway: a request whose body ends before its
// Content-Length (the client half-closes) is answered 400, and one that
// stalls mid-body is cut by the server's deadline; neither holds a session
// call or leaks.
func TestBodyStopsHalfway(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /v1/chats/"+chat+"/messages HTTP/1.1\r\nHost: x\r\n"+
		"Authorization: Bearer tok\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"+`{"text":"hal`)
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a truncated body: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	expect(t, resp{res.StatusCode, res.Header, b}, 400, CodeInvalidArgs)
	if evs := e.sim.Events(chat); len(evs) != 0 {
		t.Fatalf("a truncated body went upstream: %+v", evs)
	}

	// a multipart upload that stops halfway: the upload is abandoned
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	_, _ = io.WriteString(conn2, "POST /v1/chats/"+chat+"/files HTTP/1.1\r\nHost: x\r\n"+
		"Authorization: Bearer tok\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nsome bytes")
	_ = conn2.(*net.TCPConn).CloseWrite()
	_ = conn2.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err = http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatalf("no answer to a truncated upload: %v", err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Fatalf("truncated upload: %d %s", res.StatusCode, b)
	}
	if evs := e.sim.Events(chat); len(evs) != 0 {
		t.Fatalf("a truncated upload became an event: %+v", evs)
	}
	expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
}

// rawDo is do with a URL that is sent as written (no client-side cleaning)
// and headers that may be malformed.
func (e *env) rawDo(t *testing.T, method, path, token string, body any, headers ...string) resp {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // sent verbatim
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if !strings.Contains(h, ": ") {
			k, v, _ = strings.Cut(h, ":")
		}
		req.Header[k] = []string{v}
	}
	res, err := e.client.Do(req)
	if err != nil {
		return resp{body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
