package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWidgetAssets(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype, cache, contains string
	}{
		{"/", typeHTML, "no-cache", `data-testid="messages"`},
		{"/index.html", typeHTML, "no-cache", `<script src="app.js" defer>`},
		{"/index.html", typeHTML, "no-cache", `<script src="customer-sdk.js" defer>`},
		{"/app.js", typeJS, "no-cache", "ChatioGatewaySDK.init"},
		{"/customer-sdk.js", typeJS, "no-cache", "var ChatioGatewaySDK"},
		{"/style.css", typeCSS, "no-cache", ".msg.me"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path)
			b := body(t, res)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self';", "base-uri 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows unsafe sources", csp)
			}
		})
	}
}

func TestWidgetCSPAllowsAPIOrigin(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		api, want string // want "" → only 'self'
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://Chat.Example.com/", "https://chat.example.com"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"javascript:alert(1)", ""},
		{"http://evil.example; script-src *", ""},
		{"http://host/path", ""},
		{"http://user@host", ""},
		{"http://host?x=1", ""},
		{"ftp://host", ""},
		{"//host", ""},
	} {
		res := get(t, h, http.MethodGet, "/?api="+url.QueryEscape(tc.api))
		csp := res.Header.Get("Content-Security-Policy")
		want := "connect-src 'self';"
		if tc.want != "" {
			want = "connect-src 'self' " + tc.want + ";"
		}
		if !strings.Contains(csp, want) {
			t.Errorf("api=%q: CSP %q lacks %q", tc.api, csp, want)
		}
	}
}

func TestDocs(t *testing.T) {
	h := DocsHandler()
	for _, p := range []string{"/docs", "/docs/", "/docs/index.html"} {
		res := get(t, h, http.MethodGet, p)
		b := body(t, res)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != typeHTML {
			t.Fatalf("%s: status %d, type %q", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
		for _, want := range []string{`spec-url="/openapi.yaml"`, `src="/docs/redoc.standalone.js"`} {
			if !strings.Contains(b, want) {
				t.Errorf("%s lacks %q", p, want)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self';") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}

	res := get(t, h, http.MethodGet, "/docs/redoc.standalone.js")
	b := body(t, res)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != typeJS || len(b) < 100_000 || !strings.Contains(b, "Redoc") {
		t.Fatalf("bundle: status %d, type %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(b))
	}
	for _, p := range []string{"/docs/LICENSE", "/docs/NOTICE", "/docs/redoc.standalone.js.LICENSE.txt"} {
		res := get(t, h, http.MethodGet, p)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != typeText {
			t.Errorf("%s: status %d, type %q", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}

	// Mounted under http.StripPrefix("/docs", …) it serves the same.
	sp := http.StripPrefix("/docs", h)
	for _, p := range []string{"/docs", "/docs/", "/docs/redoc.standalone.js"} {
		if res := get(t, sp, http.MethodGet, p); res.StatusCode != http.StatusOK {
			t.Errorf("stripped %s: status %d", p, res.StatusCode)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	for _, tc := range []struct {
		h            http.Handler
		method, path string
		status       int
	}{
		{Handler(), http.MethodGet, "/nope", http.StatusNotFound},
		{Handler(), http.MethodGet, "/docs", http.StatusNotFound},
		{Handler(), http.MethodGet, "/static/app.js", http.StatusNotFound},
		{Handler(), http.MethodGet, "/app.js/", http.StatusNotFound},
		{Handler(), http.MethodPost, "/", http.StatusMethodNotAllowed},
		{Handler(), http.MethodHead, "/app.js", http.StatusOK},
		{DocsHandler(), http.MethodGet, "/docs/nope.js", http.StatusNotFound},
		{DocsHandler(), http.MethodGet, "/docsx", http.StatusNotFound},
		{DocsHandler(), http.MethodGet, "/docs/redoc.standalone.js.map", http.StatusNotFound},
		{DocsHandler(), http.MethodDelete, "/docs", http.StatusMethodNotAllowed},
	} {
		res := get(t, tc.h, tc.method, tc.path)
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
		}
		if tc.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, res.Header.Get("Allow"))
		}
	}
}

func TestConditionalGet(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodGet, "/app.js")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res := get(t, h, http.MethodGet, "/app.js", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d, want 304", res.StatusCode)
	}
}

func TestEmbeddedFilesNonEmpty(t *testing.T) {
	want := map[string]bool{
		"static/index.html": true, "static/app.js": true, "static/customer-sdk.js": true, "static/style.css": true,
		"static/docs/index.html": true, "static/docs/redoc.standalone.js": true,
		"static/docs/redoc.standalone.js.LICENSE.txt": true, "static/docs/LICENSE": true, "static/docs/NOTICE": true,
	}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", p)
		}
		delete(want, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		t.Errorf("%s is not embedded", p)
	}
}

// The widget's markup must keep the hooks the browser tests drive.
func TestWidgetTestIDs(t *testing.T) {
	b := body(t, get(t, Handler(), http.MethodGet, "/"))
	for _, id := range []string{"messages", "message-input", "send-button", "file-input", "upload-progress",
		"connection-status", "typing-indicator", "sneak-peek-hint", "load-older", "error"} {
		if !strings.Contains(b, `data-testid="`+id+`"`) {
			t.Errorf("index.html lacks data-testid=%q", id)
		}
	}
	for _, want := range []string{`aria-live="polite"`, `role="status"`, "<main", "<header", "<footer", `<label for="message"`} {
		if !strings.Contains(b, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}
