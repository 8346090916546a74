package httpapi

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

func jsonEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("got %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("got  %s\nwant %s", ja, jb)
	}
}

func TestStartChatAndSummaries(t *testing.T) {
	e := newEnv(t)
	next := e.watch("start_chat")
	m := expect(t, e.do("POST", "/v1/chats", "tok", `{"properties":{"source":{"page":"home"}}}`), 201, "")
	for _, k := range []string{"id", "users", "threads", "properties"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("chat lacks %s: %v", k, m)
		}
	}
	a := next()
	jsonEq(t, a.Payload, `{"routing_scope":{"type":"license"},"properties":{"source":{"page":"home"}}}`)

	// an empty body is startChat() with no argument
	expect(t, e.do("POST", "/v1/chats", "tok", nil), 201, "")
	jsonEq(t, next().Payload, `{"routing_scope":{"type":"license"}}`)

	// scope and events are passed as given
	r := e.do("POST", "/v1/chats", "tok", `{"scope":{"type":"group","id":0},"events":[{"type":"message","text":"first"}]}`)
	expect(t, r, 201, "")
	jsonEq(t, next().Payload, `{"routing_scope":{"type":"group","id":0},"events":[{"type":"message","text":"first"}]}`)

	s := expect(t, e.do("GET", "/v1/chats?offset=0&limit=2", "tok", nil), 200, "")
	if s["totalChats"] != float64(3) || len(s["chatsSummary"].([]any)) != 2 {
		t.Fatalf("summary %v", s)
	}
	s = expect(t, e.do("GET", "/v1/chats", "tok", nil), 200, "")
	if len(s["chatsSummary"].([]any)) != 3 {
		t.Fatalf("summary %v", s)
	}
}

func TestThreadsAndHistory(t *testing.T) {
	e := newEnv(t)
	chat, thread := e.startChat("tok")
	expect(t, e.do("POST", "/v1/chats/"+chat+"/messages", "tok", `{"text":"one"}`), 201, "")

	r := e.do("GET", "/v1/chats/"+chat+"/threads?ids="+thread, "tok", nil)
	expect(t, r, 200, "")
	var threads []map[string]any
	if err := json.Unmarshal(r.body, &threads); err != nil || len(threads) != 1 {
		t.Fatalf("threads %s", r.body)
	}
	if threads[0]["id"] != thread || threads[0]["chat"] != chat || len(threads[0]["events"].([]any)) != 1 {
		t.Fatalf("thread %v", threads[0])
	}

	m := expect(t, e.do("GET", "/v1/chats/"+chat+"/threads-summary?offset=0&limit=5", "tok", nil), 200, "")
	if m["totalThreads"] != float64(1) || len(m["threadsSummary"].([]any)) != 1 {
		t.Fatalf("threads summary %v", m)
	}

	h := expect(t, e.do("GET", "/v1/chats/"+chat+"/history", "tok", nil), 200, "")
	if h["done"] != true || len(h["events"].([]any)) != 1 {
		t.Fatalf("history %v", h)
	}
	// the last page has no cursor (API.md: so that while (cursor) ends);
	// a forged one is INVALID_ARGS
	if _, ok := h["cursor"]; ok {
		t.Fatalf("done page with a cursor: %v", h)
	}
	expect(t, e.do("GET", "/v1/chats/"+chat+"/history?cursor=forged", "tok", nil), 400, CodeInvalidArgs)
}

func TestSendEventMapping(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	next := e.watch("send_event")

	// message: {text, type, custom_id?}; other fields dropped
	m := expect(t, e.do("POST", "/v1/chats/"+chat+"/events", "tok", `{"type":"message","text":"hi","customId":"c1","extra":1}`), 201, "")
	if m["text"] != "hi" || m["type"] != "message" || m["customId"] != "c1" || m["thread"] == nil {
		t.Fatalf("event %v", m)
	}
	jsonEq(t, next().Payload, `{"chat_id":"`+chat+`","event":{"text":"hi","type":"message","custom_id":"c1"}}`)

	// another type: passed as given, custom_id added beside customId
	expect(t, e.do("POST", "/v1/chats/"+chat+"/events", "tok", `{"type":"annotation","note":"n","customId":"c2"}`), 201, "")
	jsonEq(t, next().Payload, `{"chat_id":"`+chat+`","event":{"type":"annotation","note":"n","customId":"c2","custom_id":"c2"}}`)

	// sendMessage is sendEvent with type message
	m = expect(t, e.do("POST", "/v1/chats/"+chat+"/messages", "tok", `{"text":"yo","type":"file"}`), 201, "")
	if m["type"] != "message" || m["text"] != "yo" {
		t.Fatalf("message %v", m)
	}
	jsonEq(t, next().Payload, `{"chat_id":"`+chat+`","event":{"text":"yo","type":"message"}}`)
}

