package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/chatio-gateway/chatio-gateway/api"
)

// This file holds every response of the e2e tests to api/openapi.yaml:
// apiValidatingClient's transport looks up the operation of each request
// (method + path template), the response the spec gives for its status and
// content type, checks declared required headers, and validates the JSON
// body against the response's schema (JSON Schema 2020-12, the dialect of
// OpenAPI 3.1, with santhosh-tekuri/jsonschema). An event stream is checked
// message by message as the test reads it: each message's data against
// components.schemas.StreamEvent_<event name> (StreamMessage for names the
// spec does not list), and ids must rise strictly. A route, method, status
// or content type the spec does not have is a failure too, except the
// answers the spec gives for those: a 404 on a path it does not list is held
// to components.responses.RouteNotFound, a 405 for a method it does not list
// on a path it lists to components.responses.MethodNotAllowed. The answer to
// a HEAD request has no body to check.

// apiSchemaDoc is the URL under which the spec is given to the compiler.
const apiSchemaDoc = "mem:///openapi.json"

// apiReporter receives validation failures; testing.TB is one.
type apiReporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// apiSpec is api/openapi.yaml ready for validation. Safe for concurrent use.
type apiSpec struct {
	doc    map[string]any // the document as JSON values (immutable)
	routes []apiRoute     // immutable: literal routes first

	mu       sync.Mutex
	compiler *jsonschema.Compiler          // guarded by mu
	schemas  map[string]*jsonschema.Schema // guarded by mu: by JSON pointer
}

// apiRoute is one path of the spec.
type apiRoute struct {
	template string   // "/v1/chats/{chat}/threads"
	segs     []string // its segments; "{x}" matches any one non-empty segment
	params   int      // how many segments are parameters
}

var apiSpecLoad = sync.OnceValues(func() (*apiSpec, error) { return apiNewSpec(api.OpenAPI) })

// apiLoadSpec returns the embedded spec, compiled once per test binary.
func apiLoadSpec(t testing.TB) *apiSpec {
	t.Helper()
	s, err := apiSpecLoad()
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	return s
}

// apiNewSpec parses an OpenAPI 3.1 document in YAML.
func apiNewSpec(yamlDoc []byte) (*apiSpec, error) {
	var raw any
	if err := yaml.Unmarshal(yamlDoc, &raw); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	js, err := json.Marshal(apiJSONValue(raw))
	if err != nil {
		return nil, fmt.Errorf("to JSON: %w", err)
	}
	// jsonschema wants its own decoding (json.Number for numbers).
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("the document is not an object")
	}
	if v, _ := m["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("openapi %q: want 3.1", v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(apiSchemaDoc, doc); err != nil {
		return nil, err
	}
	s := &apiSpec{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}}
	paths, _ := m["paths"].(map[string]any)
	for tmpl := range paths {
		r := apiRoute{template: tmpl, segs: strings.Split(tmpl, "/")}
		for _, seg := range r.segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				r.params++
			}
		}
		s.routes = append(s.routes, r)
	}
	// OpenAPI: concrete paths match before templated ones.
	sort.Slice(s.routes, func(i, j int) bool {
		a, b := s.routes[i], s.routes[j]
		if a.params != b.params {
			return a.params < b.params
		}
		return a.template < b.template
	})
	return s, nil
}

// apiJSONValue turns a YAML-decoded value into JSON-encodable values.
func apiJSONValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = apiJSONValue(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(k)] = apiJSONValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = apiJSONValue(x)
		}
		return out
	}
	return v
}

