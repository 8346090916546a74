package httpapi

import (
	"strings"
	"testing"
)

// TestHeadProbes: HEAD /healthz and HEAD /readyz answer as GET does,
// without a body.
func TestHeadProbes(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		r := e.do("HEAD", p, "", nil)
		if r.status != 200 || len(r.body) != 0 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("HEAD %s: %d %q %v", p, r.status, r.body, r.header)
		}
	}
	e.api.SetDraining()
	r := e.do("HEAD", "/readyz", "", nil)
	if r.status != 503 || len(r.body) != 0 || r.header.Get("Retry-After") != "3" {
		t.Errorf("HEAD /readyz draining: %d %q %v", r.status, r.body, r.header)
	}
	if r := e.do("HEAD", "/healthz", "", nil); r.status != 200 {
		t.Errorf("HEAD /healthz draining: %d", r.status)
	}
}

// TestNotFoundAndMethodNotAllowed: 404 and 405 are REQUEST_FAILED with a
// type, a 405 says in Allow what the path takes.
func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, rq := range [][2]string{{"GET", "/nope"}, {"GET", "/v1/nope"}, {"POST", "/v1/chats/C/nope"}, {"PROPFIND", "/nope"}} {
		m := expect(t, e.do(rq[0], rq[1], "tok", nil), 404, CodeRequestFailed)
		if m["type"] != "not_found" {
			t.Errorf("%s %s: type %v", rq[0], rq[1], m["type"])
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/healthz", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
		{"PUT", "/metrics", "GET"},
		{"POST", "/v1/session", "GET, DELETE"},
		{"PROPFIND", "/v1/chats", "GET, POST"},
		{"DELETE", "/v1/chats/C/properties", "PATCH"},
		{"POST", "/v1/events", "GET"},
	} {
		r := e.do(tc.method, tc.path, "tok", nil)
		m := expect(t, r, 405, CodeRequestFailed)
		if m["type"] != "method_not_allowed" || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: type %v, Allow %q, want %q", tc.method, tc.path, m["type"], r.header.Get("Allow"), tc.allow)
		}
	}
	if n := e.pool.Len(); n != 0 {
		t.Fatalf("%d sessions opened by refused requests", n)
	}
}
