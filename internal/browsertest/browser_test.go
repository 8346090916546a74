package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/chatio-gateway/chatio-gateway/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	chromiumPath = "/usr/bin/chromium"
	requireEnv   = "CHATIO_REQUIRE_BROWSER" // "1": a missing browser fails the test
	artifactsEnv = "BROWSER_ARTIFACTS"      // where screenshots go

	testBudget = 60 * time.Second       // the whole test, browser start included
	waitMax    = 10 * time.Second       // the longest any single wait may take
	botDelay   = 300 * time.Millisecond // the demo agent's typing time
	refuseFor  = 1200 * time.Millisecond

	botName     = chatiosim.BotName // "Ada (demo agent)"
	qaAgentID   = "grace.qa@agents.chatio-sim.example"
	qaAgentName = "Grace (QA agent)"
)

// TestWidgetInBrowser chats through the demo widget in headless Chromium:
// same origin (message, typing, answer, upload), an upstream outage
// (reconnecting → restored, nothing lost, nothing twice), and the widget on
// another origin (CORS, the streaming fetch, a cut stream).
func TestWidgetInBrowser(t *testing.T) {
	requireChromium(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), testBudget)
	t.Cleanup(cancel)

	env := startEnv(t)
	b := startBrowser(t, ctx, artifactDir(t))

	// ---- 1. the widget served by the gateway ----
	const tokenA = "browsertest-same-origin"
	a := b.open(t, "same-origin")
	a.navigate(env.gw.URL + "/?token=" + url.QueryEscape(tokenA))
	a.waitFor("the stream to connect", `__bt.state() === 'connected'`)

	const hello = "Hello from a real browser"
	a.send(hello)
	a.waitFor("my message to be confirmed", mineConfirmed(hello))
	a.waitFor("the demo agent's greeting", fromAgent(botName, "I'm Ada, the demo agent"))
	a.waitFor("the demo agent's answer", fromAgent(botName, "You said: “"+hello+"”"))
	// Typing before the greeting and before the answer.
	a.waitFor("the demo agent to be shown typing twice",
		`__bt.rec.typing.filter((s) => s.includes(`+js(botName+" is typing")+`)).length >= 2`)
	a.waitFor("the typing indicator to go", `__bt.typingActive() === 'false'`)
	a.shot("01-chat")

	// ---- 2. a file through the file input ----
	const fileName = "hello-browser.txt"
	file := filepath.Join(t.TempDir(), fileName)
	if err := os.WriteFile(file, bytes.Repeat([]byte("chatio-gateway browser test\n"), 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	a.do("choosing the file", chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="file-input"]`), []string{file}))
	a.waitFor("the progress bar to reach 100 %",
		`__bt.rec.upload.includes('shown') && __bt.rec.progress.includes(100)`)
	a.shot("02-upload-progress") // the bar stays 0.8 s: usually still on screen
	a.waitFor("the file message", `__bt.msgs().some((m) => m.kind === 'me' && m.file && m.id && m.text.startsWith(`+js(fileName)+`))`)
	a.waitFor("the agent's thanks for the file", fromAgent(botName, "Thanks, I got your file."))
	a.waitFor("the progress bar to hide", `__bt.uploadHidden()`)
	a.shot("02-upload")

	// ---- 3. the upstream goes away and comes back ----
	chats := env.sim.Chats(chatiosim.CustomerIDForToken(tokenA))
	if len(chats) != 1 {
		t.Fatalf("the simulator has %d chats for the page's customer, want 1", len(chats))
	}
	chatA := chats[0].ID
	grace := env.sim.Agent(qaAgentID, qaAgentName)
	mark := a.stateMark()
	env.sim.RefuseConnections(refuseFor) // first, so that no redial gets through
	cut := time.Now()
	if n := env.sim.DropAll(); n == 0 {
		t.Fatal("DropAll cut no upstream socket")
	}
	const during, after = "Sent while the upstream was away", "Sent after the upstream came back"
	if _, err := grace.SendMessage(chatA, during); err != nil {
		t.Fatalf("agent message during the outage: %v", err)
	}
	a.waitFor("the status to say reconnecting", stateSince(mark, "reconnecting"))
	a.shot("03-upstream-reconnecting")
	a.waitFor("the status to say restored", stateSince(mark, "reconnecting", "restored")+` && __bt.state() === 'restored'`)
	t.Logf("upstream outage: restored %v after the cut (connections refused for %v)", time.Since(cut).Round(10*time.Millisecond), refuseFor)
	a.waitFor("the message sent during the outage", fromAgent(qaAgentName, during))
	if _, err := grace.SendMessage(chatA, after); err != nil {
		t.Fatalf("agent message after the outage: %v", err)
	}
	a.waitFor("the message sent after the outage", fromAgent(qaAgentName, after))
	time.Sleep(time.Second) // room for a late duplicate (history resync, replay)
	a.expectOnce(hello, during, after)
	a.expectUniqueIDs()
	a.expectStatesSince(mark, "reconnecting", "restored")
	a.expectStreams(env.gw.URL, 1) // the gateway kept the browser's stream open throughout
	a.shot("03-upstream-restored")

	// ---- 4. the widget on another origin ----
	const tokenB = "browsertest-cross-origin"
	c := b.open(t, "cross-origin")
	c.navigate(env.other.URL + "/?api=" + url.QueryEscape(env.gw.URL) + "&token=" + url.QueryEscape(tokenB))
	if origin := evalJS[string](c, `location.origin`); origin == env.gw.URL || origin != env.other.URL {
		t.Fatalf("the cross-origin page runs on %s (gateway %s, other server %s)", origin, env.gw.URL, env.other.URL)
	}
	c.waitFor("the cross-origin stream to connect", `__bt.state() === 'connected'`)
	const across = "Hello across origins"
	c.send(across)
	c.waitFor("my cross-origin message to be confirmed", mineConfirmed(across))
	c.waitFor("the answer through the cross-origin stream", fromAgent(botName, "You said: “"+across+"”"))
	c.expectStreams(env.gw.URL, 1)
	chats = env.sim.Chats(chatiosim.CustomerIDForToken(tokenB))
	if len(chats) != 1 {
		t.Fatalf("the simulator has %d chats for the cross-origin customer, want 1", len(chats))
	}
	chatB := chats[0].ID
	const pushed, resumed = "An agent message across origins", "Sent after the gateway cut the stream"
	if _, err := grace.SendMessage(chatB, pushed); err != nil {
		t.Fatal(err)
	}
	c.waitFor("an agent message through the cross-origin stream", fromAgent(qaAgentName, pushed))

	// The gateway cuts the browser's connections: a new cross-origin
	// stream resumed after the last event.
	mark = c.stateMark()
	env.gw.CloseClientConnections()
	c.waitFor("the cross-origin status to say restored", stateSince(mark, "reconnecting", "restored")+` && __bt.state() === 'restored'`)
	if _, err := grace.SendMessage(chatB, resumed); err != nil {
		t.Fatal(err)
	}
	c.waitFor("an agent message through the new stream", fromAgent(qaAgentName, resumed))
	c.expectStreams(env.gw.URL, 2)
	time.Sleep(500 * time.Millisecond)
	c.expectOnce(across, pushed, resumed)
	c.expectUniqueIDs()
	c.shot("04-cross-origin")

	a.expectNoProblems()
	c.expectNoProblems()
	t.Logf("browser test took %v", time.Since(began).Round(10*time.Millisecond))
}

// ---- the gateway under test ----

type env struct {
	sim   *chatiosim.Server
	gw    *httptest.Server // the gateway: API, widget, docs
	other *httptest.Server // the widget alone, on another origin
}

// startEnv serves the simulator (with the demo bot), a gateway in front of
// it whose CORS admits the other server's origin, and the other server.
func startEnv(t *testing.T) *env {
	t.Helper()
	sim, upstream := chatiotest.Start(t, chatiosim.Config{Bot: true, BotDelay: botDelay})
	otherLn := listen(t)
	otherOrigin := "http://" + otherLn.Addr().String()

	reg := prometheus.NewRegistry()
	pool := session.NewPool(session.Config{
		Upstream:      chatio.Config{URL: upstream, License: 1, RequestTimeout: 5 * time.Second},
		ReconnectMin:  20 * time.Millisecond,
		ReconnectMax:  200 * time.Millisecond,
		ReconnectWait: 5 * time.Second,
		DialTimeout:   5 * time.Second,
	}, zap.NewNop(), reg)
	t.Cleanup(func() { // after the gateway's server has closed
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pool.Shutdown(sctx); err != nil {
			t.Errorf("pool shutdown: %v", err)
		}
	})
	hcfg := httpapi.Config{AllowedOrigins: []string{otherOrigin}, HeartbeatInterval: time.Second}
	if err := hcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(hcfg, pool, zap.NewNop(), reg)
	return &env{
		sim:   sim,
		gw:    serve(t, api.Handler(), listen(t)),
		other: serve(t, web.Handler(), otherLn),
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serve(t *testing.T, h http.Handler, ln net.Listener) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections() // event streams never end by themselves
		srv.Close()
	})
	return srv
}

// ---- the browser ----

// requireChromium skips the test without Debian's chromium, or fails it
// when CHATIO_REQUIRE_BROWSER=1.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s=1 but there is no browser: %v (apt-get install chromium)", requireEnv, err)
		}
		t.Skipf("skipping the browser test: no headless Chromium at %s (apt-get install chromium, "+
			"or run scripts/test.sh, which installs it; %s=1 makes this a failure)", chromiumPath, requireEnv)
	}
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("%s: %v", artifactsEnv, err)
	}
	return dir
}

type browser struct {
	root context.Context // the browser's first tab: the browser lives as long as it
	out  *lockedBuffer   // what the browser process printed
	art  string          // screenshot directory
}

// startBrowser starts headless Chromium with this machine's flags and a
// fresh profile; the test's cleanup stops it and waits for the process.
func startBrowser(t *testing.T, ctx context.Context, art string) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "chatio-browsertest-profile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // Chromium's helpers may write for a moment after it exits
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil || i == 50 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	out := &lockedBuffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(820, 900),
		chromedp.CombinedOutput(out),
	)
	root, cancelRoot := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelRoot()  // closes the browser
		cancelAlloc() // and waits for its process
		if t.Failed() {
			t.Logf("browser output (tail):\n%s", out.tail(4000))
		}
	})
	if err := chromedp.Do(root); err != nil { // starts it
		t.Fatalf("starting %s: %v\n%s", chromiumPath, err, out.tail(4000))
	}
	return &browser{root: root, out: out, art: art}
}

// tab is one browser tab showing the widget.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	art  string

	mu       sync.Mutex
	problems []string // uncaught exceptions, console.error, security errors
}

// open opens a tab; the recorder (recorderJS) is installed in every page it
// loads, and its console is watched. The test's cleanup captures it when
// the test failed and closes it.
func (b *browser) open(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root)
	tb := &tab{t: t, name: name, ctx: ctx, art: b.art}
	msgs := chromedp.Console(ctx) // opens the tab and subscribes
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.noteConsole(m)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: state at the end: %s", name, tb.dump())
			tb.shot("failure-" + name)
		}
		cancel()
		<-done
	})
	tb.do("installing the recorder", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recorderJS})
		return chromedp.Void{}, err
	})
	return tb
}

func (tb *tab) noteConsole(m chromedp.ConsoleMessage) {
	bad := m.IsException() ||
		(m.Type == chromedp.ConsoleError && (m.Source == "" || m.Source == "security"))
	if !bad {
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = append(tb.problems, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line+1))
}

func (tb *tab) expectNoProblems() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		tb.t.Errorf("%s: the page reported %s", tb.name, p)
	}
}

// do runs actions, bounded by waitMax.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitMax)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v\nstate: %s", tb.name, what, err, tb.dump())
	}
}

func (tb *tab) navigate(u string) {
	tb.t.Helper()
	tb.do("loading "+u, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS(`[data-testid="messages"]`)))
	if !evalJS[bool](tb, `typeof __bt === 'object' && typeof __bt.state === 'function'`) {
		tb.t.Fatalf("%s: the recorder is missing in %s", tb.name, u)
	}
}

// send types text into the message box and presses the send button.
func (tb *tab) send(text string) {
	tb.t.Helper()
	tb.do("sending "+text,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="message-input"]`), text),
		chromedp.Click(chromedp.CSS(`[data-testid="send-button"]`)),
	)
}

