package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// everyV1Route is one request per /v1 route (ids are placeholders).
var everyV1Route = [][2]string{
	{"POST", "/v1/tickets"}, {"GET", "/v1/events"}, {"GET", "/v1/session"}, {"DELETE", "/v1/session"},
	{"PATCH", "/v1/customer"}, {"POST", "/v1/chats"}, {"GET", "/v1/chats"},
	{"GET", "/v1/chats/C/threads?ids=T"}, {"GET", "/v1/chats/C/threads-summary"}, {"GET", "/v1/chats/C/history"},
	{"POST", "/v1/chats/C/events"}, {"POST", "/v1/chats/C/messages"}, {"POST", "/v1/chats/C/files"},
	{"POST", "/v1/chats/C/rating"}, {"PUT", "/v1/chats/C/sneak-peek"}, {"POST", "/v1/chats/C/close-thread"},
	{"PATCH", "/v1/chats/C/properties"}, {"PATCH", "/v1/chats/C/threads/T/properties"}, {"POST", "/v1/chats/C/last-seen"},
}

func TestMissingBearer(t *testing.T) {
	e := newEnv(t)
	for _, rt := range everyV1Route {
		expect(t, e.do(rt[0], rt[1], "", `{}`), 401, CodeAuthentication)
		expect(t, e.do(rt[0], rt[1], "", `{}`, "Authorization: Basic dXNlcjpwdw=="), 401, CodeAuthentication)
		expect(t, e.do(rt[0], rt[1], "", `{}`, "Authorization: Bearer "), 401, CodeAuthentication)
	}
	if n := e.pool.Len(); n != 0 {
		t.Fatalf("%d sessions opened without a bearer", n)
	}
}

func TestUpstreamRefusesToken(t *testing.T) {
	e := newEnv(t)
	m := expect(t, e.do("GET", "/v1/session", "expired:abc", nil), 401, CodeAuthentication)
	if m["message"] != chatiosim.ErrTokenExpired.Error() {
		t.Fatalf("message %v", m["message"])
	}
	expect(t, e.do("POST", "/v1/tickets", "expired:abc", nil), 401, CodeAuthentication)
}

