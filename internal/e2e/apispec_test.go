package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
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
// wrong data or falling ids.
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
		{"unexpected content", "GET", "/docs/x", answer{404, "application/json", nil, `{"x":1}`}, "no content"},
		{"method", "PUT", "/v1/session", answer{200, "application/json", nil, `{}`}, "no PUT"},
		{"route", "GET", "/v1/nope", answer{200, "application/json", nil, `{}`}, "no path"},
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
