package chatio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// --- the fake upstream ------------------------------------------------------

const (
	testLicense = 42
	testToken   = "tok-secret"
	wait        = 5 * time.Second // upper bound for anything that should happen
)

// fake is a scripted chat.io upstream: every accepted socket becomes a peer
// the test drives frame by frame.
type fake struct {
	srv   *httptest.Server
	url   string // ws base, as Config.URL
	peers chan *peer
	ctx   context.Context // ends every peer at cleanup
	wg    sync.WaitGroup  // handler goroutines holding a socket

	// stall: the peer answers the login itself, then never reads again (so
	// it never answers a ping).
	stall atomic.Bool
	// upload serves /action/send_file.
	upload atomic.Pointer[http.HandlerFunc]
}

// peer is the server side of one client socket. A reader goroutine (the
// handler) reads every frame onto frames, so pings and close frames are
// answered as a live server would.
type peer struct {
	conn    *websocket.Conn
	query   string
	frames  chan Frame    // requests from the client; closed when reading ends
	readErr error         // why reading ended; set before frames is closed
	ended   chan struct{} // closed when the reader is done
}

// leakCheck verifies at the end of the test (after every other cleanup)
// that the test leaves no goroutine behind.
func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func newFake(t *testing.T) *fake {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{peers: make(chan *peer, 8), ctx: ctx}
	mux := http.NewServeMux()
	mux.HandleFunc("/customer/v0.5/rtm/ws", f.serveWS)
	mux.HandleFunc("/hang/rtm/ws", func(w http.ResponseWriter, r *http.Request) {
		select { // never answers the handshake
		case <-r.Context().Done():
		case <-ctx.Done():
		}
	})
	mux.HandleFunc("/customer/v0.5/action/send_file", func(w http.ResponseWriter, r *http.Request) {
		h := f.upload.Load()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		(*h)(w, r)
	})
	f.srv = httptest.NewServer(mux) // 127.0.0.1
	f.url = "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/customer/v0.5"
	t.Cleanup(func() {
		cancel()
		f.wg.Wait()
		f.srv.Close()
	})
	return f
}

func (f *fake) serveWS(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	p := &peer{conn: conn, query: r.URL.RawQuery, frames: make(chan Frame, 64), ended: make(chan struct{})}
	if f.stall.Load() {
		_, data, err := conn.Read(f.ctx)
		if err != nil {
			return
		}
		var login Frame
		_ = json.Unmarshal(data, &login)
		_ = conn.Write(f.ctx, websocket.MessageText, response(login, true, `{"customer_id":"c-stall"}`))
		select {
		case f.peers <- p:
		case <-f.ctx.Done():
		}
		<-f.ctx.Done() // never read again
		return
	}
	select {
	case f.peers <- p:
	case <-f.ctx.Done():
		return
	}
	defer close(p.ended)
	for {
		_, data, err := conn.Read(f.ctx)
		if err != nil {
			p.readErr = err
			close(p.frames)
			return
		}
		var fr Frame
		if err := json.Unmarshal(data, &fr); err != nil {
			panic(fmt.Sprintf("client sent bad JSON %q: %v", data, err))
		}
		select {
		case p.frames <- fr:
		case <-f.ctx.Done():
			return
		}
	}
}

func (f *fake) accept(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-f.peers:
		return p
	case <-time.After(wait):
		t.Fatal("no connection to the fake upstream")
		return nil
	}
}

// next returns the next request the client sent.
func (p *peer) next(t *testing.T) Frame {
	t.Helper()
	select {
	case fr, ok := <-p.frames:
		if !ok {
			t.Fatalf("peer: socket ended: %v", p.readErr)
		}
		return fr
	case <-time.After(wait):
		t.Fatal("peer: no request")
		return Frame{}
	}
}

// none asserts that no request arrives within d.
func (p *peer) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case fr := <-p.frames:
		t.Fatalf("peer: unexpected request %s", fr.Action)
	case <-time.After(d):
	}
}

