// Package web serves the gateway's browser assets, all embedded in the
// binary so that nothing is fetched at run time:
//
//   - Handler: the demo customer chat widget (static/index.html, app.js,
//     style.css) at "/". The widget is written against the SDK's API of
//     @chatio-gateway/customer-sdk (clients/js), whose browser build is
//     static/customer-sdk.js (generated: scripts/check-js-client.sh
//     --update writes it, and the test command checks it is current); it
//     has no REST or SSE code of its own. It uses the gateway as a page on
//     another origin would: with
//     ?api=http://host:port it talks to a gateway on that origin (which
//     must allow the page's origin through CORS), else to its own origin.
//     ?token=T picks the customer token; without it the page makes up one
//     per browser and keeps it in localStorage.
//   - DocsHandler: the API reference at "/docs", ReDoc (static/docs, see
//     its NOTICE) rendering the gateway's /openapi.yaml.
//
// Mount them on the router, e.g. with chi:
//
//	r.Handle("/docs", web.DocsHandler())
//	r.Handle("/docs/*", web.DocsHandler())
//	r.Handle("/*", web.Handler())
//
// Both answer GET and HEAD with ETags (a matching If-None-Match gets 304),
// nosniff, no-referrer and a Content-Security-Policy; unknown paths get 404,
// other methods 405. The widget's policy allows scripts and styles from its
// own origin only, and fetch/EventSource/XHR to its own origin plus the
// ?api origin of the page's URL (validated, reflected only when it is a
// plain http(s) origin). It does not forbid framing: a chat widget often
// lives in an iframe. The docs' policy adds inline styles (ReDoc injects
// them) and blob: workers (its search index), allows no remote images (so
// ReDoc's Redocly logo, its one run-time fetch, is blocked and logged) and
// forbids framing elsewhere.
//
// The handlers hold only immutable data and are safe for concurrent use.
package web
