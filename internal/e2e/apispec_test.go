package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
)

// apiRecorder is an apiReporter that keeps the failures.
type apiRecorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *apiRecorder) Helper() {}

func (r *apiRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *apiRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

// TestAPISpecSchemasCompile: every schema of components and every response
// schema of every operation compiles; every stream event the spec lists
// has its StreamEvent_ schema.
func TestAPISpecSchemasCompile(t *testing.T) {
	s := apiLoadSpec(t)
	schemas, _ := s.doc["components"].(map[string]any)["schemas"].(map[string]any)
	if len(schemas) < 20 {
		t.Fatalf("only %d schemas", len(schemas))
	}
	for name := range schemas {
		if _, err := s.schema("/components/schemas/" + apiPtrEscape(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	n := 0
	paths, _ := s.doc["paths"].(map[string]any)
	for tmpl, item := range paths {
		for method, op := range item.(map[string]any) {
			resps, _ := op.(map[string]any)["responses"].(map[string]any)
			for status := range resps {
				resp, ptr, err := s.deref("/paths/" + apiPtrEscape(tmpl) + "/" + method + "/responses/" + status)
				if err != nil {
					t.Errorf("%s %s %s: %v", method, tmpl, status, err)
					continue
				}
				content, _ := resp["content"].(map[string]any)
				for mt, c := range content {
					if _, ok := c.(map[string]any)["schema"]; !ok {
						continue
					}
					if _, err := s.schema(ptr + "/content/" + apiPtrEscape(mt) + "/schema"); err != nil {
						t.Errorf("%s %s %s %s: %v", method, tmpl, status, mt, err)
					}
					n++
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d response schemas", n)
	}
	for _, ev := range apiStreamEventNames {
		if !s.hasSchema("StreamEvent_" + ev) {
			t.Errorf("no components.schemas.StreamEvent_%s", ev)
		}
	}
	// The stream schemas agree with each other: StreamMessage is one of
	// them, and StreamEvent_other excludes exactly the named ones.
	var named []string
	for name := range schemas {
		if ev, ok := strings.CutPrefix(name, "StreamEvent_"); ok && ev != "other" {
			named = append(named, ev)
		}
	}
	sort.Strings(named)
	want := slices.Sorted(slices.Values(apiStreamEventNames))
	if !slices.Equal(named, want) {
		t.Errorf("StreamEvent_ schemas for %v, want %v", named, want)
	}
	var oneOf []string
	msg, _ := s.lookup("/components/schemas/StreamMessage/oneOf")
	for _, r := range msg.([]any) {
		ref, _ := r.(map[string]any)["$ref"].(string)
		oneOf = append(oneOf, strings.TrimPrefix(ref, "#/components/schemas/StreamEvent_"))
	}
	sort.Strings(oneOf)
	if want := slices.Sorted(slices.Values(append(named, "other"))); !slices.Equal(oneOf, want) {
		t.Errorf("StreamMessage.oneOf %v, want %v", oneOf, want)
	}
	var excluded []string
	not, _ := s.lookup("/components/schemas/StreamEvent_other/properties/event/not/enum")
	for _, v := range not.([]any) {
		excluded = append(excluded, v.(string))
	}
	sort.Strings(excluded)
	if !slices.Equal(excluded, named) {
		t.Errorf("StreamEvent_other excludes %v, want %v", excluded, named)
	}
}

// apiStreamEventNames are the SDK events of API.md's stream.
var apiStreamEventNames = []string{
	"customer_id", "connected", "connection_lost", "connection_restored", "disconnected",
	"user_data", "new_event", "thread_summary", "user_is_typing", "user_stopped_typing",
	"user_joined_chat", "user_left_chat", "chat_properties_updated",
	"chat_thread_properties_updated", "last_seen_timestamp_updated", "thread_closed",
}

// TestAPIValidatorBites: the validating client accepts answers that fit the
// spec and reports each kind of misfit: a wrong body, an unknown route, a
// method or status the spec does not have, a wrong content type, content
// where none is specified, a missing required header, stream events with
// wrong data or falling ids. A 404 on an unknown route and a 405 on an
// unknown method are held to the spec's answers for them; a HEAD answer has
// no body to check.
func TestAPIValidatorBites(t *testing.T) {
	type answer struct {
		status int
		ct     string
		header map[string]string
		body   string
	}
	const errBody = `{"code":"OVERLOADED","message":"full"}`
	cases := []struct {
		name, method, path string
		answer
		want string // "" = no failure; else a substring of the one failure
	}{
		{"good", "GET", "/v1/session", answer{200, "application/json; charset=utf-8", nil, `{"customerId":"c1","status":"connected"}`}, ""},
		{"wrong type", "GET", "/v1/session", answer{200, "application/json", nil, `{"customerId":5,"status":"connected"}`}, "customerId"},
		{"not in enum", "GET", "/v1/session", answer{200, "application/json", nil, `{"customerId":"c1","status":"asleep"}`}, "status"},
		{"not JSON", "GET", "/v1/session", answer{200, "application/json", nil, `{"customerId":`}, "not JSON"},
		{"status", "GET", "/v1/session", answer{418, "application/json", nil, `{}`}, "status 418 is not a response"},
		{"content type", "GET", "/v1/session", answer{200, "text/html", nil, `<p>hi</p>`}, `content type "text/html"`},
		{"no content", "DELETE", "/v1/session", answer{204, "", nil, ``}, ""},
		{"method", "PUT", "/v1/session", answer{200, "application/json", nil, `{}`}, "no PUT"},
		{"route", "GET", "/v1/nope", answer{200, "application/json", nil, `{}`}, "no path"},
		{"no route", "GET", "/v1/nope", answer{404, "application/json", nil,
			`{"code":"REQUEST_FAILED","type":"not_found","message":"no such route"}`}, ""},
		{"no route, old code", "GET", "/nope", answer{404, "application/json", nil, `{"code":"NOT_FOUND","message":"no such route"}`}, "code"},
		{"no method", "PUT", "/v1/session", answer{405, "application/json", map[string]string{"Allow": "GET, DELETE"},
			`{"code":"REQUEST_FAILED","type":"method_not_allowed","message":"no"}`}, ""},
		{"no method, no Allow", "PUT", "/v1/session", answer{405, "application/json", nil,
			`{"code":"REQUEST_FAILED","type":"method_not_allowed","message":"no"}`}, "Allow is missing"},
		{"no method, HEAD", "HEAD", "/v1/session", answer{405, "application/json", map[string]string{"Allow": "GET, DELETE"}, ``}, ""},
		{"head", "HEAD", "/readyz", answer{200, "", nil, ``}, ""},
		{"head draining", "HEAD", "/readyz", answer{503, "", nil, ``}, "Retry-After is missing"},
		{"docs 404", "GET", "/docs/x", answer{404, "text/plain; charset=utf-8", nil, "404 page not found\n"}, ""},
		{"rate limited", "GET", "/v1/session", answer{429, "application/json", map[string]string{"Retry-After": "2"},
			`{"code":"REQUEST_FAILED","type":"too_many_requests","message":"slow down"}`}, ""},
		{"rate limited, bad Retry-After", "POST", "/v1/tickets", answer{429, "application/json", map[string]string{"Retry-After": "0"},
			`{"code":"REQUEST_FAILED","type":"too_many_requests","message":"slow down"}`}, "header Retry-After"},
		{"body timeout", "POST", "/v1/chats/c1/messages", answer{408, "application/json", nil, `{"code":"TIMEOUT","message":"too slow"}`}, ""},
		{"body timeout, wrong code", "POST", "/v1/chats/c1/messages", answer{408, "application/json", nil, `{"code":"INVALID_ARGS","message":"x"}`}, "code"},
		{"history done", "GET", "/v1/chats/c1/history", answer{200, "application/json", nil, `{"events":[],"done":true}`}, ""},
		{"history done, cursor", "GET", "/v1/chats/c1/history", answer{200, "application/json", nil, `{"events":[],"done":true,"cursor":"c"}`}, "/cursor"},
		{"missing header", "GET", "/v1/session", answer{503, "application/json", nil, errBody}, "Retry-After is missing"},
		{"header", "GET", "/v1/session", answer{503, "application/json", map[string]string{"Retry-After": "3"}, errBody}, ""},
		{"bad header", "GET", "/v1/session", answer{503, "application/json", map[string]string{"Retry-After": "soon"}, errBody}, "header Retry-After"},
		{"error code", "GET", "/v1/session", answer{401, "application/json", nil, `{"code":"NOPE","message":"x"}`}, "code"},
		{"array", "GET", "/v1/chats/c1/threads?ids=t", answer{200, "application/json", nil,
			`[{"id":"t","chat":"c1","active":true,"order":1,"users":[],"events":[],"properties":{}}]`}, ""},
		{"array item", "GET", "/v1/chats/c1/threads?ids=t", answer{200, "application/json", nil,
			`[{"id":"t","chat":"c1","active":true}]`}, "missing properties"},
		{"escaped path", "POST", "/v1/chats/c%7B1%7D/messages", answer{201, "application/json", nil,
			`{"id":"e1","author":"a","timestamp":1000,"thread":"t","type":"message","text":"hi"}`}, ""},
		{"message without text", "POST", "/v1/chats/c1/messages", answer{201, "application/json", nil,
			`{"id":"e1","author":"a","timestamp":1000,"thread":"t","type":"message"}`}, "text"},
		{"custom event", "POST", "/v1/chats/c1/events", answer{201, "application/json", nil,
			`{"id":"e1","author":"a","timestamp":null,"thread":"t","type":"rich","x":[1]}`}, ""},
		{"file event without url", "POST", "/v1/chats/c1/events", answer{201, "application/json", nil,
			`{"id":"e1","author":"a","timestamp":1,"thread":"t","type":"file","contentType":"image/png"}`}, "url"},
	}
	byName := map[string]answer{}
	for _, c := range cases {
		byName[c.name] = c.answer
	}
	stream := "retry: 3000\n: connected\n\n" +
		"event: customer_id\ndata: \"c1\"\n\n" +
		"id: 5\nevent: connected\ndata: {\"chatsSummary\":[],\"totalChats\":0}\n\n" +
		"id: 6\nevent: new_event\ndata: {\"chat\":\"c1\",\"event\":{\"id\":\"e\",\"author\":\"a\",\"timestamp\":1,\"thread\":\"t\",\"type\":\"message\",\"text\":\"x\"}}\n\n" +
		"id: 7\nevent: some_future_push\ndata: {\"anything\":[1]}\n\n" +
		": heartbeat\n\n" +
		// the misfits: wrong data, an id that does not rise, not JSON
		"id: 8\nevent: new_event\ndata: {\"chat\":1}\n\n" +
		"id: 8\nevent: thread_closed\ndata: {\"chat\":\"c1\"}\n\n" +
		"id: 9\nevent: user_is_typing\ndata: {\"chat\":\"c1\",\n\n"

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = io.WriteString(w, stream)
			return
		}
		a, ok := byName[r.Header.Get("X-Case")]
		if !ok {
			http.Error(w, "no case", 599)
			return
		}
		if a.ct != "" {
			w.Header().Set("Content-Type", a.ct)
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	})
	srv := httptest.NewUnstartedServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	rec := &apiRecorder{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: &apiValidator{spec: apiLoadSpec(t), next: tr, rep: rec}}

	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		req.Header.Set("X-Case", c.name)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 599 {
			t.Fatalf("%s: the test server has no such case", c.name)
		}
		got := rec.take()
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%s: unexpected failures: %q", c.name, got)
		case c.want != "" && len(got) != 1:
			t.Errorf("%s: want one failure about %q, got %q", c.name, c.want, got)
		case c.want != "" && !strings.Contains(got[0], c.want):
			t.Errorf("%s: failure %q does not mention %q", c.name, got[0], c.want)
		}
	}

	// Content where the spec gives none (no such answer can be produced
	// over HTTP now: the spec's only ones are 204 and HEAD answers).
	if err := apiLoadSpec(t).checkBody(apiExpectation{}, []byte(`{"x":1}`)); err == nil || !strings.Contains(err.Error(), "no content") {
		t.Errorf("a body where the spec gives no content: %v", err)
	}

	// The stream: read through the client, messages are checked as they
	// pass.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := apiOpenStreamWith(t, ctx, client, srv.URL+"/v1/events", nil)
	var names []string
	for {
		m, ok := <-s.msgs
		if !ok {
			break
		}
		names = append(names, m.Event)
	}
	if want := "customer_id connected new_event some_future_push new_event thread_closed user_is_typing"; strings.Join(names, " ") != want {
		t.Errorf("stream read %q, want %q", names, want)
	}
	got := rec.take()
	sort.Strings(got)
	wants := []string{"event new_event (schema StreamEvent_new_event)", "ids must rise strictly", "data is not JSON"}
	if len(got) != len(wants) {
		t.Fatalf("stream failures %q, want %d about %q", got, len(wants), wants)
	}
	for _, w := range wants {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			t.Errorf("no stream failure mentions %q: %q", w, got)
		}
	}
}

// apiOperation is one operation of the spec.
type apiOperation struct {
	method, path string
	ptr          string         // JSON pointer of the operation
	op           map[string]any // the operation object
}

func (o apiOperation) String() string { return strings.ToUpper(o.method) + " " + o.path }

// apiOperations lists the operations of the spec, sorted.
func apiOperations(s *apiSpec) []apiOperation {
	var ops []apiOperation
	paths, _ := s.doc["paths"].(map[string]any)
	for tmpl, item := range paths {
		for method, op := range item.(map[string]any) {
			if m, ok := op.(map[string]any); ok && method != "parameters" {
				ops = append(ops, apiOperation{method, tmpl, "/paths/" + apiPtrEscape(tmpl) + "/" + method, m})
			}
		}
	}
	slices.SortFunc(ops, func(a, b apiOperation) int { return strings.Compare(a.String(), b.String()) })
	return ops
}

// bearer tells whether a bearer token may authenticate the operation (its
// security, else the document's).
func (o apiOperation) bearer(s *apiSpec) bool {
	sec, ok := o.op["security"].([]any)
	if !ok {
		sec, _ = s.doc["security"].([]any)
	}
	for _, req := range sec {
		if _, ok := req.(map[string]any)["bearer"]; ok {
			return true
		}
	}
	return false
}

// header returns the header object name of the response at respPtr
// (references followed), or nil.
func (s *apiSpec) header(t *testing.T, respPtr, name string) map[string]any {
	t.Helper()
	resp, ptr, err := s.deref(respPtr)
	if err != nil {
		t.Fatal(err)
	}
	headers, _ := resp["headers"].(map[string]any)
	if _, ok := headers[name]; !ok {
		return nil
	}
	h, _, err := s.deref(ptr + "/headers/" + apiPtrEscape(name))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAPISpecErrorAnswers: the spec declares the error answers the server
// gives (API.md, internal/httpapi: errors.go, ratelimit.go). Every /v1
// operation is authenticated by a bearer token, so it can answer 401 and,
// past the token's request rate, 429 with Retry-After (limitRate runs on
// each, the event stream included); it takes X-Customer-Id (400 when
// malformed); each that reads a body can answer 408 (body too slow) and 413.
// Every 503 carries Retry-After, required; every 405 Allow. The error codes
// are the server's, and 499 (a client that went away) is no answer.
func TestAPISpecErrorAnswers(t *testing.T) {
	s := apiLoadSpec(t)
	ops := apiOperations(s)
	if len(ops) < 25 {
		t.Fatalf("only %d operations", len(ops))
	}
	for _, o := range ops {
		resps, _ := o.op["responses"].(map[string]any)
		has := func(status string) bool { _, ok := resps[status]; return ok }
		if strings.HasPrefix(o.path, "/v1/") {
			if !o.bearer(s) {
				t.Errorf("%s: not authenticated by the bearer token", o)
			}
			for _, st := range []string{"400", "401", "429", "503", "500"} {
				if !has(st) {
					t.Errorf("%s: no %s", o, st)
				}
			}
			customerID := false
			params, _ := o.op["parameters"].([]any)
			for i := range params {
				p, _, err := s.deref(o.ptr + "/parameters/" + strconv.Itoa(i))
				if err != nil {
					t.Fatal(err)
				}
				customerID = customerID || p["in"] == "header" && p["name"] == "X-Customer-Id"
			}
			if !customerID {
				t.Errorf("%s: no X-Customer-Id header parameter", o)
			}
		} else if o.bearer(s) {
			t.Errorf("%s: outside /v1 but authenticated by a bearer token", o)
		}
		if _, body := o.op["requestBody"]; body {
			for _, st := range []string{"400", "408", "413"} {
				if !has(st) {
					t.Errorf("%s reads a body: no %s", o, st)
				}
			}
		}
		for st := range resps {
			code, err := strconv.Atoi(st)
			if err != nil || http.StatusText(code) == "" {
				t.Errorf("%s: status %s is no HTTP status", o, st)
			}
			ptr := o.ptr + "/responses/" + st
			switch st {
			case "429":
				if h := s.header(t, ptr, "Retry-After"); h == nil {
					t.Errorf("%s 429: no Retry-After", o)
				}
			case "503":
				if h := s.header(t, ptr, "Retry-After"); h == nil || h["required"] != true {
					t.Errorf("%s 503: no required Retry-After", o)
				}
			}
		}
	}

	// The answers outside the operations.
	if h := s.header(t, apiMethodNotAllowed, "Allow"); h == nil || h["required"] != true {
		t.Errorf("MethodNotAllowed: no required Allow")
	}
	for _, c := range []struct {
		ptr  string
		body string
		ok   bool
	}{
		{apiRouteNotFound, `{"code":"REQUEST_FAILED","type":"not_found","message":"no such route"}`, true},
		{apiRouteNotFound, `{"code":"NOT_FOUND","message":"no such route"}`, false},
		{apiRouteNotFound, `{"code":"REQUEST_FAILED","message":"no such route"}`, false},
		{apiMethodNotAllowed, `{"code":"REQUEST_FAILED","type":"method_not_allowed","message":"no"}`, true},
		{apiMethodNotAllowed, `{"code":"METHOD_NOT_ALLOWED","message":"no"}`, false},
		{"/components/responses/BodyTimeout", `{"code":"TIMEOUT","message":"the body did not arrive in time"}`, true},
		{"/components/responses/BodyTimeout", `{"code":"INVALID_ARGS","message":"x"}`, false},
	} {
		_, ptr, err := s.deref(c.ptr)
		if err != nil {
			t.Fatal(err)
		}
		err = s.validateJSON(ptr+"/content/application~1json/schema", []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: %s: valid %v, want %v (%v)", c.ptr, c.body, err == nil, c.ok, err)
		}
	}

	// The error codes are the server's.
	enum, _ := s.lookup("/components/schemas/Error/properties/code/enum")
	var codes []string
	for _, c := range enum.([]any) {
		codes = append(codes, c.(string))
	}
	want := []string{httpapi.CodeInvalidArgs, httpapi.CodeAuthentication, httpapi.CodeRequestFailed,
		httpapi.CodeConnectionLost, httpapi.CodeTimeout, httpapi.CodeOverloaded, httpapi.CodeInternal}
	if !slices.Equal(slices.Sorted(slices.Values(codes)), slices.Sorted(slices.Values(want))) {
		t.Errorf("Error.code enum %v, want %v", codes, want)
	}

	// HEAD on the probes; the license.
	for _, p := range []string{"/paths/~1healthz/head", "/paths/~1readyz/head"} {
		if _, ok := s.lookup(p); !ok {
			t.Errorf("no %s", p)
		}
	}
	if id, _ := s.lookup("/info/license/identifier"); id != "Apache-2.0" {
		t.Errorf("info.license.identifier %v, want Apache-2.0", id)
	}
}

// TestAPISpecHistoryCursor: a history page has its cursor exactly when it
// is not done (API.md: so that `while (cursor)` ends).
func TestAPISpecHistoryCursor(t *testing.T) {
	s := apiLoadSpec(t)
	for _, c := range []struct {
		page string
		ok   bool
	}{
		{`{"events":[],"done":true}`, true},
		{`{"events":[],"done":false,"cursor":"c1"}`, true},
		{`{"events":[],"done":true,"cursor":"c1"}`, false},
		{`{"events":[],"done":false}`, false},
		{`{"events":[],"done":false,"cursor":""}`, false},
	} {
		err := s.validateJSON("/components/schemas/HistoryPage", []byte(c.page))
		if (err == nil) != c.ok {
			t.Errorf("%s: valid %v, want %v (%v)", c.page, err == nil, c.ok, err)
		}
	}
}

// TestAPISpecTypedForClients: the schemas say what a generated client needs
// (scripts/check-spec-types.sh compiles one; this is the part that needs
// no Node): no object schema is left without any member description (code
// generators read `{type: object}` alone as an object with no members, and
// openapi-typescript types it Record<string, never>), and a discriminator
// maps every schema of its oneOf (one left out is matched by its schema's
// name, which is no event type: custom events and unknown stream events
// are open sets, so they have no discriminator). Property maps and custom
// events take any members.
func TestAPISpecTypedForClients(t *testing.T) {
	s := apiLoadSpec(t)
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			typ := v["type"]
			isObject := typ == "object"
			if ts, ok := typ.([]any); ok {
				isObject = slices.Contains(ts, any("object"))
			}
			if isObject {
				described := false
				for _, k := range []string{"properties", "additionalProperties", "patternProperties", "allOf", "oneOf", "anyOf", "maxProperties"} {
					_, ok := v[k]
					described = described || ok
				}
				if !described {
					t.Errorf("#%s: an object schema that says nothing of its members", ptr)
				}
			}
			if d, ok := v["discriminator"].(map[string]any); ok {
				mapped := map[string]bool{}
				for _, ref := range d["mapping"].(map[string]any) {
					mapped[ref.(string)] = true
				}
				oneOf, _ := v["oneOf"].([]any)
				for _, m := range oneOf {
					if ref, _ := m.(map[string]any)["$ref"].(string); !mapped[ref] {
						t.Errorf("#%s: discriminator without a mapping for %s", ptr, ref)
					}
				}
			}
			for k, x := range v {
				walk(ptr+"/"+apiPtrEscape(k), x)
			}
		case []any:
			for i, x := range v {
				walk(ptr+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("", s.doc)

	for _, c := range []struct {
		schema, value string
		ok            bool
	}{
		{"Properties", `{"routing":{"pinned":true},"tags":["late"],"score":1}`, true},
		{"Chat", `{"id":"c","users":[],"threads":[],"properties":{"source":{"page":"/p"}}}`, true},
		{"ChatSummary", `{"id":"c","order":1,"properties":null,"users":[],"lastSeenTimestamps":{}}`, true},
		{"ChatPropertiesUpdatedData", `{"chat":"c","properties":{"routing":{"team":"shipping"}}}`, true},
		{"EventInput", `{"type":"rich_message","template_id":"cards","elements":[{"title":"x"}]}`, true},
		{"Event", `{"id":"e","author":"a","timestamp":1,"thread":"t","type":"rich_message","elements":[]}`, true},
		{"Event", `{"id":"e","author":"a","timestamp":1,"thread":"t","type":"message"}`, false},
		{"StreamMessage", `{"event":"some_future_push","data":{"x":1}}`, true},
		{"StreamMessage", `{"event":"new_event","data":{"chat":1}}`, false},
	} {
		err := s.validateJSON("/components/schemas/"+c.schema, []byte(c.value))
		if (err == nil) != c.ok {
			t.Errorf("%s %s: valid %v, want %v (%v)", c.schema, c.value, err == nil, c.ok, err)
		}
	}
}

// apiErrorOf is the code and type of an error answer.
func apiErrorOf(a apiAnswer) (code, typ string) {
	var b struct{ Code, Type string }
	_ = json.Unmarshal(a.body, &b)
	return b.Code, b.Type
}

// TestAPISpecServerRateLimit: every operation of the spec that a bearer
// token authenticates, called past the token's request rate, answers 429
// REQUEST_FAILED too_many_requests with Retry-After, as the spec declares
// (the event stream and tickets included); through the validating client.
func TestAPISpecServerRateLimit(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{http: func(c *httpapi.Config) {
		c.RateLimit, c.RateBurst = 0.001, 1 // one request per token, then 429
	}})
	s := apiLoadSpec(t)

	// Past the rate: the first call takes the token's one request.
	const tok = "spec-edges-rate"
	e.ok(e.call(tok, "GET", "/v1/session", nil), http.StatusOK, nil)
	n := 0
	for _, o := range apiOperations(s) {
		if !o.bearer(s) {
			continue
		}
		n++
		path := strings.NewReplacer("{chat}", "c1", "{thread}", "t1").Replace(o.path)
		a := e.call(tok, strings.ToUpper(o.method), path, nil)
		code, typ := apiErrorOf(a)
		if a.status != http.StatusTooManyRequests || code != httpapi.CodeRequestFailed || typ != "too_many_requests" {
			t.Errorf("%s past the rate: %d %s", o, a.status, a.body)
		}
		if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s past the rate: Retry-After %q", o, a.header.Get("Retry-After"))
		}
	}
	if n < 18 {
		t.Errorf("only %d bearer operations", n)
	}
}

// TestAPISpecServerEdges: the gateway's answers at the edges of the API fit
// the spec (every answer goes through the validating client) and are the
// ones it declares: a path that is no route answers 404, a method a path
// does not have 405 with Allow; HEAD works on the probes, draining
// included; a malformed X-Customer-Id is 400.
func TestAPISpecServerEdges(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})

	// No route, no method.
	for _, c := range []struct {
		method, path string
		status       int
		typ          string
	}{
		{"GET", "/v1/nope", http.StatusNotFound, "not_found"},
		{"GET", "/nope", http.StatusNotFound, "not_found"},
		{"PUT", "/v1/session", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"DELETE", "/healthz", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"HEAD", "/v1/session", http.StatusMethodNotAllowed, ""}, // no body
	} {
		a := e.call("", c.method, c.path, nil)
		code, typ := apiErrorOf(a)
		if a.status != c.status || c.typ != "" && (code != httpapi.CodeRequestFailed || typ != c.typ) {
			t.Errorf("%s %s: %d %s, want %d %s %s", c.method, c.path, a.status, a.body, c.status, httpapi.CodeRequestFailed, c.typ)
		}
		if c.status == http.StatusMethodNotAllowed && a.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}

	// A malformed X-Customer-Id.
	req, err := http.NewRequestWithContext(e.ctx, "GET", e.gw.URL+"/v1/session", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer spec-edges-customer-id")
	req.Header.Set("X-Customer-Id", strings.Repeat("c", 129))
	if a := e.do(req); a.status != http.StatusBadRequest {
		t.Errorf("X-Customer-Id of 129 bytes: %d %s, want 400", a.status, a.body)
	} else if code, _ := apiErrorOf(a); code != httpapi.CodeInvalidArgs {
		t.Errorf("X-Customer-Id of 129 bytes: %s", a.body)
	}

	// HEAD on the probes, before and while draining.
	for _, p := range []string{"/healthz", "/readyz"} {
		if a := e.call("", "HEAD", p, nil); a.status != http.StatusOK || len(a.body) != 0 {
			t.Errorf("HEAD %s: %d %q", p, a.status, a.body)
		}
	}
	e.gw.API.SetDraining()
	for _, m := range []string{"HEAD", "GET"} {
		a := e.call("", m, "/readyz", nil)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("%s /readyz draining: %d, Retry-After %q", m, a.status, a.header.Get("Retry-After"))
		}
	}
	if a := e.call("", "HEAD", "/healthz", nil); a.status != http.StatusOK {
		t.Errorf("HEAD /healthz draining: %d", a.status)
	}
}