func (p *peer) raw(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

func response(req Frame, ok bool, payload string) []byte {
	b, _ := json.Marshal(Frame{RequestID: req.RequestID, Action: req.Action, Type: TypeResponse, Success: &ok, Payload: json.RawMessage(payload)})
	return b
}

func (p *peer) respond(t *testing.T, req Frame, payload string) {
	t.Helper()
	p.raw(t, string(response(req, true, payload)))
}

func (p *peer) refuse(t *testing.T, req Frame, typ, msg string) {
	t.Helper()
	p.raw(t, string(response(req, false, fmt.Sprintf(`{"error":{"type":%q,"message":%q}}`, typ, msg))))
}

func (p *peer) push(t *testing.T, action, payload string) {
	t.Helper()
	p.raw(t, fmt.Sprintf(`{"action":%q,"type":"push","payload":%s}`, action, payload))
}

// result sends the result push of an indirect request.
func (p *peer) result(t *testing.T, req Frame, action, payload string) {
	t.Helper()
	p.raw(t, fmt.Sprintf(`{"request_id":%s,"action":%q,"type":"push","payload":%s}`, req.RequestID, action, payload))
}

// queueItems makes cfg's OnItem a consumer that queues the items on a
// channel of capacity n and refuses one that does not fit (the client then
// ends with ErrStreamOverflow), and its OnDone close the channel, before
// calling the OnDone cfg had, once the client has ended.
func queueItems(cfg *Config, n int) <-chan StreamItem {
	q := make(chan StreamItem, n)
	cfg.OnItem = func(it StreamItem) bool {
		select {
		case q <- it:
			return true
		default:
			return false
		}
	}
	next := cfg.OnDone
	cfg.OnDone = func() {
		close(q)
		if next != nil {
			next()
		}
	}
	return q
}

// testQueue is the capacity of the queue dialFake gives a client whose
// config has no OnItem.
const testQueue = 1024

// queues holds the item queue of each client dialFake gave one
// (*Client → <-chan StreamItem).
var queues sync.Map

// stream is the queue of c's items (see dialFake).
func stream(c *Client) <-chan StreamItem {
	q, ok := queues.Load(c)
	if !ok {
		panic("stream: the client has an OnItem of the test's own")
	}
	return q.(<-chan StreamItem)
}

// dialFake dials the fake and answers the login; the client is closed at
// cleanup. Without cfg.OnItem the client's items are queued (queueItems,
// testQueue of them) for stream and itemOf.
func dialFake(t *testing.T, f *fake, cfg Config) (*Client, *peer, Frame) {
	t.Helper()
	var q <-chan StreamItem
	if cfg.OnItem == nil {
		q = queueItems(&cfg, testQueue)
	}
	cfg.URL = f.url
	if cfg.Poller == nil {
		cfg.Poller = testPoller // set while TestPolled runs
	}
	cfg.License = testLicense
	cfg.Token = testToken
	cfg.HTTPClient = f.srv.Client()
	type dialed struct {
		c   *Client
		lr  LoginResult
		err error
	}
	ch := make(chan dialed, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the client must outlive Dial's ctx
	go func() {
		c, lr, err := Dial(ctx, cfg)
		ch <- dialed{c, lr, err}
	}()
	p := f.accept(t)
	var login Frame
	if !f.stall.Load() {
		login = p.next(t)
		p.respond(t, login, `{"customer_id":"c-1"}`)
	}
	var d dialed
	select {
	case d = <-ch:
	case <-time.After(wait):
		t.Fatal("Dial did not return")
	}
	if d.err != nil {
		t.Fatalf("Dial: %v", d.err)
	}
	if q != nil {
		queues.Store(d.c, q)
	}
	t.Cleanup(func() {
		d.c.Close()
		queues.Delete(d.c)
	})
	return d.c, p, login
}

// call runs Call in a goroutine; the result arrives on the channel.
type callOut struct {
	payload json.RawMessage
	err     error
}

func goCall(c *Client, ctx context.Context, action string, payload any, opts ...CallOption) <-chan callOut {
	ch := make(chan callOut, 1)
	go func() {
		p, err := c.Call(ctx, action, payload, opts...)
		ch <- callOut{p, err}
	}()
	return ch
}

func outOf(t *testing.T, ch <-chan callOut) callOut {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(wait):
		t.Fatal("call did not return")
		return callOut{}
	}
}

func itemOf(t *testing.T, c *Client) StreamItem {
	t.Helper()
	select {
	case it, ok := <-stream(c):
		if !ok {
			t.Fatal("stream closed")
		}
		return it
	case <-time.After(wait):
		t.Fatal("nothing on the stream")
		return StreamItem{}
	}
}

func waitDone(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("client not done")
	}
}

func jsonEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w bytes.Buffer
	if err := json.Compact(&g, got); err != nil {
		t.Fatalf("got invalid JSON %q", got)
	}
	if err := json.Compact(&w, []byte(want)); err != nil {
		t.Fatalf("want invalid JSON %q", want)
	}
	if g.String() != w.String() {
		t.Fatalf("JSON = %s, want %s", g.String(), w.String())
	}
}

func bg() context.Context { return context.Background() }

// ignoreItems is an OnItem that takes every item and does nothing with it.
func ignoreItems(StreamItem) bool { return true }

// --- login ----------------------------------------------------------------