func TestInvalidArgs(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	c := "/v1/chats/" + chat
	cases := []struct {
		method, path, body, msg string
	}{
		{"GET", "/v1/chats?limit=30", "", "Specified limit is too high (max 25)."},
		{"GET", c + "/threads-summary?limit=1001", "", "Specified limit is too high (max 1000)."},
		{"GET", "/v1/chats?limit=-1", "", ""},
		{"GET", "/v1/chats?offset=x", "", ""},
		{"GET", "/v1/chats?limit=1.5", "", ""},
		{"GET", c + "/threads", "", ""},
		{"GET", c + "/threads?ids=A,,B", "", ""},
		{"POST", "/v1/chats", `{"events":{}}`, "events must be an array"},
		{"POST", "/v1/chats", `{"events":[1]}`, ""},
		{"POST", "/v1/chats", `{"properties":[]}`, ""},
		{"POST", "/v1/chats", `{"scope":null}`, ""},
		{"POST", "/v1/chats", `[]`, ""},
		{"POST", "/v1/chats", `{"a":`, "request body is not valid JSON"},
		{"POST", "/v1/chats", `{} {}`, ""},
		{"POST", c + "/events", ``, ""},
		{"POST", c + "/events", `{"text":"no type"}`, "type is required"},
		{"POST", c + "/events", `{"type":5}`, "type must be a string"},
		{"POST", c + "/events", `{"type":"message"}`, "text is required"},
		{"POST", c + "/messages", `{"text":5}`, "text must be a string"},
		{"POST", c + "/rating", `{"value":"meh"}`, ""},
		{"POST", c + "/rating", `{"value":"good","comment":1}`, ""},
		{"PUT", c + "/sneak-peek", `{}`, "text is required"},
		{"PATCH", c + "/properties", `[]`, ""},
		{"PATCH", c + "/properties", ``, ""},
		{"PATCH", "/v1/customer", `{"name":1}`, ""},
		{"PATCH", "/v1/customer", `{"fields":{"a":1}}`, ""},
		{"POST", c + "/last-seen", `{"timestamp":"now"}`, "timestamp must be a number"},
		{"POST", "/v1/chats/" + strings.Repeat("x", 129) + "/close-thread", "", ""},
		{"POST", "/v1/chats/a%01b/close-thread", "", ""},
		{"PATCH", c + "/threads/" + strings.Repeat("t", 200) + "/properties", `{}`, ""},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := e.do(tc.method, tc.path, "tok", body)
		if r.status != 400 || !bytes.Contains(r.body, []byte(`"code":"INVALID_ARGS"`)) {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, r.status, r.body)
			continue
		}
		if m := r.json(t); tc.msg != "" && m["message"] != tc.msg {
			t.Errorf("%s %s %s: message %q, want %q", tc.method, tc.path, tc.body, m["message"], tc.msg)
		}
	}
	// none of it went upstream
	if st := e.sim.Chats(chatiosim.CustomerIDForToken("tok")); len(st) != 1 || len(e.sim.Events(chat)) != 0 {
		t.Fatalf("bad input reached the simulator: %+v", st)
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	m := expect(t, e.do("POST", "/v1/chats/NOPE/messages", "tok", `{"text":"hi"}`), 404, CodeRequestFailed)
	if m["type"] != "not_found" {
		t.Fatalf("type %v", m["type"])
	}
	m = expect(t, e.do("PATCH", "/v1/chats/"+chat+"/properties", "tok", `{"ns":5}`), 400, CodeRequestFailed)
	if m["type"] != "validation" || m["message"] == "" {
		t.Fatalf("validation %v", m)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.cfg.MaxBodyBytes = 1024 })
	big := `{"text":"` + strings.Repeat("a", 2000) + `"}`
	expect(t, e.do("POST", "/v1/chats/C/messages", "tok", big), 413, CodeInvalidArgs)
	// without a Content-Length: cut while reading
	expect(t, e.do("POST", "/v1/chats/C/messages", "tok", io.MultiReader(strings.NewReader(big))), 413, CodeInvalidArgs)
	if n := e.pool.Len(); n != 0 {
		t.Fatalf("a refused body opened %d sessions", n)
	}
}

// zeros is n bytes of zeros without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

func TestFileErrors(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	path := "/v1/chats/" + chat + "/files"

	// declared too big: refused before reading
	req, _ := http.NewRequest("POST", e.srv.URL+path, &zeros{n: 16})
	req.ContentLength = chatio.MaxFileSize + 200<<10
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	res, err := e.client.Do(req)
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := expect(t, resp{res.StatusCode, res.Header, b}, 413, CodeInvalidArgs)
		if m["message"] != fileTooBigMessage {
			t.Fatalf("message %v", m["message"])
		}
	} // (the client may see the connection closed instead: fine)

	// streamed, 10 MiB + 1: cut by the upload, SDK reason
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.bin")
		_, err := io.Copy(fw, &zeros{n: chatio.MaxFileSize + 1})
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	r := e.do("POST", path, "tok", pr, "Content-Type: "+mw.FormDataContentType())
	pr.CloseWithError(errors.New("done"))
	m := expect(t, r, 413, CodeInvalidArgs)
	if m["message"] != fileTooBigMessage {
		t.Fatalf("message %v", m["message"])
	}

	// no file part; not multipart; a second customId (after the file)
	body, ct := multipartBody(t, [][2]string{{"customId", "x"}}, nil)
	expect(t, e.do("POST", path, "tok", body, "Content-Type: "+ct), 400, CodeInvalidArgs)
	expect(t, e.do("POST", path, "tok", `{}`), 400, CodeInvalidArgs)
	body, ct = multipartBody(t, [][2]string{{"customId", "early"}, {"file", ""}, {"customId", "late"}}, []byte("abc"))
	m = expect(t, e.do("POST", path, "tok", body, "Content-Type: "+ct), 400, CodeInvalidArgs)
	if m["message"] != errSecondCustomID.(*apiError).message {
		t.Fatalf("message %v", m["message"])
	}
	if evs := e.sim.Events(chat); len(evs) != 0 {
		t.Fatalf("a refused upload became an event: %+v", evs)
	}
}

