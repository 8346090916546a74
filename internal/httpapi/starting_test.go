package httpapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStartingCORS: the answers of a gateway whose engine is not reachable
// yet (Starting) carry the CORS headers of the configured origins, as the
// Server's do, so that a browser reads the 503 and its Retry-After; a
// preflight is answered; a foreign origin gets none; no origins configured,
// no CORS headers at all.
func TestStartingCORS(t *testing.T) {
	h := Starting(Config{RetryHint: 2 * time.Second, AllowedOrigins: []string{"https://shop.example"}})
	serve := func(h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for _, kv := range headers {
			k, v, _ := strings.Cut(kv, ": ")
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	for _, path := range []string{"/v1/session", "/readyz", "/v1/events"} {
		w := serve(h, "GET", path, "Origin: https://shop.example", "Authorization: Bearer tok")
		hd := w.Header()
		if w.Code != http.StatusServiceUnavailable || hd.Get("Retry-After") != "2" {
			t.Errorf("%s: %d, Retry-After %q", path, w.Code, hd.Get("Retry-After"))
		}
		if hd.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			!strings.Contains(hd.Get("Access-Control-Expose-Headers"), "Retry-After") ||
			!slices.Contains(hd.Values("Vary"), "Origin") {
			t.Errorf("%s: CORS headers %v", path, hd)
		}
	}
	if w := serve(h, "GET", "/healthz", "Origin: https://shop.example"); w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("healthz: %d %v", w.Code, w.Header())
	}

	w := serve(h, "OPTIONS", "/v1/chats", "Origin: https://shop.example", "Access-Control-Request-Method: POST")
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", w.Code, w.Header())
	}

	w = serve(h, "GET", "/v1/session", "Origin: https://evil.example")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: %d %v", w.Code, w.Header())
	}

	w = serve(Starting(Config{}), "GET", "/v1/session", "Origin: https://shop.example")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "3" || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "" {
		t.Errorf("no origins configured: %d %v", w.Code, w.Header())
	}
}
