package httpapi

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	dto "github.com/prometheus/client_model/go"
)

// labelValues is every value of label among the series of the metric name
// in e's registry.
func (e *env) labelValues(name, label string) []string {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var vals []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && !slices.Contains(vals, lp.GetValue()) {
					vals = append(vals, lp.GetValue())
				}
			}
		}
	}
	return vals
}

// series is the number of series of the metric name.
func (e *env) series(name string) int {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestMetricLabelsClosed: whatever methods and paths clients send, the
// request metrics' labels take their values from closed sets: an invented
// method is "other", a path no route has is "unmatched".
func TestMetricLabelsClosed(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	expect(t, e.do("POST", "/v1/chats/"+chat+"/messages", "tok", `{"text":"hi"}`), 201, "")
	expect(t, e.do("GET", "/v1/chats/"+chat+"/history", "tok", nil), 200, "")
	expect(t, e.do("POST", "/v1/chats/"+chat+"/rating", "tok", `{"value":"good"}`), 200, "")
	expect(t, e.do("DELETE", "/v1/session", "tok", nil), 204, "")
	for i := range 40 {
		n := strconv.Itoa(i)
		e.do("INVENTED"+n, "/healthz", "tok", nil)
		e.do("INVENTED"+n, "/v1/chats/"+n, "tok", nil)
		e.do("GET", "/nope/"+n, "", nil)
		e.do("GET", "/v1/nope/"+n, "", nil)
		e.do("POST", "/v1/chats/"+n+"/nope", "", nil)
	}
	e.do("OPTIONS", "/v1/chats", "", nil, "Origin: https://shop.example", "Access-Control-Request-Method: POST")

	routes := []string{"unmatched", "cors_preflight"}
	_ = chi.Walk(e.api.router, func(_, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, route)
		return nil
	})
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other"}
	for _, name := range []string{"gateway_http_requests_total", "gateway_http_request_duration_seconds"} {
		for _, v := range e.labelValues(name, "method") {
			if !slices.Contains(methods, v) {
				t.Errorf("%s: method label %q", name, v)
			}
		}
		for _, v := range e.labelValues(name, "route") {
			if !slices.Contains(routes, v) {
				t.Errorf("%s: route label %q", name, v)
			}
		}
	}
	for _, v := range e.labelValues("gateway_http_requests_total", "code") {
		if n, err := strconv.Atoi(v); err != nil || n < 100 || n > 599 {
			t.Errorf("code label %q", v)
		}
	}
	for _, want := range []string{"other", "GET", "POST", "DELETE"} {
		if !slices.Contains(e.labelValues("gateway_http_requests_total", "method"), want) {
			t.Errorf("no method label %q", want)
		}
	}
	for _, want := range []string{"unmatched", "cors_preflight", "/v1/chats/{chat}/messages"} {
		if !slices.Contains(e.labelValues("gateway_http_requests_total", "route"), want) {
			t.Errorf("no route label %q", want)
		}
	}
	// 200 requests with invented methods and paths: a few series, not hundreds
	if n := e.series("gateway_http_requests_total"); n > 20 {
		t.Errorf("%d request series", n)
	}
	for _, v := range e.labelValues("gateway_upstream_calls_total", "action") {
		if !slices.Contains(upstreamActions, v) {
			t.Errorf("upstream action %q is not in upstreamActions", v)
		}
	}
}

// TestMethodLabel: the standard methods are themselves, anything else one
// value.
func TestMethodLabel(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
		if got := methodLabel(m); got != m {
			t.Errorf("%s → %s", m, got)
		}
	}
	for _, m := range []string{"get", "PROPFIND", "BREW", "", strings.Repeat("X", 1000)} {
		if got := methodLabel(m); got != "other" {
			t.Errorf("%q → %s", m, got)
		}
	}
	if codeLabel(200) != "200" || codeLabel(999) != "other" || codeLabel(0) != "other" {
		t.Error("codeLabel")
	}
}

// TestDocumentedMetricsAtStart: every reason and outcome README.md's
// metrics table lists is a series of its metric before anything happened.
func TestDocumentedMetricsAtStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]*dto.MetricFamily)
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	has := func(name, label, value string) bool {
		for _, m := range byName[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return true
				}
			}
		}
		return false
	}
	row := regexp.MustCompile("^\\| `(gateway_[a-z_]+)` \\| [a-z]+ \\| ([^|]*) \\|")
	enum := regexp.MustCompile("`(reason|outcome)`: ((?:`[a-z_]+`(?:, )?)+)")
	value := regexp.MustCompile("`([a-z_]+)`")
	checked := 0
	for _, line := range strings.Split(string(readme), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		for _, em := range enum.FindAllStringSubmatch(m[2], -1) {
			for _, v := range value.FindAllStringSubmatch(em[2], -1) {
				checked++
				if !has(name, em[1], v[1]) {
					t.Errorf("%s{%s=%q} is not there at start", name, em[1], v[1])
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d documented label values found: has the README's metrics table changed form?", checked)
	}
	for _, a := range upstreamActions {
		if !has("gateway_upstream_calls_total", "action", a) {
			t.Errorf("upstream action %s is not there at start", a)
		}
	}
}