func TestUpstreamDown(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.upstreamURL = downURL(t) })
	r := e.do("GET", "/v1/chats", "tok", nil)
	expect(t, r, 503, CodeConnectionLost)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	s, r := e.tryStream("/v1/events", "tok")
	if s != nil {
		t.Fatal("stream opened without upstream")
	}
	expect(t, r, 503, CodeConnectionLost)
}

func TestOverloaded(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.pool.MaxSessions = 1 })
	expect(t, e.do("GET", "/v1/session", "first", nil), 200, "")
	r := e.do("GET", "/v1/session", "second", nil)
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	expect(t, e.do("GET", "/v1/session", "first", nil), 200, "")
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.pool.Upstream.RequestTimeout = 300 * time.Millisecond })
	expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
	e.sim.SetLatency(2 * time.Second)
	defer e.sim.SetLatency(0)
	expect(t, e.do("GET", "/v1/chats", "tok", nil), 504, CodeTimeout)
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	h := requestIDs(e.api.observe(e.api.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("secret internal detail")
	}))))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	r := resp{rec.Code, rec.Header(), rec.Body.Bytes()}
	expect(t, r, 500, CodeInternal)
	if bytes.Contains(r.body, []byte("secret")) {
		t.Fatalf("500 leaks detail: %s", r.body)
	}
	if e.logs.FilterMessage("handler panicked").Len() != 1 {
		t.Fatal("panic not logged")
	}
}

func TestClassify(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	cases := []struct {
		err    error
		status int
		code   string
		retry  bool
	}{
		{errors.New("anything"), 500, CodeInternal, false},
		{&chatio.AuthError{Message: "bad"}, 401, CodeAuthentication, false},
		{&chatio.RequestError{Type: "validation"}, 400, CodeRequestFailed, false},
		{&chatio.RequestError{Type: "not_found"}, 404, CodeRequestFailed, false},
		{&chatio.RequestError{Type: "too_many_requests"}, 429, CodeRequestFailed, true}, // the gateway's hint: chat.io gives none
		{&chatio.RequestError{Type: "internal"}, 502, CodeRequestFailed, false},
		{fmt.Errorf("x: %w", chatio.ErrConnectionLost), 503, CodeConnectionLost, true},
		{&chatio.DisconnectedError{Reason: "x"}, 503, CodeConnectionLost, true},
		{chatio.ErrTimeout, 504, CodeTimeout, false},
		{context.DeadlineExceeded, 504, CodeTimeout, false},
		{session.ErrOverloaded, 503, CodeOverloaded, true},
		{session.ErrTooManySubscribers, 503, CodeOverloaded, true},
		{session.ErrDraining, 503, CodeOverloaded, true},
		{session.ErrBadCursor, 400, CodeInvalidArgs, false},
		{chatio.ErrFileTooLarge, 413, CodeInvalidArgs, false},
		{&acquireError{errors.New("dial tcp: refused")}, 503, CodeConnectionLost, true},
		{&acquireError{session.ErrOverloaded}, 503, CodeOverloaded, true},
	}
	for _, tc := range cases {
		st, body, retry := classify(r, tc.err)
		if st != tc.status || body.Code != tc.code || retry != tc.retry {
			t.Errorf("%v: %d %s %v, want %d %s %v", tc.err, st, body.Code, retry, tc.status, tc.code, tc.retry)
		}
		if st == 500 && body.Message != "internal error" {
			t.Errorf("500 message %q", body.Message)
		}
	}
}