// waitFor polls the JavaScript expression until it is true, for at most
// waitMax; else the test fails with the page's state.
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitMax+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+expr+`)`,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(waitMax)))
	if err != nil {
		tb.t.Fatalf("%s: waiting for %s: %v\n  condition: %s\n  state: %s", tb.name, what, err, expr, tb.dump())
	}
}

// evalJS evaluates expr in the tab, bounded by waitMax.
func evalJS[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitMax)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluating %s: %v", tb.name, expr, err)
	}
	return v
}

// dump is the page's state for a failure message; it never fails.
func (tb *tab) dump() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(typeof __bt === 'object' ? {
		state: __bt.state(), states: __bt.rec.states, typing: __bt.rec.typing, progress: __bt.rec.progress,
		upload: __bt.rec.upload, streams: __bt.rec.streams, error: __bt.errorText(), messages: __bt.msgs()} : {url: location.href}, null, 1)`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return v
}

// shot saves a full screenshot as NAME.png in the artifact directory.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitMax)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		path := filepath.Join(tb.art, name+".png")
		if err = os.WriteFile(path, png, 0o644); err == nil {
			tb.t.Logf("screenshot: %s", path)
			return
		}
	}
	if tb.t.Failed() {
		tb.t.Logf("%s: screenshot %s: %v", tb.name, name, err)
	} else {
		tb.t.Errorf("%s: screenshot %s: %v", tb.name, name, err)
	}
}

// stateMark is the number of connection states recorded so far.
func (tb *tab) stateMark() int {
	tb.t.Helper()
	return evalJS[int](tb, `__bt.rec.states.length`)
}

// expectStatesSince checks that the states recorded since mark are want,
// in order, without repeats.
func (tb *tab) expectStatesSince(mark int, want ...string) {
	tb.t.Helper()
	got := evalJS[[]string](tb, fmt.Sprintf(`__bt.rec.states.slice(%d)`, mark))
	if strings.Join(got, " → ") != strings.Join(want, " → ") {
		tb.t.Errorf("%s: connection states %q, want %q", tb.name, got, want)
	}
}

// expectStreams checks that the page opened n event streams so far (the
// package's streaming fetch), each on the gateway with the token in the
// Authorization header and nothing in the URL, all with the page's one
// client instance id, every one after the first resuming after the last
// event seen (Last-Event-ID).
func (tb *tab) expectStreams(gateway string, n int) {
	tb.t.Helper()
	type stream struct {
		URL, LastEventID, Instance string
		Auth                       bool
	}
	streams := evalJS[[]stream](tb, `__bt.rec.streams`)
	if len(streams) != n {
		tb.t.Errorf("%s: %d event streams opened, want %d: %+v", tb.name, len(streams), n, streams)
	}
	for i, st := range streams {
		u, err := url.Parse(st.URL)
		if err != nil || u.Scheme+"://"+u.Host != gateway || u.Path != "/v1/events" {
			tb.t.Errorf("%s: event stream %s is not the gateway's (%s)", tb.name, st.URL, gateway)
			continue
		}
		if u.RawQuery != "" || !st.Auth {
			tb.t.Errorf("%s: event stream %s: the token is not (only) in the Authorization header: %+v", tb.name, st.URL, st)
		}
		if st.Instance == "" || st.Instance != streams[0].Instance {
			tb.t.Errorf("%s: event stream %d: client instance %q, want the page's %q", tb.name, i, st.Instance, streams[0].Instance)
		}
		if i > 0 && st.LastEventID == "" {
			tb.t.Errorf("%s: event stream %s does not resume (no Last-Event-ID)", tb.name, st.URL)
		}
	}
}

// expectOnce checks that each text is shown by exactly one message.
func (tb *tab) expectOnce(texts ...string) {
	tb.t.Helper()
	for _, text := range texts {
		if n := evalJS[int](tb, `__bt.msgs().filter((m) => m.text === `+js(text)+`).length`); n != 1 {
			tb.t.Errorf("%s: %q shown %d times, want once\nstate: %s", tb.name, text, n, tb.dump())
		}
	}
}

// expectUniqueIDs checks that no event is shown twice and that every
// message is confirmed.
func (tb *tab) expectUniqueIDs() {
	tb.t.Helper()
	type msg struct {
		ID, Kind, Text  string
		Pending, Failed bool
	}
	msgs := evalJS[[]msg](tb, `__bt.msgs()`)
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.Kind == "note" {
			continue
		}
		if m.ID == "" || m.Pending || m.Failed {
			tb.t.Errorf("%s: message %q is not confirmed (id %q, pending %v, failed %v)", tb.name, m.Text, m.ID, m.Pending, m.Failed)
		}
		if m.ID != "" && seen[m.ID] {
			tb.t.Errorf("%s: event %s (%q) shown twice", tb.name, m.ID, m.Text)
		}
		seen[m.ID] = true
	}
}

// ---- page-side helpers ----

// recorderJS runs before the widget in every page: __bt.rec keeps every
// change of the connection state, the typing indicator, the progress bar
// and the upload box (a MutationObserver sees each attribute write, so a
// state shown for a moment is not missed by polling); __bt.msgs() reads
// the message list.
const recorderJS = `(() => {
  const rec = { states: [], typing: [], progress: [], upload: [], streams: [] };
  // Every event stream the page opens (a fetch of /v1/events, by the
  // package): its URL and the headers that matter.
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    const u = new URL(String(input instanceof Request ? input.url : input), location.href);
    if (u.pathname === '/v1/events') {
      const h = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
      rec.streams.push({ url: u.href, auth: (h.get('Authorization') || '').startsWith('Bearer '),
        lastEventId: h.get('Last-Event-ID') || '', instance: h.get('X-Client-Instance') || '' });
    }
    return nativeFetch.apply(this, arguments);
  };
  const q = (id) => document.querySelector('[data-testid="' + id + '"]');
  const record = (el, attr, v) => {
    const id = el.dataset ? el.dataset.testid : '';
    if (id === 'connection-status' && attr === 'data-state') rec.states.push(v);
    else if (id === 'typing-indicator' && attr === 'data-active') {
      const shown = v === 'true' ? el.textContent : '';
      if (rec.typing[rec.typing.length - 1] !== shown) rec.typing.push(shown); // changes only
    }
    else if (id === 'upload-progress' && attr === 'value') rec.progress.push(Number(v));
    else if (el.id === 'upload' && attr === 'hidden') rec.upload.push(v === null ? 'shown' : 'hidden');
  };
  new MutationObserver((records) => {
    records.forEach((r, i) => {
      // The value this write set: the old value of the next write of the
      // same attribute in this batch, else the current one.
      const next = records.slice(i + 1).find((n) => n.target === r.target && n.attributeName === r.attributeName);
      record(r.target, r.attributeName, next ? next.oldValue : r.target.getAttribute(r.attributeName));
    });
  }).observe(document, { subtree: true, attributes: true, attributeOldValue: true,
    attributeFilter: ['data-state', 'data-active', 'value', 'hidden'] });
  window.__bt = {
    rec,
    state: () => q('connection-status').dataset.state,
    typingActive: () => q('typing-indicator').dataset.active,
    uploadHidden: () => q('upload-progress').closest('.upload').hidden,
    errorText: () => (q('error').hidden ? '' : q('error').textContent),
    msgs: () => Array.from(q('messages').children, (li) => ({
      id: li.dataset.eventId || '',
      kind: li.classList.contains('msg') ? (li.classList.contains('me') ? 'me' : 'them') : 'note',
      pending: li.classList.contains('pending'),
      failed: li.classList.contains('failed'),
      author: li.querySelector('.author') ? li.querySelector('.author').textContent : '',
      text: (li.querySelector('.text, a.file') || li).textContent.trim(),
      file: !!li.querySelector('[data-testid="attachment"]'),
    })),
  };
})();`

// js is s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mineConfirmed: my message with this text is shown and confirmed.
func mineConfirmed(text string) string {
	return `__bt.msgs().some((m) => m.kind === 'me' && m.text === ` + js(text) + ` && m.id && !m.pending && !m.failed)`
}

// fromAgent: a message of the named agent containing part is shown.
func fromAgent(name, part string) string {
	return `__bt.msgs().some((m) => m.kind === 'them' && m.author === ` + js(name) + ` && m.text.includes(` + js(part) + `))`
}

// stateSince: the connection states since mark include want, in order.
func stateSince(mark int, want ...string) string {
	w, _ := json.Marshal(want)
	return fmt.Sprintf(`((got, want) => { let i = 0; for (const s of got) if (s === want[i]) i++; return i === want.length; })(__bt.rec.states.slice(%d), %s)`, mark, w)
}

// lockedBuffer collects the browser's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // enough
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