func TestDialLogin(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, login := dialFake(t, f, Config{Customer: CustomerData{Name: "Ann"}})

	if p.query != "license_id=42" {
		t.Errorf("query = %q", p.query)
	}
	if login.Action != ActionLogin || !strings.HasPrefix(string(login.RequestID), `"`) {
		t.Errorf("first request = %s id %s", login.Action, login.RequestID)
	}
	jsonEq(t, login.Payload, `{"token":"Bearer tok-secret","customer":{"name":"Ann","fields":{}}}`)

	// The socket outlives Dial's (cancelled) ctx.
	ch := goCall(c, bg(), ActionGetChatsSummary, nil)
	p.respond(t, p.next(t), `{}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatalf("call after Dial: %v", o.err)
	}
}

func TestDialLoginResult(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct{ payload, want string }{
		{`{"customer_id":"c-9"}`, "c-9"},
		{`{}`, ""},
		{`null`, ""},
		{`{"customer_id":17}`, ""}, // not understood: tolerated
	} {
		t.Run(tc.payload, func(t *testing.T) {
			f := newFake(t)
			ch := make(chan LoginResult, 1)
			go func() {
				c, lr, err := Dial(bg(), Config{OnItem: ignoreItems, URL: f.url, License: testLicense, Token: testToken, HTTPClient: f.srv.Client()})
				if err != nil {
					t.Errorf("Dial: %v", err)
				} else {
					c.Close()
				}
				ch <- lr
			}()
			p := f.accept(t)
			p.respond(t, p.next(t), tc.payload)
			if lr := <-ch; lr.CustomerID != tc.want {
				t.Errorf("customer id = %q, want %q", lr.CustomerID, tc.want)
			}
		})
	}
}

func TestDialLoginRefused(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct{ typ string }{{ErrTypeAuthentication}, {ErrTypeValidation}} {
		t.Run(tc.typ, func(t *testing.T) {
			f := newFake(t)
			ch := make(chan error, 1)
			go func() {
				c, _, err := Dial(bg(), Config{OnItem: ignoreItems, URL: f.url, License: testLicense, Token: testToken, HTTPClient: f.srv.Client()})
				if c != nil {
					t.Error("client returned with an error")
				}
				ch <- err
			}()
			p := f.accept(t)
			p.refuse(t, p.next(t), tc.typ, "nope")
			err := <-ch
			var ae *AuthError
			var re *RequestError
			switch tc.typ {
			case ErrTypeAuthentication:
				if !errors.As(err, &ae) || ae.Message != "nope" || !errors.Is(err, ErrAuthentication) {
					t.Fatalf("err = %v, want *AuthError", err)
				}
			default:
				if !errors.As(err, &re) || re.Action != ActionLogin || re.Type != tc.typ || re.Message != "nope" {
					t.Fatalf("err = %#v, want *RequestError", err)
				}
			}
			// The refused client closed its socket normally.
			select {
			case <-p.ended:
				if websocket.CloseStatus(p.readErr) != websocket.StatusNormalClosure {
					t.Errorf("peer read end: %v", p.readErr)
				}
			case <-time.After(wait):
				t.Fatal("socket not closed")
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	if _, _, err := Dial(bg(), Config{OnItem: ignoreItems, URL: "ftp://x/y"}); err == nil {
		t.Error("ftp URL accepted")
	}
	_, _, err := Dial(bg(), Config{OnItem: ignoreItems, URL: "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/nowhere", HTTPClient: f.srv.Client()})
	if !errors.Is(err, ErrConnectionLost) {
		t.Errorf("dial to a 404: %v", err)
	}
	hang := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/hang"
	if _, _, err := Dial(bg(), Config{OnItem: ignoreItems, URL: hang, HTTPClient: f.srv.Client(), RequestTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Errorf("handshake never answered: %v", err)
	}
	ctx, cancel := context.WithCancel(bg())
	cancel()
	if _, _, err := Dial(ctx, Config{OnItem: ignoreItems, URL: f.url, HTTPClient: f.srv.Client()}); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled ctx: %v", err)
	}
}

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct{ base, socket, upload string }{
		{"ws://h:1/customer/v0.5", "ws://h:1/customer/v0.5/rtm/ws?license_id=7", "http://h:1/customer/v0.5/action/send_file?license_id=7"},
		{"wss://api.chat.io/customer/v0.5/", "wss://api.chat.io/customer/v0.5/rtm/ws?license_id=7", "https://api.chat.io/customer/v0.5/action/send_file?license_id=7"},
		{"https://h/x", "https://h/x/rtm/ws?license_id=7", "https://h/x/action/send_file?license_id=7"},
	} {
		s, u, err := endpoints(tc.base, 7)
		if err != nil || s != tc.socket || u != tc.upload {
			t.Errorf("endpoints(%q) = %q, %q, %v", tc.base, s, u, err)
		}
	}
	for _, bad := range []string{"", "ftp://h/x", "ws:///x", "::"} {
		if _, _, err := endpoints(bad, 7); err == nil {
			t.Errorf("endpoints(%q) accepted", bad)
		}
	}
}

// --- calls ------------------------------------------------------------------

func TestCallDirect(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, login := dialFake(t, f, Config{})

	ch := goCall(c, bg(), ActionGetChatsSummary, nil)
	req := p.next(t)
	if req.Action != ActionGetChatsSummary || req.Payload != nil || string(req.RequestID) == string(login.RequestID) {
		t.Fatalf("request = %+v", req)
	}
	p.respond(t, req, `{"chats_summary":[],"total_chats":0}`)
	o := outOf(t, ch)
	if o.err != nil {
		t.Fatal(o.err)
	}
	jsonEq(t, o.payload, `{"chats_summary":[],"total_chats":0}`)

	ch = goCall(c, bg(), ActionSendSneakPeek, map[string]string{"chat_id": "C1", "sneak_peek_text": "hi"})
	req = p.next(t)
	jsonEq(t, req.Payload, `{"chat_id":"C1","sneak_peek_text":"hi"}`)
	p.refuse(t, req, ErrTypeNotFound, "no chat")
	var re *RequestError
	if o := outOf(t, ch); !errors.As(o.err, &re) || re.Type != ErrTypeNotFound || re.Action != ActionSendSneakPeek {
		t.Fatalf("err = %v", o.err)
	}

	if _, err := c.Call(bg(), ActionPing, json.RawMessage(`{bad`)); err == nil {
		t.Error("invalid raw payload accepted")
	}
}

func TestCallIndirect(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})

	// Ack, then the result push.
	ch := goCall(c, bg(), ActionSendEvent, map[string]any{"chat_id": "C1"})
	req := p.next(t)
	p.respond(t, req, `{}`)
	select {
	case o := <-ch:
		t.Fatalf("indirect call resolved by its ack: %+v", o)
	case <-time.After(50 * time.Millisecond):
	}
	p.result(t, req, PushIncomingEvent, `{"chat_id":"C1","event":{"id":"E1"}}`)
	o := outOf(t, ch)
	if o.err != nil {
		t.Fatal(o.err)
	}
	jsonEq(t, o.payload, `{"chat_id":"C1","event":{"id":"E1"}}`)

	// A failed ack rejects.
	ch = goCall(c, bg(), ActionCloseThread, map[string]any{"chat_id": "C1"})
	p.refuse(t, p.next(t), ErrTypeValidation, "bad")
	var re *RequestError
	if o := outOf(t, ch); !errors.As(o.err, &re) || re.Action != ActionCloseThread || re.Message != "bad" {
		t.Fatalf("err = %v", o.err)
	}

	// A result before its ack still resolves; the late ack is an unknown id.
	ch = goCall(c, bg(), ActionUpdateChatProperties, map[string]any{"chat_id": "C1"})
	req = p.next(t)
	p.result(t, req, ActionUpdateChatProperties, `{"success":true}`)
	p.respond(t, req, `{}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatal(o.err)
	}
	// A frame after the ack proves the ack was dispatched.
	p.push(t, PushThreadClosed, `{"chat_id":"C1"}`)
	itemOf(t, c)
	if s := c.Stats(); s.UnknownIDs != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestEmitOrdering(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})

	// Direct: push A, response, push B.
	ch := goCall(c, bg(), ActionGetChatsSummary, nil, Emit())
	req := p.next(t)
	p.push(t, PushIncomingTypingIndicator, `{"n":"A"}`)
	p.respond(t, req, `{"n":"R1"}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatal(o.err)
	}
	// The result is on the stream before the call returned.
	if n := len(stream(c)); n != 2 {
		t.Fatalf("stream holds %d items when the call returned, want 2", n)
	}
	p.push(t, PushIncomingTypingIndicator, `{"n":"B"}`)

	// Indirect: ack, push C, result push, push D.
	ch = goCall(c, bg(), ActionSendEvent, map[string]any{}, Emit())
	req = p.next(t)
	p.respond(t, req, `{}`)
	p.push(t, PushIncomingTypingIndicator, `{"n":"C"}`)
	p.result(t, req, PushIncomingEvent, `{"n":"R2"}`)
	p.push(t, PushIncomingTypingIndicator, `{"n":"D"}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatal(o.err)
	}

	// Without Emit: nothing on the stream.
	ch = goCall(c, bg(), ActionGetChatThreads, map[string]any{})
	p.respond(t, p.next(t), `{"n":"quiet"}`)
	outOf(t, ch)
	p.push(t, PushIncomingTypingIndicator, `{"n":"E"}`)

	want := []struct{ n, resultOf, action string }{
		{"A", "", PushIncomingTypingIndicator},
		{"R1", ActionGetChatsSummary, ActionGetChatsSummary},
		{"B", "", PushIncomingTypingIndicator},
		{"C", "", PushIncomingTypingIndicator},
		{"R2", ActionSendEvent, PushIncomingEvent},
		{"D", "", PushIncomingTypingIndicator},
		{"E", "", PushIncomingTypingIndicator},
	}
	for i, w := range want {
		it := itemOf(t, c)
		var pl struct{ N string }
		_ = json.Unmarshal(it.Frame.Payload, &pl)
		if pl.N != w.n || it.ResultOf != w.resultOf || it.Frame.Action != w.action {
			t.Errorf("item %d = %s/%q/%s, want %s/%q/%s", i, pl.N, it.ResultOf, it.Frame.Action, w.n, w.resultOf, w.action)
		}
	}
}