// apiPtrEscape escapes one JSON-pointer token.
func apiPtrEscape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// lookup returns the value at a JSON pointer ("/a/b", "/a/0").
func (s *apiSpec) lookup(ptr string) (any, bool) {
	var v any = s.doc
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// deref follows a local $ref object ({"$ref": "#/..."}) to what it names,
// returning the value and its pointer.
func (s *apiSpec) deref(ptr string) (map[string]any, string, error) {
	for range 16 {
		v, ok := s.lookup(ptr)
		if !ok {
			return nil, ptr, fmt.Errorf("nothing at #%s", ptr)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ptr, fmt.Errorf("#%s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, ptr, fmt.Errorf("#%s: only local refs are supported, got %q", ptr, ref)
		}
		ptr = strings.TrimPrefix(ref, "#")
	}
	return nil, ptr, fmt.Errorf("#%s: $ref loop", ptr)
}

// schema compiles (once) the schema at a JSON pointer of the document.
func (s *apiSpec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[ptr]; ok {
		return sch, nil
	}
	// The pointer goes into a URL fragment: percent-encode what a fragment
	// cannot hold ({, } of path templates…); the compiler decodes it.
	frag := (&url.URL{Fragment: ptr}).EscapedFragment()
	sch, err := s.compiler.Compile(apiSchemaDoc + "#" + frag)
	if err != nil {
		return nil, fmt.Errorf("compile #%s: %w", ptr, err)
	}
	s.schemas[ptr] = sch
	return sch, nil
}

// hasSchema tells whether components.schemas has name.
func (s *apiSpec) hasSchema(name string) bool {
	_, ok := s.lookup("/components/schemas/" + apiPtrEscape(name))
	return ok
}

// route finds the path template of an (escaped) request path.
func (s *apiSpec) route(escapedPath string) (string, bool) {
	segs := strings.Split(escapedPath, "/")
	for _, r := range s.routes {
		if len(r.segs) != len(segs) {
			continue
		}
		ok := true
		for i, seg := range r.segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				if segs[i] == "" {
					ok = false
					break
				}
				continue
			}
			if seg != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return r.template, true
		}
	}
	return "", false
}

// apiExpectation is what the spec says about one response.
type apiExpectation struct {
	where     string // "GET /v1/chats/{chat} 200 application/json", for messages
	mediaType string // the content key matched; "" when the spec gives no content
	schemaPtr string // JSON pointer of the body's schema; "" when none
}

// The responses the spec gives for requests outside its paths and methods.
const (
	apiRouteNotFound    = "/components/responses/RouteNotFound"
	apiMethodNotAllowed = "/components/responses/MethodNotAllowed"
)

// expect finds the spec's response for (method, path, status, content type)
// and checks the headers it declares.
func (s *apiSpec) expect(method string, u *url.URL, status int, h http.Header) (apiExpectation, error) {
	exp := apiExpectation{where: fmt.Sprintf("%s %s → %d", method, u.EscapedPath(), status)}
	tmpl, ok := s.route(u.EscapedPath())
	if !ok {
		if status == http.StatusNotFound {
			exp.where += " (RouteNotFound)"
			return s.expectResponse(exp, apiRouteNotFound, h)
		}
		return exp, errors.New("no path of the spec matches")
	}
	opPtr := "/paths/" + apiPtrEscape(tmpl) + "/" + strings.ToLower(method)
	exp.where = fmt.Sprintf("%s %s → %d", method, tmpl, status)
	if _, ok := s.lookup(opPtr); !ok {
		if status == http.StatusMethodNotAllowed {
			exp.where += " (MethodNotAllowed)"
			return s.expectResponse(exp, apiMethodNotAllowed, h)
		}
		return exp, fmt.Errorf("the spec has no %s on %s", method, tmpl)
	}
	code := strconv.Itoa(status)
	var respPtr string
	for _, k := range []string{code, code[:1] + "XX", "default"} {
		p := opPtr + "/responses/" + k
		if _, ok := s.lookup(p); ok {
			respPtr = p
			break
		}
	}
	if respPtr == "" {
		return exp, fmt.Errorf("status %d is not a response of the operation", status)
	}
	return s.expectResponse(exp, respPtr, h)
}

