package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// The policies. The widget's connect-src gets the ?api origin between head
// and tail (see widgetCSP); its images are chat files, served by the chat
// platform from anywhere. The docs' img-src also keeps ReDoc from fetching
// its sidebar logo from a CDN (the browser logs that block once).
const (
	widgetCSPHead = "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data: blob: http: https:; connect-src 'self'"
	widgetCSPTail = "; base-uri 'none'; form-action 'self'"

	docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
		"worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)

const (
	typeHTML = "text/html; charset=utf-8"
	typeJS   = "text/javascript; charset=utf-8"
	typeCSS  = "text/css; charset=utf-8"
	typeText = "text/plain; charset=utf-8"
)

// asset is one embedded file ready to serve. Immutable.
type asset struct {
	body  []byte
	ctype string
	cache string // Cache-Control
	etag  string
}

// site serves a fixed set of assets by request path. Immutable.
type site struct {
	prefix string // "" or the path prefix every asset path starts with
	assets map[string]*asset
	csp    func(r *http.Request) string
}

// Handler serves the demo chat widget: "/" (and "/index.html"), "/app.js"
// and "/style.css". Everything is revalidated on each load (no-cache with
// an ETag), so a new binary's widget is picked up at once.
func Handler() http.Handler {
	index := load("static/index.html", typeHTML, "no-cache")
	return &site{
		assets: map[string]*asset{
			"/":           index,
			"/index.html": index,
			"/app.js":     load("static/app.js", typeJS, "no-cache"),
			// The browser build of clients/js (scripts/check-js-client.sh
			// checks that it is the current one).
			"/customer-sdk.js": load("static/customer-sdk.js", typeJS, "no-cache"),
			"/style.css":       load("static/style.css", typeCSS, "no-cache"),
		},
		csp: widgetCSP,
	}
}

// DocsHandler serves the API reference: "/docs" and "/docs/" (the page),
// the ReDoc bundle and its license files under "/docs/". It works mounted
// with or without the "/docs" prefix stripped. The page loads the
// gateway's "/openapi.yaml".
func DocsHandler() http.Handler {
	index := load("static/docs/index.html", typeHTML, "no-cache")
	const day = "public, max-age=86400"
	return &site{
		prefix: "/docs",
		assets: map[string]*asset{
			"/docs":                                 index,
			"/docs/":                                index,
			"/docs/index.html":                      index,
			"/docs/redoc.standalone.js":             load("static/docs/redoc.standalone.js", typeJS, day),
			"/docs/redoc.standalone.js.LICENSE.txt": load("static/docs/redoc.standalone.js.LICENSE.txt", typeText, day),
			"/docs/LICENSE":                         load("static/docs/LICENSE", typeText, day),
			"/docs/NOTICE":                          load("static/docs/NOTICE", typeText, day),
		},
		csp: func(*http.Request) string { return docsCSP },
	}
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if s.prefix != "" && p != s.prefix && !strings.HasPrefix(p, s.prefix+"/") {
		p = s.prefix + p // mounted under http.StripPrefix
	}
	a := s.assets[p]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", a.cache)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", s.csp(r))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// widgetCSP lets the page connect to its own origin and to the ?api origin
// of its URL.
func widgetCSP(r *http.Request) string {
	if o, ok := apiOrigin(r.URL.Query().Get("api")); ok {
		return widgetCSPHead + " " + o + widgetCSPTail
	}
	return widgetCSPHead + widgetCSPTail
}

// apiOrigin returns raw as "scheme://host[:port]" when it is a plain http(s)
// origin (an optional trailing "/" aside), nothing else: what it returns
// goes into a header, so every character is checked.
func apiOrigin(raw string) (string, bool) {
	if raw == "" || len(raw) > 256 {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", false
	}
	for _, c := range u.Host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']'
		if !ok {
			return "", false
		}
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

// load reads an embedded file; a missing one is a build mistake.
func load(name, ctype, cache string) *asset {
	b, err := static.ReadFile(name)
	if err != nil {
		panic("web: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return &asset{body: b, ctype: ctype, cache: cache, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}
