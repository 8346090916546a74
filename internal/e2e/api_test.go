package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// The gateway's REST + SSE contract (API.md) over real HTTP against the
// chat.io simulator (no bot: the tests play the agent), every response
// through apiValidatingClient, so every body and every stream message is
// also held to api/openapi.yaml.

// apiWait bounds each wait for an event.
const apiWait = 5 * time.Second

// apiEnv is a simulator and a gateway in front of it.
type apiEnv struct {
	t     *testing.T
	sim   *chatiosim.Server
	gw    *gateway
	c     *http.Client
	ctx   context.Context
	agent *chatiosim.Agent
}

// apiStart serves a simulator (cfg; never the bot) and a gateway (o) for
// the test.
func apiStart(t *testing.T, cfg chatiosim.Config, o gatewayOptions) *apiEnv {
	t.Helper()
	cfg.Bot = false
	sim, wsURL := chatiotest.Start(t, cfg)
	gw := startGatewayWith(t, wsURL, 1, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &apiEnv{t: t, sim: sim, gw: gw, c: apiValidatingClient(t), ctx: ctx, agent: sim.Agent("agent-1", "Agent One")}
}

// apiAnswer is a REST answer.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// call sends method path with body (nil: none; []byte or string: raw
// JSON; anything else is encoded) as the customer with token ("": no
// Authorization header).
func (e *apiEnv) call(token, method, path string, body any) apiAnswer {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.gw.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

func (e *apiEnv) do(req *http.Request) apiAnswer {
	e.t.Helper()
	a, err := e.send(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// send is do for any goroutine: it returns its error.
func (e *apiEnv) send(req *http.Request) (apiAnswer, error) {
	resp, err := e.c.Do(req)
	if err != nil {
		return apiAnswer{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiAnswer{}, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	return apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// ok checks the status and decodes the body into v (when not nil).
func (e *apiEnv) ok(a apiAnswer, status int, v any) {
	e.t.Helper()
	if a.status != status {
		e.t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			e.t.Fatalf("answer %s: %v", a.body, err)
		}
	}
}

// apiError is an error answer's body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Type    string `json:"type"`
}

// wantError checks an error answer: status, code, upstream type ("" for
// none) and, for 503, a Retry-After in whole seconds.
func (e *apiEnv) wantError(a apiAnswer, status int, code, typ string) apiError {
	e.t.Helper()
	var b apiError
	if err := json.Unmarshal(a.body, &b); err != nil {
		e.t.Fatalf("error body %q: %v", a.body, err)
	}
	if a.status != status || b.Code != code || b.Type != typ {
		e.t.Errorf("got %d %s/%q, want %d %s/%q: %s", a.status, b.Code, b.Type, status, code, typ, a.body)
	}
	if b.Message == "" {
		e.t.Errorf("%s without a message", code)
	}
	if status == http.StatusServiceUnavailable {
		if n, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || n < 1 {
			e.t.Errorf("%d %s: Retry-After %q, want whole seconds", status, code, a.header.Get("Retry-After"))
		}
	}
	return b
}

// stream opens the event stream of token, with extra headers (k, v pairs)
// and query (already encoded, "" for none).
func (e *apiEnv) stream(token, query string, kv ...string) *sseStream {
	e.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	u := e.gw.URL + "/v1/events"
	if query != "" {
		u += "?" + query
	}
	s := apiOpenStreamWith(e.t, e.ctx, e.c, u, h)
	if got := s.resp.Header.Get("Cache-Control"); got != "no-cache" {
		e.t.Errorf("stream Cache-Control %q", got)
	}
	if got := s.resp.Header.Get("X-Accel-Buffering"); got != "no" {
		e.t.Errorf("stream X-Accel-Buffering %q", got)
	}
	return s
}

// connect opens a fresh stream and reads its snapshot: customer_id (the
// token's customer), user_data…, connected. It returns the stream and the
// connected message.
func (e *apiEnv) connect(token string) (*sseStream, sseMessage) {
	e.t.Helper()
	s := e.stream(token, "")
	m := s.next(e.t, apiWait)
	if want := mustMarshal(chatiosim.CustomerIDForToken(token)); m.Event != "customer_id" || m.Data != want {
		e.t.Fatalf("first event %s %s, want customer_id %s", m.Event, m.Data, want)
	}
	for {
		m = s.next(e.t, apiWait)
		switch m.Event {
		case "user_data":
			continue
		case "connected":
			if m.ID == "" {
				e.t.Errorf("connected without an id")
			}
			return s, m
		default:
			e.t.Fatalf("snapshot: unexpected %s %s", m.Event, m.Data)
		}
	}
}

// apiReadUntil reads events until stop holds for one (included).
func apiReadUntil(t testing.TB, s *sseStream, stop func(sseMessage) bool) []sseMessage {
	t.Helper()
	var got []sseMessage
	for {
		m := s.next(t, apiWait)
		got = append(got, m)
		if stop(m) {
			return got
		}
	}
}

// apiSeq parses an event id.
func apiSeq(t testing.TB, id string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatalf("event id %q: %v", id, err)
	}
	return n
}

// apiNewEvent is new_event's data.
type apiNewEvent struct {
	Chat  string `json:"chat"`
	Event struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Text        string `json:"text"`
		URL         string `json:"url"`
		ContentType string `json:"contentType"`
		Author      string `json:"author"`
		Thread      string `json:"thread"`
		CustomID    string `json:"customId"`
	} `json:"event"`
}

func apiParseNewEvent(m sseMessage) (apiNewEvent, bool) {
	var ne apiNewEvent
	if m.Event != "new_event" || json.Unmarshal([]byte(m.Data), &ne) != nil {
		return ne, false
	}
	return ne, true
}

// apiIsText tells whether m is the new_event of a message with text.
func apiIsText(text string) func(sseMessage) bool {
	return func(m sseMessage) bool {
		ne, ok := apiParseNewEvent(m)
		return ok && ne.Event.Type == "message" && ne.Event.Text == text
	}
}

// apiChat is the answer of POST /v1/chats.
type apiChat struct {
	ID         string          `json:"id"`
	Users      []string        `json:"users"`
	Threads    []string        `json:"threads"`
	Properties json.RawMessage `json:"properties"`
}

// startChat starts a chat with a first message.
func (e *apiEnv) startChat(token, text string) apiChat {
	e.t.Helper()
	var c apiChat
	e.ok(e.call(token, "POST", "/v1/chats", map[string]any{
		"events": []any{map[string]any{"type": "message", "text": text}},
	}), http.StatusCreated, &c)
	if c.ID == "" || len(c.Threads) != 1 {
		e.t.Fatalf("chat %+v", c)
	}
	return c
}

// apiEventOut is an event as REST answers it.
type apiEventOut struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Text     string `json:"text"`
	Thread   string `json:"thread"`
	Author   string `json:"author"`
	CustomID string `json:"customId"`
}

// sendMessage posts a message as the customer and returns the event.
func (e *apiEnv) sendMessage(token, chat, text string) apiEventOut {
	e.t.Helper()
	var ev apiEventOut
	e.ok(e.call(token, "POST", "/v1/chats/"+chat+"/messages", map[string]any{"text": text}), http.StatusCreated, &ev)
	if ev.Text != text || ev.Type != "message" || ev.ID == "" {
		e.t.Fatalf("sent %q, got %+v", text, ev)
	}
	return ev
}

func (e *apiEnv) agentSays(chat, text string) string {
	e.t.Helper()
	id, err := e.agent.SendMessage(chat, text)
	if err != nil {
		e.t.Fatalf("agent message: %v", err)
	}
	return id
}

// apiUpload builds a multipart body: customId (when not "") then the file.
func apiUpload(customID, name, contentType string, content []byte) (body []byte, formType string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if customID != "" {
		_ = mw.WriteField("customId", customID)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", contentType)
	p, _ := mw.CreatePart(h)
	_, _ = p.Write(content)
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func (e *apiEnv) upload(token, chat string, body []byte, formType string) apiAnswer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, "POST", e.gw.URL+"/v1/chats/"+chat+"/files", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(req)
}

// ---- the tests ----

// TestAPIEveryRoute calls every route of API.md once with its success
// status and body shape (the shapes are the spec's, checked by the
// client), and sees on the stream the events the calls and the agent
// cause.
func TestAPIEveryRoute(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	const tok = "api-every-route"
	cust := chatiosim.CustomerIDForToken(tok)
	s, _ := e.connect(tok)
	names := map[string]bool{"customer_id": true, "connected": true}
	read := func(stop func(sseMessage) bool) {
		t.Helper()
		for _, m := range apiReadUntil(t, s, stop) {
			names[m.Event] = true
		}
	}

	// Ops routes of the spec.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		e.ok(e.call("", "GET", p, nil), http.StatusOK, nil)
	}

	// Session and ticket.
	var sess struct{ CustomerID, Status string }
	e.ok(e.call(tok, "GET", "/v1/session", nil), http.StatusOK, &sess)
	if sess.CustomerID != cust || sess.Status != "connected" {
		t.Errorf("session %+v, want %s connected", sess, cust)
	}
	var ticket struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expiresIn"`
	}
	e.ok(e.call(tok, "POST", "/v1/tickets", nil), http.StatusOK, &ticket)
	if ticket.Ticket == "" || ticket.ExpiresIn <= 0 {
		t.Errorf("ticket %+v", ticket)
	}
	ts := e.stream("", "ticket="+url.QueryEscape(ticket.Ticket))
	if m := ts.next(t, apiWait); m.Event != "customer_id" {
		t.Errorf("ticket stream starts with %s", m.Event)
	}
	ts.Close()

	// Chats.
	var chat apiChat
	e.ok(e.call(tok, "POST", "/v1/chats", map[string]any{
		"events":     []any{map[string]any{"type": "message", "text": "hello"}},
		"properties": map[string]any{"source": map[string]any{"page": "pricing"}},
	}), http.StatusCreated, &chat)
	if len(chat.Threads) != 1 || !slices.Contains(chat.Users, cust) {
		t.Fatalf("chat %+v", chat)
	}
	c, th := chat.ID, chat.Threads[0]
	// start_chat's result shows as the SDK emits it: user_data, thread_summary.
	read(func(m sseMessage) bool { return m.Event == "thread_summary" && strings.Contains(m.Data, th) })

	var sum struct {
		ChatsSummary []struct {
			ID        string          `json:"id"`
			LastEvent json.RawMessage `json:"lastEvent"`
		} `json:"chatsSummary"`
		TotalChats int `json:"totalChats"`
	}
	e.ok(e.call(tok, "GET", "/v1/chats?offset=0&limit=10", nil), http.StatusOK, &sum)
	if sum.TotalChats != 1 || len(sum.ChatsSummary) != 1 || sum.ChatsSummary[0].ID != c {
		t.Errorf("summary %+v", sum)
	}

	var threads []struct {
		ID     string        `json:"id"`
		Chat   string        `json:"chat"`
		Active bool          `json:"active"`
		Events []apiEventOut `json:"events"`
	}
	e.ok(e.call(tok, "GET", "/v1/chats/"+c+"/threads?ids="+th, nil), http.StatusOK, &threads)
	if len(threads) != 1 || threads[0].ID != th || threads[0].Chat != c || !threads[0].Active ||
		len(threads[0].Events) != 1 || threads[0].Events[0].Text != "hello" {
		t.Errorf("threads %+v", threads)
	}

	var tsum struct {
		ThreadsSummary []struct {
			ID          string `json:"id"`
			TotalEvents int    `json:"totalEvents"`
		} `json:"threadsSummary"`
		TotalThreads int `json:"totalThreads"`
	}
	e.ok(e.call(tok, "GET", "/v1/chats/"+c+"/threads-summary?offset=0&limit=25", nil), http.StatusOK, &tsum)
	if tsum.TotalThreads != 1 || len(tsum.ThreadsSummary) != 1 || tsum.ThreadsSummary[0].ID != th || tsum.ThreadsSummary[0].TotalEvents != 1 {
		t.Errorf("threads summary %+v", tsum)
	}

	var hist struct {
		Events []apiEventOut `json:"events"`
		Done   bool          `json:"done"`
		Cursor string        `json:"cursor"`
	}
	e.ok(e.call(tok, "GET", "/v1/chats/"+c+"/history", nil), http.StatusOK, &hist)
	if len(hist.Events) != 1 || hist.Events[0].Text != "hello" || !hist.Done {
		t.Errorf("history %+v", hist)
	}

	// Events, messages, files.
	var ev apiEventOut
	e.ok(e.call(tok, "POST", "/v1/chats/"+c+"/events", map[string]any{"type": "message", "text": "as event", "customId": "c-2"}), http.StatusCreated, &ev)
	if ev.Type != "message" || ev.Text != "as event" || ev.CustomID != "c-2" || ev.Thread != th || ev.Author != cust {
		t.Errorf("event %+v", ev)
	}
	var custom map[string]any
	e.ok(e.call(tok, "POST", "/v1/chats/"+c+"/events", map[string]any{"type": "system_note", "note": "x"}), http.StatusCreated, &custom)
	if custom["type"] != "system_note" || custom["note"] != "x" {
		t.Errorf("custom event %v", custom)
	}
	msg := e.sendMessage(tok, c, "as message")
	read(func(m sseMessage) bool { ne, _ := apiParseNewEvent(m); return ne.Event.ID == msg.ID })

	body, form := apiUpload("f-1", "note.txt", "text/plain", []byte("some text"))
	var file struct{ URL string }
	e.ok(e.upload(tok, c, body, form), http.StatusCreated, &file)
	if file.URL == "" {
		t.Errorf("file answer without url")
	}
	read(func(m sseMessage) bool { ne, _ := apiParseNewEvent(m); return ne.Event.Type == "file" })

	// Rating, sneak peek, properties, customer, last seen.
	var rating struct{ Value, Comment string }
	e.ok(e.call(tok, "POST", "/v1/chats/"+c+"/rating", map[string]any{"value": "good", "comment": "quick"}), http.StatusOK, &rating)
	if rating.Value != "good" || rating.Comment != "quick" {
		t.Errorf("rating %+v", rating)
	}
	// Stored as thread properties of the newest thread (the gateway makes
	// that call on its own account: nothing shows on the stream).
	if info, _ := e.sim.Chat(c); !sameJSON(info.Threads[0].Properties, json.RawMessage(`{"rating":{"score":1,"comment":"quick"}}`)) {
		t.Errorf("thread properties after rating: %s", info.Threads[0].Properties)
	}

	var empty map[string]any
	e.ok(e.call(tok, "PUT", "/v1/chats/"+c+"/sneak-peek", map[string]any{"text": "typing…"}), http.StatusAccepted, &empty)
	if len(empty) != 0 {
		t.Errorf("sneak peek answer %v", empty)
	}

	// The results of these calls are what the SDK resolves; like the SDK,
	// the gateway does not emit their result pushes (only send_event's).
	var success struct{ Success bool }
	e.ok(e.call(tok, "PATCH", "/v1/chats/"+c+"/properties", map[string]any{"routing": map[string]any{"pinned": true}}), http.StatusOK, &success)
	if !success.Success {
		t.Errorf("properties: %+v", success)
	}
	success.Success = false
	e.ok(e.call(tok, "PATCH", "/v1/chats/"+c+"/threads/"+th+"/properties", map[string]any{"notes": map[string]any{"k": "v"}}), http.StatusOK, &success)
	if !success.Success {
		t.Errorf("thread properties: %+v", success)
	}
	success.Success = false
	e.ok(e.call(tok, "PATCH", "/v1/customer", map[string]any{"name": "Ann", "email": "ann@example.com", "fields": map[string]any{"plan": "pro"}}), http.StatusOK, &success)
	if !success.Success {
		t.Errorf("customer: %+v", success)
	}
	var seen struct{ Timestamp float64 }
	before := time.Now().Add(-2 * time.Second).UnixMilli()
	e.ok(e.call(tok, "POST", "/v1/chats/"+c+"/last-seen", map[string]any{"timestamp": time.Now().UnixMilli()}), http.StatusOK, &seen)
	if int64(seen.Timestamp) < before || int64(seen.Timestamp) > time.Now().Add(2*time.Second).UnixMilli() {
		t.Errorf("last seen %v, want about now in ms", seen.Timestamp)
	}
	info, _ := e.sim.Chat(c)
	if !sameJSON(info.Properties, json.RawMessage(`{"source":{"page":"pricing"},"routing":{"pinned":true}}`)) {
		t.Errorf("chat properties upstream: %s", info.Properties)
	}
	if !strings.Contains(string(info.Threads[0].Properties), `"notes":{"k":"v"}`) {
		t.Errorf("thread properties upstream: %s", info.Threads[0].Properties)
	}
	if info.LastSeen[cust] == 0 {
		t.Errorf("no last seen upstream: %v", info.LastSeen)
	}
	success.Success = false
	e.ok(e.call(tok, "POST", "/v1/chats/"+c+"/close-thread", nil), http.StatusOK, &success)
	if !success.Success {
		t.Errorf("close thread: %+v", success)
	}
	if info, _ := e.sim.Chat(c); info.Active {
		t.Errorf("the simulator's chat is still active")
	}

	// What the agent does shows on the stream: a message opens a thread
	// (user_data, thread_summary, new_event; joining: user_joined_chat),
	// typing, properties, seen, close, leave.
	e.agentSays(c, "hi, how can I help?")
	read(apiIsText("hi, how can I help?"))
	steps := []struct {
		event string
		do    func() error
	}{
		{"user_is_typing", func() error { return e.agent.Typing(c, true) }},
		{"user_stopped_typing", func() error { return e.agent.Typing(c, false) }},
		{"chat_properties_updated", func() error {
			return e.agent.UpdateChatProperties(c, map[string]any{"routing": map[string]any{"pinned": false}})
		}},
		{"chat_thread_properties_updated", func() error {
			info, _ := e.sim.Chat(c)
			return e.agent.UpdateThreadProperties(c, info.Threads[len(info.Threads)-1].ID, map[string]any{"a": map[string]any{"b": 1}})
		}},
		{"last_seen_timestamp_updated", func() error { return e.agent.MarkSeen(c, time.Now()) }},
		{"thread_closed", func() error { return e.agent.CloseThread(c) }},
		{"user_left_chat", func() error { return e.agent.Leave(c) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.event, err)
		}
		read(func(m sseMessage) bool { return m.Event == st.event })
	}

	// An upstream drop: connection_lost, then connection_restored.
	e.sim.DropAll()
	read(func(m sseMessage) bool { return m.Event == "connection_restored" })
	for _, n := range apiStreamEventNames {
		if !names[n] && n != "disconnected" {
			t.Errorf("the stream never carried %s", n)
		}
	}

	// The session ends: 204, the stream gets disconnected and ends.
	e.ok(e.call(tok, "DELETE", "/v1/session", nil), http.StatusNoContent, nil)
	read(func(m sseMessage) bool { return m.Event == "disconnected" })
	select {
	case _, open := <-s.msgs:
		for open {
			_, open = <-s.msgs
		}
	case <-time.After(apiWait):
		t.Errorf("the stream did not end after DELETE /v1/session")
	}
}

// TestAPITwoSubscribers: two streams of one customer get every event once,
// in the same order with the same ids, the customer's own REST messages
// included (as new_event, on both).
func TestAPITwoSubscribers(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	const tok = "api-two-subscribers"
	a, ca := e.connect(tok)
	b, cb := e.connect(tok)
	if x, y := apiSeq(t, ca.ID), apiSeq(t, cb.ID); y < x {
		t.Errorf("second subscriber's connected id %s before the first's %s", cb.ID, ca.ID)
	}

	chat := e.startChat(tok, "first")
	var mine []string
	for i := range 5 {
		mine = append(mine, e.sendMessage(tok, chat.ID, fmt.Sprintf("customer %d", i)).ID)
		e.agentSays(chat.ID, fmt.Sprintf("agent %d", i))
	}
	if err := e.agent.UpdateChatProperties(chat.ID, map[string]any{"tags": map[string]any{"vip": true}}); err != nil {
		t.Fatal(err)
	}
	e.agentSays(chat.ID, "END")

	got := [2][]sseMessage{apiReadUntil(t, a, apiIsText("END")), apiReadUntil(t, b, apiIsText("END"))}
	a.quiet(t, 200*time.Millisecond)
	b.quiet(t, 200*time.Millisecond)
	if len(got[0]) != len(got[1]) {
		t.Fatalf("first stream got %d events, second %d", len(got[0]), len(got[1]))
	}
	for i := range got[0] {
		if x, y := got[0][i], got[1][i]; x != y {
			t.Errorf("event %d differs:\n %+v\n %+v", i, x, y)
		}
	}
	for k, evs := range got {
		ids := map[string]bool{}
		texts := map[string]int{}
		for _, m := range evs {
			if m.ID == "" || ids[m.ID] {
				t.Errorf("stream %d: id %q missing or repeated (%s)", k, m.ID, m.Event)
			}
			ids[m.ID] = true
			if ne, ok := apiParseNewEvent(m); ok {
				texts[ne.Event.ID]++
			}
		}
		for _, id := range mine {
			if texts[id] != 1 {
				t.Errorf("stream %d: the customer's own message %s came %d times, want once", k, id, texts[id])
			}
		}
		// "first" (start_chat's event, as the customer's other tabs see
		// it) + 5 + 5 + END
		if n := len(texts); n != 12 {
			t.Errorf("stream %d: %d distinct new_event, want 12", k, n)
		}
	}
}

// TestAPIResume: a subscriber that comes back with Last-Event-ID (header,
// then the lastEventId query parameter) gets every event it missed, in
// order, once, and then live events.
func TestAPIResume(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	const tok = "api-resume"
	ref, _ := e.connect(tok) // stays open: the reference
	chat := e.startChat(tok, "start")

	for round, how := range []string{"header", "query"} {
		s, _ := e.connect(tok)
		mark := fmt.Sprintf("seen %d", round)
		e.agentSays(chat.ID, mark)
		seen := apiReadUntil(t, s, apiIsText(mark))
		last := seen[len(seen)-1].ID
		refSeen := apiReadUntil(t, ref, apiIsText(mark))
		if refSeen[len(refSeen)-1].ID != last {
			t.Fatalf("the reference stream has %s for %q, the subscriber %s", refSeen[len(refSeen)-1].ID, mark, last)
		}
		s.Close()

		// While it is away: the agent, the customer (REST), properties.
		end := fmt.Sprintf("end %d", round)
		e.agentSays(chat.ID, fmt.Sprintf("missed %d.1", round))
		e.sendMessage(tok, chat.ID, fmt.Sprintf("missed %d.2", round))
		if err := e.agent.UpdateChatProperties(chat.ID, map[string]any{"r": map[string]any{"n": round}}); err != nil {
			t.Fatal(err)
		}
		e.agentSays(chat.ID, fmt.Sprintf("missed %d.3", round))
		missed := apiReadUntil(t, ref, apiIsText(fmt.Sprintf("missed %d.3", round)))

		var back *sseStream
		if how == "header" {
			back = e.stream(tok, "", "Last-Event-ID", last)
		} else {
			back = e.stream(tok, "lastEventId="+url.QueryEscape(last))
		}
		got := apiReadUntil(t, back, apiIsText(fmt.Sprintf("missed %d.3", round)))
		if len(got) != len(missed) {
			t.Errorf("%s: resumed with %d events, missed %d:\n got  %v\n want %v", how, len(got), len(missed), got, missed)
		} else {
			for i := range got {
				if got[i] != missed[i] {
					t.Errorf("%s: event %d: got %+v, want %+v", how, i, got[i], missed[i])
				}
			}
		}
		// Live again after the replay.
		e.agentSays(chat.ID, end)
		apiReadUntil(t, back, apiIsText(end))
		apiReadUntil(t, ref, apiIsText(end))
		back.quiet(t, 100*time.Millisecond)
		back.Close()
	}
}

// TestAPIIsolation: two customers never see each other's events, and a
// call on the other customer's chat answers 404 not_found.
func TestAPIIsolation(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	toks := [2]string{"api-iso-a", "api-iso-b"}
	var streams [2]*sseStream
	var chats [2]apiChat
	for i, tok := range toks {
		streams[i], _ = e.connect(tok)
	}
	for i, tok := range toks {
		chats[i] = e.startChat(tok, "hello from "+tok)
	}
	for i, tok := range toks {
		e.sendMessage(tok, chats[i].ID, "more from "+tok)
		e.agentSays(chats[i].ID, "agent to "+tok)
		if err := e.agent.UpdateChatProperties(chats[i].ID, map[string]any{"x": map[string]any{"owner": tok}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range toks {
		e.agentSays(chats[i].ID, "END "+tok)
	}
	for i, tok := range toks {
		other := chats[1-i].ID
		evs := apiReadUntil(t, streams[i], apiIsText("END "+tok))
		streams[i].quiet(t, 150*time.Millisecond)
		for _, m := range evs {
			var d struct {
				Chat string `json:"chat"`
				ID   string `json:"id"`
			}
			_ = json.Unmarshal([]byte(m.Data), &d)
			if strings.Contains(m.Data, other) || strings.Contains(m.Data, toks[1-i]) ||
				strings.Contains(m.Data, chatiosim.CustomerIDForToken(toks[1-i])) {
				t.Errorf("%s saw the other customer's %s: %s", tok, m.Event, m.Data)
			}
			if d.Chat != "" && d.Chat != chats[i].ID {
				t.Errorf("%s saw %s of chat %s", tok, m.Event, d.Chat)
			}
		}
		// REST on the other customer's chat: not found, whatever the call.
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/chats/" + other + "/threads-summary"},
			{"GET", "/v1/chats/" + other + "/threads?ids=" + chats[1-i].Threads[0]},
			{"GET", "/v1/chats/" + other + "/history"},
			{"POST", "/v1/chats/" + other + "/messages"},
			{"POST", "/v1/chats/" + other + "/close-thread"},
		} {
			var body any
			if c.method == "POST" && strings.HasSuffix(c.path, "/messages") {
				body = map[string]any{"text": "intruding"}
			}
			e.wantError(e.call(tok, c.method, c.path, body), http.StatusNotFound, httpapi.CodeRequestFailed, "not_found")
		}
	}
	for i := range toks {
		for _, ev := range e.sim.Events(chats[i].ID) {
			if ev.Text == "intruding" {
				t.Errorf("chat %d got the other customer's message", i)
			}
		}
	}
}

// TestAPIErrors: every error code of API.md with its status.
func TestAPIErrors(t *testing.T) {
	t.Parallel()

	t.Run("INVALID_ARGS", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{MaxFileSize: 1024}, gatewayOptions{http: func(c *httpapi.Config) { c.MaxBodyBytes = 4096 }})
		const tok = "api-invalid-args"
		chat := e.startChat(tok, "hi")
		before := len(e.sim.Events(chat.ID))
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/chats", `{"events": [`},
			{"POST", "/v1/chats", `{"events": "x"}`},
			{"GET", "/v1/chats?limit=26", nil},
			{"GET", "/v1/chats?offset=-1", nil},
			{"GET", "/v1/chats/" + chat.ID + "/threads-summary?limit=1001", nil},
			{"GET", "/v1/chats/" + chat.ID + "/threads", nil},
			{"GET", "/v1/chats/" + chat.ID + "/history?cursor=forged", nil},
			{"POST", "/v1/chats/" + chat.ID + "/messages", `{"text": 5}`},
			{"POST", "/v1/chats/" + chat.ID + "/messages", `{}`},
			{"POST", "/v1/chats/" + chat.ID + "/events", `{"text": "no type"}`},
			{"POST", "/v1/chats/" + chat.ID + "/rating", `{"value": "meh"}`},
			{"PUT", "/v1/chats/" + chat.ID + "/sneak-peek", `{"text": null}`},
			{"PATCH", "/v1/chats/" + chat.ID + "/properties", `[1]`},
			{"PATCH", "/v1/customer", `{"fields": {"n": 1}}`},
			{"POST", "/v1/chats/" + chat.ID + "/last-seen", `{"timestamp": "now"}`},
		} {
			a := e.call(tok, c.method, c.path, c.body)
			if a.status != http.StatusBadRequest {
				t.Errorf("%s %s %v: %d %s", c.method, c.path, c.body, a.status, a.body)
				continue
			}
			e.wantError(a, http.StatusBadRequest, httpapi.CodeInvalidArgs, "")
		}
		b := e.wantError(e.call(tok, "GET", "/v1/chats?limit=26", nil), http.StatusBadRequest, httpapi.CodeInvalidArgs, "")
		if b.Message != "Specified limit is too high (max 25)." {
			t.Errorf("limit message %q, want the SDK's", b.Message)
		}

		// 413: a JSON body over MaxBodyBytes, a file over the upstream's limit.
		e.wantError(e.call(tok, "POST", "/v1/chats/"+chat.ID+"/messages", map[string]any{"text": strings.Repeat("x", 8000)}),
			http.StatusRequestEntityTooLarge, httpapi.CodeInvalidArgs, "")
		body, form := apiUpload("", "big.bin", "application/octet-stream", bytes.Repeat([]byte{1}, 4096))
		b = e.wantError(e.upload(tok, chat.ID, body, form), http.StatusRequestEntityTooLarge, httpapi.CodeInvalidArgs, "")
		if b.Message != "The file is too big (max size is 10.00 MB)." {
			t.Errorf("file too big message %q, want the SDK's", b.Message)
		}
		if after := len(e.sim.Events(chat.ID)); after != before {
			t.Errorf("bad input reached the chat: %d events, had %d", after, before)
		}
	})

	t.Run("AUTHENTICATION", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
		e.wantError(e.call("", "GET", "/v1/session", nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		req, _ := http.NewRequestWithContext(e.ctx, "GET", e.gw.URL+"/v1/session", nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		e.wantError(e.do(req), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		// Refused upstream (the simulator refuses "expired:" tokens).
		e.wantError(e.call("expired:api", "GET", "/v1/chats", nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		e.wantError(e.call("expired:api", "POST", "/v1/tickets", nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		// The stream: no credentials, a bad ticket, a used ticket.
		e.wantError(e.call("", "GET", "/v1/events", nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		e.wantError(e.call("", "GET", "/v1/events?ticket=bogus", nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
		var ticket struct{ Ticket string }
		e.ok(e.call("api-auth", "POST", "/v1/tickets", nil), http.StatusOK, &ticket)
		s := e.stream("", "ticket="+url.QueryEscape(ticket.Ticket))
		s.next(t, apiWait)
		s.Close()
		e.wantError(e.call("", "GET", "/v1/events?ticket="+url.QueryEscape(ticket.Ticket), nil), http.StatusUnauthorized, httpapi.CodeAuthentication, "")
	})

	t.Run("REQUEST_FAILED", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
		const tok = "api-request-failed"
		chat := e.startChat(tok, "hi")
		// validation: the gateway forwards an empty text (as the SDK
		// does); the upstream refuses it.
		e.wantError(e.call(tok, "POST", "/v1/chats/"+chat.ID+"/messages", map[string]any{"text": ""}),
			http.StatusBadRequest, httpapi.CodeRequestFailed, "validation")
		// not_found: no such chat, no such thread.
		e.wantError(e.call(tok, "GET", "/v1/chats/no-such-chat/threads-summary", nil), http.StatusNotFound, httpapi.CodeRequestFailed, "not_found")
		e.wantError(e.call(tok, "GET", "/v1/chats/"+chat.ID+"/threads?ids=no-such-thread", nil), http.StatusNotFound, httpapi.CodeRequestFailed, "not_found")
		e.wantError(e.call(tok, "PATCH", "/v1/chats/"+chat.ID+"/threads/no-such-thread/properties", map[string]any{"a": map[string]any{"b": 1}}),
			http.StatusNotFound, httpapi.CodeRequestFailed, "not_found")
		// too_many_requests (429): the simulator has no such error (its
		// limit is pending_requests_limit_reached, which is a 502 by the
		// contract's "otherwise"), so it is not produced here; the
		// mapping is unit-tested in internal/httpapi.
	})

	t.Run("CONNECTION_LOST", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{}, gatewayOptions{session: func(c *session.Config) { c.ReconnectWait = 300 * time.Millisecond }})
		const tok = "api-connection-lost"
		e.ok(e.call(tok, "GET", "/v1/session", nil), http.StatusOK, nil)
		e.sim.RefuseConnections(20 * time.Second)
		t.Cleanup(func() { e.sim.RefuseConnections(0) })
		e.sim.DropAll()
		e.wantError(e.call(tok, "GET", "/v1/chats", nil), http.StatusServiceUnavailable, httpapi.CodeConnectionLost, "")
		// Back once the upstream takes sockets again.
		e.sim.RefuseConnections(0)
		recovered := func() {
			t.Helper()
			deadline := time.Now().Add(apiWait)
			for {
				a := e.call(tok, "GET", "/v1/chats", nil)
				if a.status == http.StatusOK {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery: %d %s", a.status, a.body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		recovered()

		// Dropped while the call is in flight (the upstream holds it).
		e.sim.Stall(true)
		before := e.sim.Stats().Requests
		req, _ := http.NewRequestWithContext(e.ctx, "GET", e.gw.URL+"/v1/chats", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		done := make(chan apiAnswer, 1)
		go func() {
			a, err := e.send(req)
			if err != nil {
				t.Error(err)
			}
			done <- a
		}()
		testwait.For(t, apiWait, "the call held upstream", func() bool { return e.sim.Stats().Requests > before })
		e.sim.RefuseConnections(20 * time.Second)
		e.sim.DropAll()
		e.sim.Stall(false)
		select {
		case a := <-done:
			e.wantError(a, http.StatusServiceUnavailable, httpapi.CodeConnectionLost, "")
		case <-time.After(apiWait):
			t.Fatal("the in-flight call did not end with the drop")
		}
		e.sim.RefuseConnections(0)
		recovered()
	})

	t.Run("TIMEOUT", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{}, gatewayOptions{session: func(c *session.Config) { c.Upstream.RequestTimeout = 300 * time.Millisecond }})
		const tok = "api-timeout"
		e.ok(e.call(tok, "GET", "/v1/session", nil), http.StatusOK, nil)
		e.sim.Stall(true)
		t.Cleanup(func() { e.sim.Stall(false) })
		start := time.Now()
		e.wantError(e.call(tok, "GET", "/v1/chats", nil), http.StatusGatewayTimeout, httpapi.CodeTimeout, "")
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("TIMEOUT after %v, want about the 300ms upstream timeout", d)
		}
		e.sim.Stall(false)
	})

	t.Run("OVERLOADED", func(t *testing.T) {
		t.Parallel()
		e := apiStart(t, chatiosim.Config{}, gatewayOptions{session: func(c *session.Config) { c.MaxSessions = 1 }})
		e.ok(e.call("api-overloaded-1", "GET", "/v1/session", nil), http.StatusOK, nil)
		e.wantError(e.call("api-overloaded-2", "GET", "/v1/session", nil), http.StatusServiceUnavailable, httpapi.CodeOverloaded, "")
		e.wantError(e.call("api-overloaded-2", "GET", "/v1/events", nil), http.StatusServiceUnavailable, httpapi.CodeOverloaded, "")
		// The first customer is not disturbed.
		e.ok(e.call("api-overloaded-1", "GET", "/v1/chats", nil), http.StatusOK, nil)
	})
}

// TestAPIFileUpload: a file goes through to the simulator (its file event)
// and comes back on the stream as new_event of type file.
func TestAPIFileUpload(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	const tok = "api-file"
	s, _ := e.connect(tok)
	chat := e.startChat(tok, "a file follows")
	content := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	body, form := apiUpload("upload-1", "report.pdf", "application/pdf", content)
	var res struct{ URL string }
	e.ok(e.upload(tok, chat.ID, body, form), http.StatusCreated, &res)

	var file *chatiosim.Event
	for _, ev := range e.sim.Events(chat.ID) {
		if ev.Type == "file" {
			file = &ev
		}
	}
	if file == nil {
		t.Fatalf("the simulator has no file event: %+v", e.sim.Events(chat.ID))
	}
	if file.URL != res.URL || file.ContentType != "application/pdf" || file.AuthorID != chatiosim.CustomerIDForToken(tok) {
		t.Errorf("simulator event %+v, answer url %s", file, res.URL)
	}
	if !strings.Contains(string(file.Raw), `"upload-1"`) {
		t.Errorf("customId not stored: %s", file.Raw)
	}
	got := apiReadUntil(t, s, func(m sseMessage) bool { ne, _ := apiParseNewEvent(m); return ne.Event.Type == "file" })
	ne, _ := apiParseNewEvent(got[len(got)-1])
	if ne.Chat != chat.ID || ne.Event.ID != file.ID || ne.Event.URL != res.URL || ne.Event.ContentType != "application/pdf" || ne.Event.CustomID != "upload-1" {
		t.Errorf("stream file event %s", got[len(got)-1].Data)
	}
}

// TestAPIHistoryPaging: history pages, followed by cursor while a new
// thread starts (close thread + new message between two page requests),
// never repeat or skip an event: their union is every event older than
// the first page's request, in order.
func TestAPIHistoryPaging(t *testing.T) {
	t.Parallel()
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{})
	const tok = "api-history"
	chat := e.startChat(tok, "t1 e0")
	// Four threads of 30 events (the SDK's page takes whole threads up to
	// at least 50 events: two threads a page).
	for th := 1; th <= 4; th++ {
		if th > 1 {
			if err := e.agent.CloseThread(chat.ID); err != nil {
				t.Fatal(err)
			}
			e.agentSays(chat.ID, fmt.Sprintf("t%d e0", th))
		}
		for i := 1; i < 30; i++ {
			e.agentSays(chat.ID, fmt.Sprintf("t%d e%d", th, i))
		}
	}
	var all []string
	for _, ev := range e.sim.Events(chat.ID) {
		all = append(all, ev.ID)
	}
	if len(all) != 120 {
		t.Fatalf("%d events, want 120", len(all))
	}

	type page struct {
		Events []apiEventOut `json:"events"`
		Done   bool          `json:"done"`
		Cursor string        `json:"cursor"`
	}
	var pages [][]string
	cursor := ""
	for i := 0; ; i++ {
		if i > 10 {
			t.Fatal("history does not end")
		}
		path := "/v1/chats/" + chat.ID + "/history"
		if cursor != "" {
			path += "?cursor=" + url.QueryEscape(cursor)
		}
		var raw json.RawMessage
		e.ok(e.call(tok, "GET", path, nil), http.StatusOK, &raw)
		var p page
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ev := range p.Events {
			ids = append(ids, ev.ID)
		}
		if len(ids) > 0 {
			pages = append(pages, ids)
		}
		if p.Done {
			// API.md: the cursor is present exactly when done is false,
			// so that while (cursor) ends.
			if bytes.Contains(raw, []byte(`"cursor"`)) {
				t.Fatalf("page %d: done, with a cursor: %s", i, raw)
			}
			break
		}
		if p.Cursor == "" {
			t.Fatalf("page %d: not done and no cursor", i)
		}
		cursor = p.Cursor
		if i == 0 {
			// A new thread starts while paging: the customer closes the
			// thread and writes again.
			e.ok(e.call(tok, "POST", "/v1/chats/"+chat.ID+"/close-thread", nil), http.StatusOK, nil)
			e.sendMessage(tok, chat.ID, "t5 e0")
			e.agentSays(chat.ID, "t5 e1")
		}
	}
	if len(pages) < 2 {
		t.Fatalf("%d pages, want several", len(pages))
	}
	// Newest page first, oldest→newest within a page: reversed pages
	// concatenated are the chat's events in order.
	var union []string
	for i := len(pages) - 1; i >= 0; i-- {
		union = append(union, pages[i]...)
	}
	if !slices.Equal(union, all) {
		t.Errorf("pages %v\nunion  %v\nwant   %v", pages, union, all)
	}
	if n := len(e.sim.Events(chat.ID)); n != 122 {
		t.Errorf("%d events after paging, want 122", n)
	}
}

// TestAPISneakPeekThrottle: PUTs faster than the throttle interval reach
// the upstream at most once per interval per chat, and the latest text
// wins.
func TestAPISneakPeekThrottle(t *testing.T) {
	t.Parallel()
	const interval = 400 * time.Millisecond
	e := apiStart(t, chatiosim.Config{}, gatewayOptions{session: func(c *session.Config) { c.SneakPeekInterval = interval }})
	const tok = "api-sneak"
	chats := [2]apiChat{e.startChat(tok, "one"), e.startChat(tok, "two")}
	acts, stop := e.sim.Watch(256)
	defer stop()

	// 12 PUTs per chat, 80 ms apart (about a second, two to three
	// intervals), the two chats interleaved.
	const n = 12
	start := time.Now()
	for i := range n {
		for k, c := range chats {
			e.ok(e.call(tok, "PUT", "/v1/chats/"+c.ID+"/sneak-peek", map[string]any{"text": fmt.Sprintf("chat %d text %d", k, i)}), http.StatusAccepted, nil)
		}
		time.Sleep(80 * time.Millisecond) // the PUTs' pace, faster than the throttle: the thing under test
	}
	span := time.Since(start)
	// The trailing sends come within an interval; an extra send would
	// show in the same window. What passes here is what is measured.
	time.Sleep(interval + 200*time.Millisecond)
	stop()

	type send struct {
		at   time.Time
		text string
	}
	sends := map[string][]send{}
	for a := range acts {
		if a.Action != "send_sneak_peek" {
			continue
		}
		var p struct {
			Text string `json:"sneak_peek_text"`
		}
		_ = json.Unmarshal(a.Payload, &p)
		sends[a.ChatID] = append(sends[a.ChatID], send{a.Time, p.Text})
	}
	// Sends go out when the interval has passed; their arrival may jitter
	// by the loopback's and the scheduler's delays.
	const jitter = 120 * time.Millisecond
	maxSends := int(span/interval) + 2
	for k, c := range chats {
		ss := sends[c.ID]
		if len(ss) < 2 || len(ss) > maxSends {
			t.Errorf("chat %d: %d upstream sneak peeks for %d PUTs over %v, want 2..%d", k, len(ss), n, span, maxSends)
		}
		for i := 1; i < len(ss); i++ {
			if gap := ss[i].at.Sub(ss[i-1].at); gap < interval-jitter {
				t.Errorf("chat %d: sneak peeks %d and %d only %v apart (interval %v)", k, i-1, i, gap, interval)
			}
		}
		last := fmt.Sprintf("chat %d text %d", k, n-1)
		if len(ss) > 0 && ss[len(ss)-1].text != last {
			t.Errorf("chat %d: last upstream text %q, want %q", k, ss[len(ss)-1].text, last)
		}
		if len(ss) > 0 && ss[0].text != fmt.Sprintf("chat %d text 0", k) {
			t.Errorf("chat %d: first upstream text %q, want the first PUT's (sent at once)", k, ss[0].text)
		}
		if info, _ := e.sim.Chat(c.ID); info.SneakPeek != last {
			t.Errorf("chat %d: the simulator holds %q, want %q", k, info.SneakPeek, last)
		}
	}
}