// expectResponse checks the headers of the response object at respPtr and
// finds its content for the answer's content type.
func (s *apiSpec) expectResponse(exp apiExpectation, respPtr string, h http.Header) (apiExpectation, error) {
	resp, respPtr, err := s.deref(respPtr)
	if err != nil {
		return exp, err
	}
	if err := s.checkHeaders(respPtr, resp, h); err != nil {
		return exp, err
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return exp, nil
	}
	ct := h.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return exp, fmt.Errorf("content type %q: %v", ct, err)
	}
	major, _, _ := strings.Cut(mt, "/")
	for _, k := range []string{mt, major + "/*", "*/*"} {
		if _, ok := content[k]; ok {
			exp.mediaType = k
			break
		}
	}
	if exp.mediaType == "" {
		keys := make([]string, 0, len(content))
		for k := range content {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return exp, fmt.Errorf("content type %q is not one of %v", mt, keys)
	}
	exp.where += " " + exp.mediaType
	mtPtr := respPtr + "/content/" + apiPtrEscape(exp.mediaType)
	if _, ok := s.lookup(mtPtr + "/schema"); ok {
		exp.schemaPtr = mtPtr + "/schema"
	}
	return exp, nil
}

// checkHeaders checks the response headers the spec declares: required
// ones must be there, and present ones must fit their schema.
func (s *apiSpec) checkHeaders(respPtr string, resp map[string]any, h http.Header) error {
	headers, _ := resp["headers"].(map[string]any)
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		hd, hdPtr, err := s.deref(respPtr + "/headers/" + apiPtrEscape(name))
		if err != nil {
			return err
		}
		vals, present := h[http.CanonicalHeaderKey(name)]
		if !present {
			if req, _ := hd["required"].(bool); req {
				return fmt.Errorf("required header %s is missing", name)
			}
			continue
		}
		if _, ok := hd["schema"]; !ok {
			continue
		}
		sch, err := s.schema(hdPtr + "/schema")
		if err != nil {
			return err
		}
		// A header value is text: a number when it reads as one (for
		// integer and number schemas), else a string.
		var v any = vals[0]
		if n, err := jsonschema.UnmarshalJSON(strings.NewReader(vals[0])); err == nil {
			if _, ok := n.(json.Number); ok {
				v = n
			}
		}
		if err := sch.Validate(v); err != nil {
			return fmt.Errorf("header %s: %q: %v", name, vals[0], err)
		}
	}
	return nil
}

// validateJSON validates a JSON text against the schema at ptr.
func (s *apiSpec) validateJSON(ptr string, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %v: %.200q", err, body)
	}
	return s.validateValue(ptr, v)
}

func (s *apiSpec) validateValue(ptr string, v any) error {
	sch, err := s.schema(ptr)
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return err
	}
	return nil
}

// checkBody validates a whole response body (not a stream).
func (s *apiSpec) checkBody(exp apiExpectation, body []byte) error {
	switch {
	case exp.mediaType == "":
		if len(body) > 0 {
			return fmt.Errorf("the spec gives no content, got %d bytes: %.200q", len(body), body)
		}
	case exp.schemaPtr == "":
	case apiIsJSON(exp.mediaType):
		return s.validateJSON(exp.schemaPtr, body)
	}
	return nil
}

func apiIsJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// checkStreamMessage validates one decoded event-stream message.
func (s *apiSpec) checkStreamMessage(m sseMessage) error {
	if m.Event == "" {
		if m.Data != "" {
			return fmt.Errorf("message without event name: %.200q", m.Data)
		}
		return nil // a retry hint alone
	}
	data, err := jsonschema.UnmarshalJSON(strings.NewReader(m.Data))
	if err != nil {
		return fmt.Errorf("event %s: data is not JSON: %v: %.200q", m.Event, err, m.Data)
	}
	inst := map[string]any{"event": m.Event, "data": data}
	if m.ID != "" {
		inst["id"] = m.ID
	}
	name := "StreamMessage"
	if s.hasSchema("StreamEvent_" + m.Event) {
		name = "StreamEvent_" + m.Event
	}
	if err := s.validateValue("/components/schemas/"+apiPtrEscape(name), inst); err != nil {
		return fmt.Errorf("event %s (schema %s): %v\ndata: %.500s", m.Event, name, err, m.Data)
	}
	return nil
}

// ---- the HTTP client ----

