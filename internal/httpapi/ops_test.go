package httpapi

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap/zapcore"
	yaml "go.yaml.in/yaml/v3"

	"github.com/chatio-gateway/chatio-gateway/api"
)

func TestHealthMetricsSpec(t *testing.T) {
	e := newEnv(t)
	jsonEq(t, e.do("GET", "/healthz", "", nil).body, `{"status":"ok"}`)
	jsonEq(t, e.do("GET", "/readyz", "", nil).body, `{"status":"ready"}`)

	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	chat, _ := e.startChat("tok")
	r := e.do("GET", "/metrics", "", nil)
	expect(t, r, 200, "")
	for _, want := range []string{
		`gateway_http_requests_total{code="201",method="POST",route="/v1/chats"} 1`,
		`gateway_http_request_duration_seconds_bucket{method="POST",route="/v1/chats"`,
		`gateway_upstream_calls_total{action="start_chat",outcome="ok"} 1`,
		`gateway_upstream_call_duration_seconds_count{action="start_chat"} 1`,
		`gateway_streams_open 1`,
		`gateway_sessions 1`, // the pool's, on the same registry
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{"tok", chat} {
		if bytes.Contains(r.body, []byte(`"`+secret+`"`)) {
			t.Errorf("metrics carry %q as a label", secret)
		}
	}

	r = e.do("GET", "/openapi.yaml", "", nil)
	expect(t, r, 200, "")
	if !bytes.Equal(r.body, api.OpenAPI) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Fatal("/openapi.yaml is not the embedded document")
	}

	r = e.do("GET", "/nope", "", nil)
	if m := expect(t, r, 404, CodeRequestFailed); m["type"] != "not_found" {
		t.Fatalf("404 type %v", m["type"])
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	if got := e.do("GET", "/healthz", "", nil, "X-Request-Id: abc-123").header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("echoed %q", got)
	}
	got := e.do("GET", "/healthz", "", nil, "X-Request-Id: bad id!").header.Get("X-Request-Id")
	if got == "" || strings.Contains(got, " ") {
		t.Fatalf("bad id replaced by %q", got)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	r := e.do("OPTIONS", "/v1/chats", "", nil,
		"Origin: https://shop.example", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, content-type")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight %d %s", r.status, r.body)
	}
	h := r.header
	if h.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Last-Event-ID") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight headers %v", h)
	}
	if e.pool.Len() != 0 {
		t.Fatal("a preflight opened a session")
	}

	r = e.do("GET", "/v1/session", "tok", nil, "Origin: https://shop.example")
	expect(t, r, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") ||
		!slices.Contains(r.header.Values("Vary"), "Origin") {
		t.Fatalf("CORS headers %v", r.header)
	}
	// errors carry CORS headers too, so a browser can read them
	r = e.do("GET", "/v1/session", "", nil, "Origin: https://shop.example")
	if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("401 without CORS: %v", r.header)
	}

	r = e.do("OPTIONS", "/v1/chats", "", nil, "Origin: https://evil.example", "Access-Control-Request-Method: POST")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("foreign origin allowed: %v", r.header)
	}

	any := newEnv(t, func(o *envOptions) { o.cfg.AllowedOrigins = []string{"*"} })
	r = any.do("GET", "/healthz", "", nil, "Origin: https://x.example")
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("wildcard: %v", r.header)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{MaxBodyBytes: -1},
		{HeartbeatInterval: -1},
		{AllowedOrigins: []string{"shop.example"}},
		{AllowedOrigins: []string{"https://shop.example/path"}},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	ok := Config{AllowedOrigins: []string{"*", "https://a.example", "http://localhost:3000"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Config{}.withDefaults()
	if d.MaxBodyBytes != 1<<20 || d.HeartbeatInterval.Seconds() != 15 || d.TicketTTL.Seconds() != 60 {
		t.Fatalf("defaults %+v", d)
	}
}

// TestLogsKeepSecrets: the access log has the route pattern, never the
// token, a ticket, ids from the path or a message text.
func TestLogsKeepSecrets(t *testing.T) {
	e := newEnv(t)
	token := "very-secret-token-value"
	chat, _ := e.startChat(token)
	expect(t, e.do("POST", "/v1/chats/"+chat+"/messages", token, `{"text":"my private words"}`), 201, "")
	tk := expect(t, e.do("POST", "/v1/tickets", token, nil), 200, "")["ticket"].(string)
	s := e.openStream("/v1/events?ticket="+tk, "")
	s.waitEvent("connected")
	s.close()
	expect(t, e.do("GET", "/v1/session", "expired:"+token, nil), 401, CodeAuthentication)

	access := 0
	for _, entry := range e.logs.All() {
		var b strings.Builder
		b.WriteString(entry.Message)
		for k, v := range entry.ContextMap() {
			b.WriteString(" " + k + "=")
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "\t", " "))
		}
		line := b.String()
		if strings.Contains(line, token) || strings.Contains(line, tk) {
			t.Errorf("log carries a secret: %s", line)
		}
		if entry.Level >= zapcore.InfoLevel && strings.Contains(line, "my private words") {
			t.Errorf("info log carries a message text: %s", line)
		}
		if entry.Message == "http request" {
			access++
			if r, _ := entry.ContextMap()["route"].(string); strings.Contains(r, chat) {
				t.Errorf("route label with an id: %s", r)
			}
		}
	}
	if access < 4 {
		t.Fatalf("%d access log lines", access)
	}
}

func fmtAny(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	default:
		b, _ := yaml.Marshal(v)
		return string(b)
	}
}

// TestRoutesMatchSpec: every route of the router is in api/openapi.yaml
// with its method, and every operation of the document is routed.
func TestRoutesMatchSpec(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	var spec []string
	for path, item := range doc.Paths {
		for m := range item {
			if methods[m] {
				spec = append(spec, strings.ToUpper(m)+" "+path)
			}
		}
	}

	s := New(Config{}, nil, nil, nil)
	var routed []string
	err := chi.Walk(s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(spec)
	sort.Strings(routed)
	for _, r := range routed {
		if !slices.Contains(spec, r) {
			t.Errorf("routed but not in openapi.yaml: %s", r)
		}
	}
	for _, o := range spec {
		if !slices.Contains(routed, o) {
			t.Errorf("in openapi.yaml but not routed: %s", o)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes: %v", len(routed), routed)
	}

	// every $ref resolves
	var tree any
	_ = yaml.Unmarshal(api.OpenAPI, &tree)
	var check func(v any)
	check = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" {
					if !resolves(tree, ref) {
						t.Errorf("unresolved $ref %s", ref)
					}
				}
				check(x)
			}
		case []any:
			for _, x := range v {
				check(x)
			}
		}
	}
	check(tree)
}

func resolves(tree any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	cur := tree
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