func TestIgnoredFrames(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})
	base := c.Stats()

	ch := goCall(c, bg(), ActionUpdateCustomer, map[string]any{"customer": map[string]any{"name": "B"}})
	req := p.next(t)
	for _, s := range []string{
		`{not json`,                    // malformed
		`[1,2]`,                        // malformed
		`{"type":"push","payload":{}}`, // no action: malformed
		`{"action":"send_event","type":"response","success":true}`,                                            // response without id: malformed
		`{"request_id":"no-such","action":"send_event","type":"response","success":true,"payload":{}}`,        // unknown
		`{"request_id":5,"action":"incoming_event","type":"push","payload":{}}`,                               // dropped
		`{"request_id":null,"action":"incoming_event","type":"push","payload":{}}`,                            // dropped
		`{"request_id":` + string(req.RequestID) + `,"action":"customer_updated","type":"push","payload":{}}`, // dropped
		`{"action":"incoming_event","type":"mystery"}`,                                                        // dropped
	} {
		p.raw(t, s)
	}
	p.respond(t, req, `{"success":true}`)
	o := outOf(t, ch)
	if o.err != nil {
		t.Fatal(o.err)
	}
	jsonEq(t, o.payload, `{"success":true}`)
	p.push(t, PushIncomingEvent, `{"chat_id":"C1"}`)
	if it := itemOf(t, c); it.Frame.Action != PushIncomingEvent || it.ResultOf != "" {
		t.Fatalf("first stream item = %+v", it)
	}
	s := c.Stats()
	got := Stats{s.FramesIn - base.FramesIn, s.Pushes - base.Pushes, s.UnknownIDs - base.UnknownIDs, s.Malformed - base.Malformed, s.Dropped - base.Dropped}
	want := Stats{FramesIn: 11, Pushes: 1, UnknownIDs: 1, Malformed: 4, Dropped: 4}
	if got != want {
		t.Errorf("stats delta = %+v, want %+v", got, want)
	}
	select {
	case <-c.Done():
		t.Fatal("client ended on ignorable frames")
	default:
	}
}

func TestMaxPending(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{}) // MaxPending 10

	var chans []<-chan callOut
	for i := range 11 {
		chans = append(chans, goCall(c, bg(), ActionGetChatThreads, map[string]int{"i": i}))
	}
	reqs := map[string]Frame{}
	for range 10 {
		r := p.next(t)
		if _, dup := reqs[string(r.RequestID)]; dup {
			t.Fatalf("request id %s reused while in flight", r.RequestID)
		}
		reqs[string(r.RequestID)] = r
	}
	p.none(t, 100*time.Millisecond) // the 11th waits for a slot
	var first Frame
	for _, r := range reqs {
		first = r
		break
	}
	p.respond(t, first, string(first.Payload))
	delete(reqs, string(first.RequestID))
	r := p.next(t) // the 11th, now that a slot is free
	reqs[string(r.RequestID)] = r
	for _, r := range reqs {
		p.respond(t, r, string(r.Payload))
	}
	for i, ch := range chans {
		o := outOf(t, ch)
		if o.err != nil {
			t.Fatalf("call %d: %v", i, o.err)
		}
		jsonEq(t, o.payload, fmt.Sprintf(`{"i":%d}`, i)) // each got its own answer
	}
}