// apiValidator is an http.RoundTripper that holds every response to the
// spec and reports what does not fit.
type apiValidator struct {
	spec *apiSpec
	next http.RoundTripper
	rep  apiReporter
}

// apiValidatingClient is an HTTP client whose every response (and every
// event-stream message read through it) is validated against
// api/openapi.yaml; failures are t.Errorf.
func apiValidatingClient(t testing.TB) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: &apiValidator{spec: apiLoadSpec(t), next: tr, rep: t}}
}

func (v *apiValidator) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	exp, err := v.spec.expect(req.Method, req.URL, resp.StatusCode, resp.Header)
	if err != nil {
		v.rep.Errorf("openapi: %s: %v", exp.where, err)
		return resp, nil
	}
	if req.Method == http.MethodHead {
		return resp, nil // no body, whatever the content type says
	}
	if exp.mediaType == "text/event-stream" {
		resp.Body = &apiStreamChecker{body: resp.Body, spec: v.spec, rep: v.rep, where: exp.where}
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return nil, rerr
	}
	if err := v.spec.checkBody(exp, body); err != nil {
		v.rep.Errorf("openapi: %s: %v", exp.where, err)
	}
	return resp, nil
}

// apiStreamChecker passes an event stream through, parsing it on the way
// and validating each complete message.
type apiStreamChecker struct {
	body  io.ReadCloser
	spec  *apiSpec
	rep   apiReporter
	where string

	// owned by the reading goroutine
	line   []byte     // the partial line so far
	msg    sseMessage // the message being built
	data   []string
	lastID uint64
	hasID  bool
}

func (c *apiStreamChecker) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	c.feed(p[:n])
	return n, err
}

func (c *apiStreamChecker) Close() error { return c.body.Close() }

func (c *apiStreamChecker) feed(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.line = append(c.line, b...)
			return
		}
		c.line = append(c.line, b[:i]...)
		b = b[i+1:]
		c.onLine(string(bytes.TrimSuffix(c.line, []byte("\r"))))
		c.line = c.line[:0]
	}
}

func (c *apiStreamChecker) onLine(line string) {
	if line == "" {
		if c.msg.Event != "" || len(c.data) > 0 || c.msg.ID != "" || c.msg.Retry != "" {
			c.msg.Data = strings.Join(c.data, "\n")
			c.check(c.msg)
		}
		c.msg, c.data = sseMessage{}, nil
		return
	}
	if strings.HasPrefix(line, ":") {
		return
	}
	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch field {
	case "id":
		c.msg.ID = value
	case "event":
		c.msg.Event = value
	case "data":
		c.data = append(c.data, value)
	case "retry":
		c.msg.Retry = value
	default:
		c.rep.Errorf("openapi: %s: unknown stream field %q", c.where, line)
	}
}

func (c *apiStreamChecker) check(m sseMessage) {
	if m.Retry != "" {
		if _, err := strconv.ParseUint(m.Retry, 10, 32); err != nil {
			c.rep.Errorf("openapi: %s: retry %q is not a number of milliseconds", c.where, m.Retry)
		}
	}
	if err := c.spec.checkStreamMessage(m); err != nil {
		c.rep.Errorf("openapi: %s: %v", c.where, err)
	}
	if m.ID == "" {
		return
	}
	id, err := strconv.ParseUint(m.ID, 10, 64)
	switch {
	case err != nil:
		c.rep.Errorf("openapi: %s: event %s: id %q is not a sequence number", c.where, m.Event, m.ID)
	case c.hasID && id <= c.lastID:
		c.rep.Errorf("openapi: %s: event %s: id %d after %d: ids must rise strictly", c.where, m.Event, id, c.lastID)
	default:
		c.lastID, c.hasID = id, true
	}
}

// apiOpenStreamWith opens GET url through client (a validating one: each
// message is checked as the stream is read) and starts reading it in its
// own goroutine.
func apiOpenStreamWith(t testing.TB, ctx context.Context, client *http.Client, url string, header http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header.Clone()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("open stream: status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("stream content type %q", ct)
	}
	s := &sseStream{resp: resp, msgs: make(chan sseMessage, 1024), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.Close)
	return s
}
