// Package browsertest drives the demo chat widget (package web) in a real,
// headless Chromium against a whole gateway in the test process: the
// chat.io simulator with its demo agent bot, a session pool and the HTTP
// API, all on 127.0.0.1. It has no non-test code; the test is
// TestWidgetInBrowser (browser_test.go), driven with chromedp.
//
// What it checks, in one browser:
//
//   - the widget served by the gateway: connects, sends a message, shows
//     the demo agent's typing indicator and answer, uploads a file through
//     the file input (progress bar up to 100 %, then a file message);
//   - the upstream going away (every simulator socket dropped, new ones
//     refused for about a second): the connection status goes to
//     "reconnecting", then "restored", and agent messages sent during and
//     after the outage show up exactly once;
//   - the widget served from another origin (a second server on another
//     port, ?api= pointing at the gateway): CORS and the package's
//     streaming fetch (the token in the Authorization header, never in a
//     URL) work across origins, also after the gateway cuts the browser's
//     streams (the stream resumes with Last-Event-ID).
//
// The widget is written against @chatio-gateway/customer-sdk (clients/js):
// the test checks its streams by wrapping the page's fetch.
//
// The browser is Debian's chromium at /usr/bin/chromium, started with the
// flags this project's machines need (headless, no sandbox, no GPU, no
// QUIC, no background networking, a fresh profile directory). Without it
// the test skips, unless CHATIO_REQUIRE_BROWSER=1 (scripts/test.sh sets it
// after installing chromium), which makes a missing browser a failure.
//
// Screenshots go to $BROWSER_ARTIFACTS when set (scripts/test.sh points it
// at artifacts/browser/), else to the test's temporary directory; their
// paths are logged. On a failure every open tab is captured as well.
package browsertest
