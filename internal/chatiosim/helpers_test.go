package chatiosim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

func TestMain(m *testing.M) {
	if runMemClient() {
		return
	}
	goleak.VerifyTestMain(m)
}

const waitFor = 3 * time.Second

// start runs a Server for a test on an httptest server listening on
// 127.0.0.1 and returns it with its base URL, as chatiotest.Start does for
// the other packages' tests (which this package's cannot import: it
// imports this one).
func start(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s := New(cfg)
	ts := httptest.NewUnstartedServer(s)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		s.Close()
		tb.Fatalf("listen: %v", err)
	}
	_ = ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	tb.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, "ws" + strings.TrimPrefix(ts.URL, "http") + "/customer/v0.5"
}

// frame is a server frame as a test sees it.
type frame struct {
	RequestID json.RawMessage `json:"request_id"`
	Action    string          `json:"action"`
	Type      string          `json:"type"`
	Success   *bool           `json:"success"`
	Payload   json.RawMessage `json:"payload"`
}

func (f frame) reqID() string {
	var s string
	_ = json.Unmarshal(f.RequestID, &s)
	return s
}

func (f frame) ok() bool { return f.Success != nil && *f.Success }

func (f frame) errType() string {
	var p struct {
		Error struct{ Type, Message string }
	}
	_ = json.Unmarshal(f.Payload, &p)
	return p.Error.Type
}

func (f frame) errMessage() string {
	var p struct {
		Error struct{ Type, Message string }
	}
	_ = json.Unmarshal(f.Payload, &p)
	return p.Error.Message
}

func (f frame) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Payload, v); err != nil {
		t.Fatalf("decode %s payload %s: %v", f.Action, f.Payload, err)
	}
}

// wsClient is a raw websocket client: frames are read by one goroutine.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	done   chan struct{}
	err    error // why reading ended (after done)
	mu     sync.Mutex
	n      int
}

func wsURL(base string, license int64) string {
	return fmt.Sprintf("%s/rtm/ws?license_id=%d", base, license)
}

func dialRaw(t testing.TB, base string, license int64) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, wsURL(base, license), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: status %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 1024), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c, nil
}

func dial(t testing.TB, base string) *wsClient {
	t.Helper()
	c, err := dialRaw(t, base, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *wsClient) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("bad frame %q: %w", data, err)
			return
		}
		select {
		case c.frames <- f:
		default:
			c.err = fmt.Errorf("test client buffer full")
			return
		}
	}
}

func (c *wsClient) close() {
	_ = c.conn.CloseNow()
	<-c.done
}

func (c *wsClient) sendRaw(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends a request and returns its id.
func (c *wsClient) send(action string, payload any) string {
	c.t.Helper()
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("r%d", c.n)
	c.mu.Unlock()
	m := map[string]any{"request_id": id, "action": action}
	if payload != nil {
		m["payload"] = payload
	}
	c.sendRaw(m)
	return id
}

// next returns the next frame.
func (c *wsClient) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("socket ended: %v", c.err)
		}
		return f
	case <-time.After(waitFor):
		c.t.Fatalf("no frame within %v", waitFor)
	}
	return frame{}
}

// noFrame checks that nothing arrives within d.
func (c *wsClient) noFrame(d time.Duration) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame %s %s %s", f.Action, f.Type, f.Payload)
		}
	case <-time.After(d):
	}
}

// waitFor skips frames until one matches.
func (c *wsClient) waitFor(what string, match func(frame) bool) frame {
	c.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("socket ended waiting for %s: %v", what, c.err)
			}
			if match(f) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("no %s within %v", what, waitFor)
		}
	}
}

// call sends a request and returns its response frame (the next frame).
func (c *wsClient) call(action string, payload any) frame {
	c.t.Helper()
	id := c.send(action, payload)
	f := c.next()
	if f.reqID() != id || f.Type != "response" || f.Action != action {
		c.t.Fatalf("%s: want response %s, got %s %s %s %s", action, id, f.reqID(), f.Action, f.Type, f.Payload)
	}
	return f
}

// callOK is call that must succeed.
func (c *wsClient) callOK(action string, payload any) frame {
	c.t.Helper()
	f := c.call(action, payload)
	if !f.ok() {
		c.t.Fatalf("%s failed: %s", action, f.Payload)
	}
	return f
}

// callErr is call that must fail with errType.
func (c *wsClient) callErr(action string, payload any, errType string) frame {
	c.t.Helper()
	f := c.call(action, payload)
	if f.ok() || f.errType() != errType {
		c.t.Fatalf("%s: want error %s, got %s", action, errType, f.Payload)
	}
	return f
}

// indirect sends an indirect request, checks the ack and returns the result push.
func (c *wsClient) indirect(action string, payload any, push string) frame {
	c.t.Helper()
	id := c.send(action, payload)
	ack := c.next()
	if ack.reqID() != id || ack.Type != "response" || !ack.ok() || string(ack.Payload) != "{}" {
		c.t.Fatalf("%s: want ack {}, got %s %s %s", action, ack.reqID(), ack.Type, ack.Payload)
	}
	res := c.next()
	if res.reqID() != id || res.Type != "push" || res.Action != push {
		c.t.Fatalf("%s: want push %s with request id %s, got %s %s %s", action, push, id, res.reqID(), res.Action, res.Payload)
	}
	return res
}

// expectPush reads the next frame, which must be a plain push of action.
func (c *wsClient) expectPush(action string) frame {
	c.t.Helper()
	f := c.next()
	if f.Type != "push" || f.Action != action || f.RequestID != nil {
		c.t.Fatalf("want plain push %s, got %s %s id=%s %s", action, f.Action, f.Type, f.RequestID, f.Payload)
	}
	return f
}

func (c *wsClient) login(token string) string {
	c.t.Helper()
	f := c.callOK("login", map[string]any{"token": "Bearer " + token, "customer": map[string]any{"fields": map[string]any{}}})
	var p struct {
		CustomerID string `json:"customer_id"`
	}
	f.decode(c.t, &p)
	return p.CustomerID
}

// closed waits for the socket to end and returns the read error.
func (c *wsClient) closed() error {
	c.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return c.err
			}
		case <-deadline:
			c.t.Fatalf("socket still open after %v", waitFor)
		}
	}
}

// newChat starts a chat and returns its id and first thread id.
func (c *wsClient) newChat() (chatID, threadID string) {
	c.t.Helper()
	f := c.indirect("start_chat", map[string]any{"routing_scope": map[string]string{"type": "license"}}, "incoming_chat_thread")
	var p struct {
		Chat struct {
			ID     string
			Thread struct{ ID string }
		}
	}
	f.decode(c.t, &p)
	return p.Chat.ID, p.Chat.Thread.ID
}

func httpBase(base string) string {
	return "http" + strings.TrimSuffix(strings.TrimPrefix(base, "ws"), "/customer/v0.5")
}

var testHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// postJSON posts body to the control API and returns status and decoded answer.
func postJSON(t testing.TB, base, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	resp, err := testHTTP.Post(httpBase(base)+path, "application/json", r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func getJSON(t testing.TB, base, path string, v any) int {
	t.Helper()
	resp, err := testHTTP.Get(httpBase(base) + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, waitFor, what, cond)
}