func TestSlotWaitRespectsCtx(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{MaxPending: 1})

	held := goCall(c, bg(), ActionGetChatThreads, nil)
	req := p.next(t)

	ctx, cancel := context.WithTimeout(bg(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, ActionPing, nil); !errors.Is(err, ErrTimeout) {
		t.Errorf("deadline while waiting for a slot: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(bg())
	ch := goCall(c, ctx2, ActionPing, nil)
	time.Sleep(20 * time.Millisecond)
	cancel2()
	if o := outOf(t, ch); !errors.Is(o.err, context.Canceled) || errors.Is(o.err, ErrTimeout) {
		t.Errorf("cancel while waiting for a slot: %v", o.err)
	}
	p.none(t, 20*time.Millisecond)
	p.respond(t, req, `{}`)
	if o := outOf(t, held); o.err != nil {
		t.Fatal(o.err)
	}
}

func TestRequestTimeout(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{RequestTimeout: 100 * time.Millisecond, MaxPending: 1})

	start := time.Now()
	ch := goCall(c, bg(), ActionSendEvent, map[string]any{})
	req := p.next(t)
	o := outOf(t, ch)
	if !errors.Is(o.err, ErrTimeout) || !errors.Is(o.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout", o.err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v", d)
	}
	p.respond(t, req, `{}`) // late: unknown

	// The slot came back.
	ch = goCall(c, bg(), ActionGetChatsSummary, nil)
	p.respond(t, p.next(t), `{}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatal(o.err)
	}
	if s := c.Stats(); s.UnknownIDs != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCallCancel(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})

	ctx, cancel := context.WithCancel(bg())
	ch := goCall(c, ctx, ActionSendEvent, map[string]any{})
	p.next(t)
	cancel()
	if o := outOf(t, ch); !errors.Is(o.err, context.Canceled) || errors.Is(o.err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", o.err)
	}

	dctx, dcancel := context.WithTimeout(bg(), 30*time.Millisecond)
	defer dcancel()
	ch = goCall(c, dctx, ActionSendEvent, map[string]any{})
	p.next(t)
	if o := outOf(t, ch); !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("caller deadline: err = %v, want ErrTimeout", o.err)
	}

	// An already cancelled ctx sends nothing.
	if _, err := c.Call(ctx, ActionSendEvent, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	p.none(t, 20*time.Millisecond)
	select {
	case <-c.Done():
		t.Fatal("cancelling a call ended the client")
	default:
	}
}

// --- endings ----------------------------------------------------------------

func TestConnectionLost(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})

	a := goCall(c, bg(), ActionGetChatThreads, nil)
	b := goCall(c, bg(), ActionSendEvent, map[string]any{})
	e := goCall(c, bg(), ActionStartChat, map[string]any{}, Emit())
	for range 3 {
		r := p.next(t)
		if r.Action == ActionStartChat {
			p.respond(t, r, `{}`) // acked, result pending
		}
	}
	p.push(t, PushThreadClosed, `{}`)
	_ = p.conn.CloseNow() // drop

	for _, ch := range []<-chan callOut{a, b, e} {
		if o := outOf(t, ch); !errors.Is(o.err, ErrConnectionLost) || errors.Is(o.err, ErrClosed) {
			t.Errorf("in-flight call: %v, want ErrConnectionLost", o.err)
		}
	}
	waitDone(t, c)
	if err := c.Err(); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Err = %v", err)
	}
	// The push that came first is still delivered, then the stream ends.
	n := 0
	for range stream(c) {
		n++
	}
	if n != 1 {
		t.Errorf("stream delivered %d items, want 1", n)
	}
	if _, err := c.Call(bg(), ActionPing, nil); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("call after the drop: %v", err)
	}
	c.Close()
	if err := c.Err(); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Err after Close = %v", err)
	}
}

func TestClose(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})

	a := goCall(c, bg(), ActionGetChatThreads, nil)
	b := goCall(c, bg(), ActionSendEvent, map[string]any{})
	p.next(t)
	p.next(t)
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= closeTimeout {
		t.Errorf("Close took %v with a responsive peer", d)
	}
	c.Close() // idempotent
	for _, ch := range []<-chan callOut{a, b} {
		if o := outOf(t, ch); !errors.Is(o.err, ErrClosed) {
			t.Errorf("in-flight call: %v, want ErrClosed", o.err)
		}
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
	<-p.ended
	if websocket.CloseStatus(p.readErr) != websocket.StatusNormalClosure {
		t.Errorf("peer saw %v, want a normal close", p.readErr)
	}
	if _, err := c.Call(bg(), ActionPing, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
	if _, err := c.SendFile(bg(), "C1", "", "a.txt", "text/plain", strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("SendFile after Close: %v", err)
	}
	if _, ok := <-stream(c); ok {
		t.Error("stream open after Close")
	}
}

func TestKeepaliveStall(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	f.stall.Store(true)
	const interval, pong = 50 * time.Millisecond, 100 * time.Millisecond
	c, _, _ := dialFake(t, f, Config{PingInterval: interval, PongTimeout: pong})
	start := time.Now()
	ch := goCall(c, bg(), ActionGetChatThreads, nil)

	waitDone(t, c)
	d := time.Since(start)
	if d < pong || d > interval+pong+time.Second {
		t.Errorf("stall detected after %v, want about %v", d, interval+pong)
	}
	if err := c.Err(); !errors.Is(err, ErrTimeout) {
		t.Errorf("Err = %v, want ErrTimeout", err)
	}
	if o := outOf(t, ch); !errors.Is(o.err, ErrConnectionLost) {
		t.Errorf("in-flight call: %v, want ErrConnectionLost", o.err)
	}
}

func TestCloseStalledPeer(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	f.stall.Store(true) // never answers the close frame
	c, _, _ := dialFake(t, f, Config{})
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > closeTimeout+time.Second {
		t.Errorf("Close took %v, want about %v", d, closeTimeout)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
}

func TestReadLimit(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{ReadLimit: 1024})
	p.push(t, PushIncomingEvent, `{"pad":"`+strings.Repeat("x", 900)+`"}`) // fits
	itemOf(t, c)
	p.push(t, PushIncomingEvent, `{"pad":"`+strings.Repeat("x", 2000)+`"}`)
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrConnectionLost) {
		t.Errorf("Err = %v", c.Err())
	}
}

func TestLogsNoToken(t *testing.T) {
	leakCheck(t)
	core, logs := observer.New(zap.DebugLevel)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{Logger: zap.New(core)})
	p.raw(t, `{bad`)
	p.raw(t, `{"request_id":"zz","action":"x","type":"response","success":true}`)
	ch := goCall(c, bg(), ActionPing, nil)
	p.respond(t, p.next(t), `{}`)
	outOf(t, ch)
	_ = p.conn.CloseNow()
	waitDone(t, c)
	c.Close()
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, testToken) {
			t.Errorf("token logged: %s", line)
		}
		if e.ContextMap()["license_id"] != int64(testLicense) {
			t.Errorf("entry without license_id: %s", line)
		}
	}
}

func TestKeepaliveHealthy(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{PingInterval: 20 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	time.Sleep(300 * time.Millisecond)
	select {
	case <-c.Done():
		t.Fatalf("client ended with a responsive peer: %v", c.Err())
	default:
	}
	ch := goCall(c, bg(), ActionPing, nil)
	p.respond(t, p.next(t), `{}`)
	if o := outOf(t, ch); o.err != nil {
		t.Fatal(o.err)
	}
}

func TestCustomerDisconnected(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		payload, reason string
		retry           bool
	}{
		{`{"reason":"access_token_expired"}`, "access_token_expired", true},
		{`{"reason":"license_expired"}`, "license_expired", false},
		{`{}`, "", true},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			f := newFake(t)
			c, p, _ := dialFake(t, f, Config{})
			ch := goCall(c, bg(), ActionSendEvent, map[string]any{})
			p.next(t)
			p.push(t, PushCustomerDisconnected, tc.payload)
			if it := itemOf(t, c); it.Frame.Action != PushCustomerDisconnected {
				t.Fatalf("stream item = %+v", it)
			}
			_ = p.conn.Close(websocket.StatusNormalClosure, "")
			waitDone(t, c)
			var de *DisconnectedError
			if err := c.Err(); !errors.As(err, &de) || de.Reason != tc.reason || de.Retry != tc.retry || !errors.Is(err, ErrConnectionLost) {
				t.Fatalf("Err = %#v", err)
			}
			if o := outOf(t, ch); !errors.As(o.err, &de) {
				t.Fatalf("in-flight call: %v, want *DisconnectedError", o.err)
			}
		})
	}
}

func TestStreamOverflow(t *testing.T) {
	leakCheck(t)
	t.Run("pushes", func(t *testing.T) {
		f := newFake(t)
		var cfg Config
		q := queueItems(&cfg, 2)
		c, p, _ := dialFake(t, f, cfg)
		ch := goCall(c, bg(), ActionGetChatThreads, nil)
		p.next(t)
		for i := range 3 {
			p.push(t, PushIncomingEvent, fmt.Sprintf(`{"i":%d}`, i))
		}
		waitDone(t, c)
		if !errors.Is(c.Err(), ErrStreamOverflow) {
			t.Fatalf("Err = %v", c.Err())
		}
		if o := outOf(t, ch); !errors.Is(o.err, ErrConnectionLost) {
			t.Errorf("in-flight call: %v", o.err)
		}
		n := 0
		for range q {
			n++
		}
		if n != 2 {
			t.Errorf("the queue kept %d items, want 2", n)
		}
	})
	t.Run("emit", func(t *testing.T) {
		f := newFake(t)
		var cfg Config
		queueItems(&cfg, 1)
		c, p, _ := dialFake(t, f, cfg)
		ch := goCall(c, bg(), ActionGetChatThreads, nil, Emit())
		req := p.next(t)
		p.push(t, PushIncomingEvent, `{}`)
		p.respond(t, req, `{}`)
		if o := outOf(t, ch); !errors.Is(o.err, ErrConnectionLost) {
			t.Errorf("Emit call on a full stream: %v", o.err)
		}
		waitDone(t, c)
		if !errors.Is(c.Err(), ErrStreamOverflow) {
			t.Fatalf("Err = %v", c.Err())
		}
	})
}

func TestConcurrentCalls(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, p, _ := dialFake(t, f, Config{})
	actions := []string{ActionGetChatThreads, ActionSendEvent, ActionUpdateCustomer, ActionCloseThread}

	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			action := actions[i%len(actions)]
			var opts []CallOption
			if i%3 == 0 {
				opts = append(opts, Emit())
			}
			got, err := c.Call(bg(), action, map[string]int{"i": i}, opts...)
			if err == nil && string(got) != fmt.Sprintf(`{"i":%d}`, i) {
				err = fmt.Errorf("call %d got %s", i, got)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	// Consume the stream meanwhile.
	streamDone := make(chan int)
	go func() {
		k := 0
		for it := range stream(c) {
			if it.ResultOf != "" {
				k++
			}
		}
		streamDone <- k
	}()
	// Answer in batches, in reverse order, pushes in between.
	for answered := 0; answered < n; {
		var batch []Frame
		batch = append(batch, p.next(t))
	more:
		for {
			select {
			case r := <-p.frames:
				batch = append(batch, r)
			case <-time.After(10 * time.Millisecond):
				break more
			}
		}
		for i := len(batch) - 1; i >= 0; i-- {
			r := batch[i]
			p.push(t, PushIncomingTypingIndicator, `{}`)
			if IsDirect(r.Action) {
				p.respond(t, r, string(r.Payload))
			} else {
				p.respond(t, r, `{}`)
				p.result(t, r, PushIncomingEvent, string(r.Payload))
			}
		}
		answered += len(batch)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.Close()
	if k := <-streamDone; k != n/3 {
		t.Errorf("%d Emit results on the stream, want %d", k, n/3)
	}
}

// --- classify -----------------------------------------------------------------

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in    string
		class frameClass // 0: malformed
		id    string
	}{
		{`{"action":"incoming_event","type":"push","payload":{}}`, classPush, ""},
		{`{"request_id":"7","action":"send_event","type":"response","success":true}`, classResponse, "7"},
		{`{"request_id":"7","action":"send_event","type":"response","success":false}`, classResponse, "7"},
		{`{"request_id":"7","action":"incoming_event","type":"push"}`, classResult, "7"},
		{`{"request_id":"7","action":"incoming_event"}`, classResult, "7"},
		{`{"request_id":"7","action":"customer_updated","type":"push"}`, classDropped, "7"},
		{`{"request_id":7,"action":"incoming_event","type":"push"}`, classDropped, ""},
		{`{"request_id":null,"action":"incoming_event","type":"push"}`, classDropped, ""},
		{`{"action":"incoming_event"}`, classDropped, ""},
		{`{"request_id":7,"action":"x","type":"response"}`, 0, ""},
		{`{"type":"push"}`, 0, ""},
		{`{"action":5}`, 0, ""},
		{`null`, 0, ""},
		{`"x"`, 0, ""},
		{``, 0, ""},
	} {
		d, err := classify([]byte(tc.in))
		if tc.class == 0 {
			if err == nil {
				t.Errorf("classify(%s) = %v, want malformed", tc.in, d.class)
			}
			continue
		}
		if err != nil || d.class != tc.class || d.id != tc.id {
			t.Errorf("classify(%s) = %v %q %v, want %v %q", tc.in, d.class, d.id, err, tc.class, tc.id)
		}
	}
}

// --- files ----------------------------------------------------------------------

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func setUpload(f *fake, h http.HandlerFunc) { f.upload.Store(&h) }

func TestSendFile(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, _, _ := dialFake(t, f, Config{})

	const first, rest = 64 << 10, 100 << 10
	gotFirst := make(chan struct{})
	type seen struct {
		method, query, auth, chatID, customID, filename, ctype string
		size                                                   int
		order                                                  []string
	}
	seenCh := make(chan seen, 1)
	setUpload(f, func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, query: r.URL.RawQuery, auth: r.Header.Get("Authorization")}
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			s.order = append(s.order, part.FormName())
			switch part.FormName() {
			case "payload.file":
				s.filename, s.ctype = part.FileName(), part.Header.Get("Content-Type")
				buf := make([]byte, 32<<10)
				if _, err := io.ReadFull(part, buf); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				close(gotFirst) // the client has not been given the rest yet
				n, _ := io.Copy(io.Discard, part)
				s.size = len(buf) + int(n)
			case "payload.chat_id":
				b, _ := io.ReadAll(part)
				s.chatID = string(b)
			case "payload.custom_id":
				b, _ := io.ReadAll(part)
				s.customID = string(b)
			}
		}
		seenCh <- s
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"payload":{"url":"https://cdn.example/f.png"}}`)
	})

	pr, pw := io.Pipe()
	var fed sync.WaitGroup
	fed.Go(func() {
		_, _ = pw.Write(bytes.Repeat([]byte("a"), first))
		select {
		case <-gotFirst:
			_, _ = pw.Write(bytes.Repeat([]byte("b"), rest))
			pw.Close()
		case <-time.After(wait):
			pw.CloseWithError(errors.New("upload did not stream: server never saw the first chunk"))
		}
	})
	got, err := c.SendFile(bg(), "C1", "cid-1", "f.png", "image/png", pr)
	fed.Wait()
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, got, `{"url":"https://cdn.example/f.png"}`)
	s := <-seenCh
	want := seen{method: "POST", query: "license_id=42", auth: "Bearer " + testToken, chatID: "C1", customID: "cid-1",
		filename: "f.png", ctype: "image/png", size: first + rest}
	if fmt.Sprint(s.order) != "[payload.chat_id payload.file payload.custom_id]" {
		t.Errorf("parts = %v", s.order)
	}
	s.order = nil
	if fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", want) {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
}