func TestChatOperations(t *testing.T) {
	e := newEnv(t)
	chat, thread := e.startChat("tok")

	jsonEq(t, e.do("PATCH", "/v1/chats/"+chat+"/properties", "tok", `{"routing":{"pinned":true}}`).body, `{"success":true}`)
	jsonEq(t, e.do("PATCH", "/v1/chats/"+chat+"/threads/"+thread+"/properties", "tok", `{"ns":{"k":"v"}}`).body, `{"success":true}`)
	jsonEq(t, e.do("PATCH", "/v1/customer", "tok", `{"name":"Jane","email":"jane@example.com","fields":{"plan":"pro"}}`).body, `{"success":true}`)

	// updateLastSeenTimestamp sends only chat_id (SDK 0.9.1's bug, followed)
	next := e.watch("update_last_seen_timestamp")
	r := e.do("POST", "/v1/chats/"+chat+"/last-seen", "tok", `{"timestamp":1700000000000}`)
	m := expect(t, r, 200, "")
	if _, ok := m["timestamp"].(float64); !ok {
		t.Fatalf("last seen %s", r.body)
	}
	jsonEq(t, next().Payload, `{"chat_id":"`+chat+`"}`)
	expect(t, e.do("POST", "/v1/chats/"+chat+"/last-seen", "tok", nil), 200, "")

	// rating: {value, comment}; stored on the newest thread
	jsonEq(t, e.do("POST", "/v1/chats/"+chat+"/rating", "tok", `{"value":"good","comment":"thanks"}`).body, `{"value":"good","comment":"thanks"}`)
	jsonEq(t, e.do("POST", "/v1/chats/"+chat+"/rating", "tok", `{"value":"bad"}`).body, `{"value":"bad"}`)

	// sneak peek: 202 {} at once, sent upstream by the session
	r = e.do("PUT", "/v1/chats/"+chat+"/sneak-peek", "tok", `{"text":"typing…"}`)
	expect(t, r, 202, "")
	jsonEq(t, r.body, `{}`)
	eventually(t, "the sneak peek at the simulator", func() bool {
		ci, _ := e.sim.Chat(chat)
		return ci.SneakPeek == "typing…"
	})

	jsonEq(t, e.do("POST", "/v1/chats/"+chat+"/close-thread", "tok", nil).body, `{"success":true}`)
}

func multipartBody(t *testing.T, fields [][2]string, file []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if f[0] == "file" {
			w, _ := mw.CreateFormFile("file", "hello.txt")
			_, _ = w.Write(file)
			continue
		}
		_ = mw.WriteField(f[0], f[1])
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestSendFile(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	next := e.watch("send_file")
	body, ct := multipartBody(t, [][2]string{{"customId", "f1"}, {"file", ""}}, []byte("hello, file"))
	r := e.do("POST", "/v1/chats/"+chat+"/files", "tok", body, "Content-Type: "+ct)
	m := expect(t, r, 201, "")
	if u, _ := m["url"].(string); u == "" {
		t.Fatalf("file answer %s", r.body)
	}
	a := next()
	if len(a.Events) != 1 || a.Events[0].Type != "file" {
		t.Fatalf("activity %+v", a)
	}
	if !strings.Contains(string(a.Events[0].Raw), `"custom_id":"f1"`) {
		t.Fatalf("custom id not sent: %s", a.Events[0].Raw)
	}
}

func TestSession(t *testing.T) {
	e := newEnv(t)
	m := expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
	if m["customerId"] != chatiosim.CustomerIDForToken("tok") || m["status"] != "connected" {
		t.Fatalf("session %v", m)
	}
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")

	r := e.do("DELETE", "/v1/session", "tok", nil)
	expect(t, r, http.StatusNoContent, "")
	if len(r.body) != 0 {
		t.Fatalf("204 with body %q", r.body)
	}
	d := s.waitEvent("disconnected")
	jsonEq(t, json.RawMessage(d.Data), `{"reason":"logged_out"}`)
	s.ended(5 * time.Second)
}