func TestSendFileLimit(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, _, _ := dialFake(t, f, Config{})
	var sizes sync.Map
	setUpload(f, func(w http.ResponseWriter, r *http.Request) {
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			n, err := io.Copy(io.Discard, part)
			if err != nil {
				return // the client aborted
			}
			if part.FormName() == "payload.file" {
				sizes.Store(part.FileName(), n)
			}
		}
		_, _ = io.WriteString(w, `{"payload":{"url":"u"}}`)
	})

	if _, err := c.SendFile(bg(), "C1", "", "exact", "", io.LimitReader(zeros{}, MaxFileSize)); err != nil {
		t.Fatalf("exactly MaxFileSize: %v", err)
	}
	if n, _ := sizes.Load("exact"); n != int64(MaxFileSize) {
		t.Errorf("server got %v bytes", n)
	}
	_, err := c.SendFile(bg(), "C1", "", "big", "", io.LimitReader(zeros{}, MaxFileSize+1))
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("MaxFileSize+1: %v, want ErrFileTooLarge", err)
	}
	if _, ok := sizes.Load("big"); ok {
		t.Error("the oversized upload completed")
	}
}

func TestSendFileErrors(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, _, _ := dialFake(t, f, Config{})
	for _, tc := range []struct {
		status int
		body   string
		check  func(error) bool
	}{
		{401, `{"error":{"type":"authentication","message":"expired"}}`, func(err error) bool {
			var ae *AuthError
			return errors.As(err, &ae) && ae.Message == "expired"
		}},
		{400, `{"error":{"type":"validation","message":"bad chat"}}`, func(err error) bool {
			var re *RequestError
			return errors.As(err, &re) && re.Action == "send_file" && re.Type == "validation" && re.Message == "bad chat"
		}},
		{413, `too big`, func(err error) bool { return errors.Is(err, ErrFileTooLarge) }},
		{500, `oops`, func(err error) bool {
			var re *RequestError
			return err != nil && !errors.As(err, &re) && strings.Contains(err.Error(), "500")
		}},
		{200, `{"nothing":1}`, func(err error) bool { return err != nil }},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			setUpload(f, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := c.SendFile(bg(), "C1", "", "a.txt", "text/plain", strings.NewReader("hello"))
			if !tc.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}

	// The source failing is reported; ctx cancellation too.
	setUpload(f, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	boom := errors.New("disk on fire")
	if _, err := c.SendFile(bg(), "C1", "", "a", "", io.MultiReader(strings.NewReader("x"), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("failing reader: %v", err)
	}
	ctx, cancel := context.WithCancel(bg())
	cancel()
	if _, err := c.SendFile(ctx, "C1", "", "a", "", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestFileFormHeaders(t *testing.T) {
	if got := safeContentType("image/png; charset=x"); got != "image/png; charset=x" {
		t.Errorf("got %q", got)
	}
	for _, bad := range []string{"", "image/png\r\nX-Evil: 1", "not a type"} {
		if got := safeContentType(bad); got != "application/octet-stream" {
			t.Errorf("safeContentType(%q) = %q", bad, got)
		}
	}
	if got := headerSafe("a\r\nb\x00c"); got != "abc" {
		t.Errorf("headerSafe = %q", got)
	}
}

// formParts is a FileForm of parts and then end (nil: io.EOF).
type formParts struct {
	parts []FilePart
	end   error
}

func (f *formParts) NextPart() (FilePart, error) {
	if len(f.parts) == 0 {
		if f.end == nil {
			return FilePart{}, io.EOF
		}
		return FilePart{}, f.end
	}
	p := f.parts[0]
	f.parts = f.parts[1:]
	return p, nil
}

// uploadSeen is what a fake upstream read of one upload: the form's parts
// in order and whether the form ended with its closing boundary.
type uploadSeen struct {
	order    []string
	fields   map[string]string
	complete bool
}

func recordUploads(f *fake) <-chan uploadSeen {
	seenCh := make(chan uploadSeen, 1)
	setUpload(f, func(w http.ResponseWriter, r *http.Request) {
		s := uploadSeen{fields: map[string]string{}}
		defer func() { seenCh <- s }()
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				s.complete = true
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			b, err := io.ReadAll(part)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			s.order = append(s.order, part.FormName())
			s.fields[part.FormName()] = string(b)
		}
		_, _ = io.WriteString(w, `{"payload":{"url":"u"}}`)
	})
	return seenCh
}

// TestSendFileForm: the form's parts go upstream in their order, the file
// streamed; a form that fails, ends without a file or has a second file or
// custom id never reaches the upstream with its closing boundary.
func TestSendFileForm(t *testing.T) {
	leakCheck(t)
	f := newFake(t)
	c, _, _ := dialFake(t, f, Config{})
	seen := recordUploads(f)
	file := func(s string) FilePart {
		return FilePart{File: strings.NewReader(s), Filename: "a.txt", ContentType: "text/plain"}
	}

	for _, tc := range []struct {
		name  string
		parts []FilePart
		order string
	}{
		{"custom id first", []FilePart{{CustomID: "c1"}, file("hello")}, "[payload.chat_id payload.custom_id payload.file]"},
		{"custom id last", []FilePart{file("hello"), {CustomID: "c1"}}, "[payload.chat_id payload.file payload.custom_id]"},
		{"no custom id", []FilePart{file("hello")}, "[payload.chat_id payload.file]"},
		{"empty custom id", []FilePart{file("hello"), {}}, "[payload.chat_id payload.file]"},
	} {
		got, err := c.SendFileForm(bg(), "C1", &formParts{parts: tc.parts})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		jsonEq(t, got, `{"url":"u"}`)
		s := <-seen
		if fmt.Sprint(s.order) != tc.order || !s.complete || s.fields["payload.file"] != "hello" {
			t.Errorf("%s: upstream saw %+v, want parts %s", tc.name, s, tc.order)
		}
		if want := map[bool]string{true: "c1"}[strings.Contains(tc.order, "custom")]; s.fields["payload.custom_id"] != want {
			t.Errorf("%s: custom id %q", tc.name, s.fields["payload.custom_id"])
		}
	}

	boom := errors.New("client body cut")
	for _, tc := range []struct {
		name  string
		form  *formParts
		check func(error) bool
	}{
		{"form fails after the file", &formParts{parts: []FilePart{file("hello")}, end: boom},
			func(err error) bool { return errors.Is(err, boom) }},
		{"file fails", &formParts{parts: []FilePart{{File: io.MultiReader(strings.NewReader("hel"), errReader{boom})}}},
			func(err error) bool { return errors.Is(err, boom) }},
		{"file ends with a wrapped EOF", &formParts{parts: []FilePart{{File: io.MultiReader(strings.NewReader("hel"), errReader{fmt.Errorf("multipart: %w", io.EOF)})}}},
			func(err error) bool { return err != nil }},
		{"no file", &formParts{parts: []FilePart{{CustomID: "c1"}}},
			func(err error) bool { return errors.Is(err, errFormNoFile) }},
		{"second file", &formParts{parts: []FilePart{file("a"), file("b")}},
			func(err error) bool { return errors.Is(err, errFormTwice) }},
		{"second custom id", &formParts{parts: []FilePart{{CustomID: "1"}, file("a"), {CustomID: "2"}}},
			func(err error) bool { return errors.Is(err, errFormTwice) }},
	} {
		_, err := c.SendFileForm(bg(), "C1", tc.form)
		if !tc.check(err) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if s := <-seen; s.complete {
			t.Errorf("%s: the upstream got a complete form %+v", tc.name, s)
		}
	}
}

// TestDefaultHTTPClientSetUp: the shared upload client's transport has done
// net/http's one-time set-up before it is handed out, so that a socket's
// dial, which reads its TLS configuration (wsconn.Dial clones it), never
// races the first upload, whose request would otherwise write it. The race
// detector fails this test when the set-up is left to the first request.
func TestDefaultHTTPClientSetUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	hc := newDefaultHTTPClient()
	tr := hc.Transport.(*http.Transport)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the first upload
		defer wg.Done()
		if res, err := hc.Get(srv.URL); err == nil {
			res.Body.Close()
		}
	}()
	if tr.TLSClientConfig == nil || !slices.Contains(tr.TLSClientConfig.Clone().NextProtos, "h2") { // a dial
		t.Errorf("the transport's TLS configuration is not set up: %+v", tr.TLSClientConfig)
	}
	wg.Wait()
}
