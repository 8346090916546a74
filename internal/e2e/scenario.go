package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// Scenario is an sdk-oracle scenario (see testdata/oracle/README.md).
type Scenario struct {
	Description string                     `json:"description"`
	Token       string                     `json:"token"`
	CustomerID  string                     `json:"customerId"`
	Login       [][]json.RawMessage        `json:"login"`
	Chats       map[string]json.RawMessage `json:"chats"`
	Steps       []ScenarioStep             `json:"steps"`
}

// ScenarioStep is one step: a call, a push, a drop or a wait.
type ScenarioStep struct {
	Call     string              `json:"call"`
	Args     []json.RawMessage   `json:"args"`
	Reply    []json.RawMessage   `json:"reply"`
	Replies  [][]json.RawMessage `json:"replies"`
	HTTP     *scenarioHTTP       `json:"http"`
	InFlight bool                `json:"inFlight"`
	Iterator string              `json:"iterator"`
	Push     json.RawMessage     `json:"push"`
	Drop     bool                `json:"drop"`
	Relogin  [][]json.RawMessage `json:"relogin"`
	Wait     *float64            `json:"wait"`
}

type scenarioHTTP struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// replyLists returns the step's reply lists ("reply" is one list).
func (s ScenarioStep) replyLists() [][]json.RawMessage {
	if s.Reply != nil {
		return [][]json.RawMessage{s.Reply}
	}
	if s.Drop {
		return s.Relogin
	}
	return s.Replies
}

// pushFrames returns the frames of a push step.
func (s ScenarioStep) pushFrames() []json.RawMessage {
	if len(s.Push) == 0 {
		return nil
	}
	if s.Push[0] == '[' {
		var fs []json.RawMessage
		_ = json.Unmarshal(s.Push, &fs)
		return fs
	}
	return []json.RawMessage{s.Push}
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Scenario
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Request is a frame the fake upstream received, without its request id.
type Request struct {
	Action  string          `json:"action"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Upload is a file upload the fake upstream received.
type Upload struct {
	Query         string
	Authorization string
	Fields        map[string]string // payload.chat_id, payload.custom_id
	FileName      string
	FileType      string
	FileSize      int64
}

// replyBook holds the unused reply lists of one step.
type replyBook struct {
	lists [][]json.RawMessage
	used  []bool
}

func newReplyBook(lists [][]json.RawMessage) *replyBook {
	return &replyBook{lists: lists, used: make([]bool, len(lists))}
}

// replyAction is the action a list answers: that of its first frame whose
// request_id is "$REQ", else that of its first frame.
func replyAction(frames []json.RawMessage) string {
	type head struct {
		RequestID any    `json:"request_id"`
		Action    string `json:"action"`
	}
	var first string
	for i, f := range frames {
		var h head
		_ = json.Unmarshal(f, &h)
		if i == 0 {
			first = h.Action
		}
		if h.RequestID == "$REQ" {
			return h.Action
		}
	}
	return first
}

func (b *replyBook) take(action string) []json.RawMessage {
	if b == nil {
		return nil
	}
	for i, l := range b.lists {
		if !b.used[i] && replyAction(l) == action {
			b.used[i] = true
			return l
		}
	}
	return nil
}

func (b *replyBook) unused() []string {
	if b == nil {
		return nil
	}
	var out []string
	for i, l := range b.lists {
		if !b.used[i] {
			out = append(out, replyAction(l))
		}
	}
	return out
}

// Upstream is a fake chat.io that plays a scenario the way the oracle does.
// The login response also carries {"customer_id": scenario.customerId}: the
// gateway learns the customer's id from it (the SDK got it from its auth
// package, which the gateway does not have).
type Upstream struct {
	sc  *Scenario
	srv *httptest.Server

	mu       sync.Mutex
	conn     *websocket.Conn // guarded by mu: the open socket
	book     *replyBook      // guarded by mu: the current step's replies
	login    *replyBook      // guarded by mu: replies for connect-time requests
	http     *scenarioHTTP   // guarded by mu: the current step's upload answer
	requests []Request       // guarded by mu
	uploads  []Upload        // guarded by mu
	problems []string        // guarded by mu
	sockets  int             // guarded by mu: sockets accepted so far

	lastSummary []json.RawMessage // guarded by mu: the last connect-time get_chats_summary answer
	historyStep bool              // guarded by mu: the current step pages history (model answers are the SDK's)
	inFlight    bool              // guarded by mu: the current step's call is left unanswered
}

// StartUpstream serves sc on 127.0.0.1.
func StartUpstream(sc *Scenario) *Upstream {
	u := &Upstream{sc: sc, login: newReplyBook(sc.Login)}
	mux := http.NewServeMux()
	mux.HandleFunc("/customer/v0.5/rtm/ws", u.serveWS)
	mux.HandleFunc("/customer/v0.5/action/send_file", u.serveFile)
	u.srv = httptest.NewUnstartedServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	u.srv.Listener = ln
	u.srv.Start()
	return u
}

// URL is the CHATIO_URL of the fake upstream.
func (u *Upstream) URL() string {
	return "ws" + strings.TrimPrefix(u.srv.URL, "http") + "/customer/v0.5"
}

// Close stops the server.
func (u *Upstream) Close() {
	u.mu.Lock()
	if u.conn != nil {
		u.conn.CloseNow()
	}
	u.mu.Unlock()
	u.srv.CloseClientConnections()
	u.srv.Close()
}

// BeginStep makes step's replies the ones answered from now on.
func (u *Upstream) BeginStep(st ScenarioStep) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if st.Drop {
		u.login = newReplyBook(st.Relogin)
		u.book = nil
	} else {
		u.book = newReplyBook(st.replyLists())
	}
	u.http = st.HTTP
	u.historyStep = st.Call == "getChatHistory.next"
	u.inFlight = st.InFlight
	u.problems = nil
}

// TakeRequests returns and forgets the requests received so far.
func (u *Upstream) TakeRequests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.requests
	u.requests = nil
	return r
}

// Uploads returns the uploads received so far.
func (u *Upstream) Uploads() []Upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Upload(nil), u.uploads...)
}

// Problems returns requests that had no answer and unused reply lists of
// the current step.
func (u *Upstream) Problems() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := append([]string(nil), u.problems...)
	for _, a := range u.book.unused() {
		p = append(p, "unused reply list for "+a)
	}
	return p
}

// Sockets is how many sockets were accepted so far.
func (u *Upstream) Sockets() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sockets
}

// Push writes frames to the open socket.
func (u *Upstream) Push(ctx context.Context, frames []json.RawMessage) error {
	u.mu.Lock()
	c := u.conn
	u.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no open socket")
	}
	for _, f := range frames {
		if err := c.Write(ctx, websocket.MessageText, f); err != nil {
			return err
		}
	}
	return nil
}

// Drop closes the open socket abruptly.
func (u *Upstream) Drop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		u.conn.CloseNow()
		u.conn = nil
	}
}

func (u *Upstream) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 22)
	u.mu.Lock()
	u.conn = c
	u.sockets++
	u.mu.Unlock()
	ctx := r.Context()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		u.answer(ctx, c, data)
	}
}

func (u *Upstream) answer(ctx context.Context, c *websocket.Conn, data []byte) {
	var req struct {
		RequestID string          `json:"request_id"`
		Action    string          `json:"action"`
		Payload   json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		u.problem("undecodable request: " + string(data))
		return
	}
	frames, sdkRequest := u.lookUp(req.Action)
	if frames == nil {
		frames = u.fromModel(req.RequestID, req.Action, req.Payload)
	}
	if frames == nil && !sdkRequest {
		frames = u.ownAnswer(req.RequestID, req.Action)
	}
	if sdkRequest {
		u.mu.Lock()
		u.requests = append(u.requests, Request{Action: req.Action, Payload: req.Payload})
		u.mu.Unlock()
	}
	if frames == nil {
		u.mu.Lock()
		inFlight := u.inFlight
		u.mu.Unlock()
		if !inFlight {
			u.problem("no reply for " + req.Action)
		}
		return
	}
	for _, f := range frames {
		out := substitute(f, req.RequestID)
		if req.Action == "login" {
			out = withCustomerID(out, u.sc.CustomerID)
		}
		if err := c.Write(ctx, websocket.MessageText, out); err != nil {
			return
		}
	}
}

// lookUp finds the scripted reply for action: connect-time requests from the
// login lists, others from the current step's. sdkRequest tells whether the
// request is one the SDK would have sent in this step (scripted, or a
// history look-up answered by the model), as opposed to one the gateway
// makes on its own account (keepalive, a new subscriber's summary, gap
// filling after a reconnect).
func (u *Upstream) lookUp(action string) (frames []json.RawMessage, sdkRequest bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if frames = u.login.take(action); frames != nil {
		if action == "get_chats_summary" {
			u.lastSummary = frames
		}
		return frames, true
	}
	if frames = u.book.take(action); frames != nil {
		return frames, true
	}
	if u.historyStep && (action == "get_chat_threads_summary" || action == "get_chat_threads") {
		return nil, true
	}
	// Anything but the gateway's own kinds of request (keepalive, summary,
	// look-ups) is the SDK's, scripted or not: an unscripted one is
	// answered by nobody (an in-flight step) or is a problem.
	return nil, !ownKinds[action]
}

// ownKinds are the requests the gateway may make on its own account.
var ownKinds = map[string]bool{
	"ping": true, "get_chats_summary": true,
	"get_chat_threads_summary": true, "get_chat_threads": true,
}

// ownAnswer answers the gateway's own requests: pings succeed, a summary is
// the last connect-time summary, look-ups the model cannot answer are
// not_found.
func (u *Upstream) ownAnswer(reqID, action string) []json.RawMessage {
	switch action {
	case "ping":
		return []json.RawMessage{mustJSON(map[string]any{"request_id": reqID, "action": action, "type": "response", "success": true, "payload": map[string]any{}})}
	case "get_chats_summary":
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.lastSummary
	case "get_chat_threads_summary", "get_chat_threads":
		return []json.RawMessage{mustJSON(map[string]any{"request_id": reqID, "action": action, "type": "response", "success": false,
			"payload": map[string]any{"error": map[string]any{"type": "not_found", "message": "Chat not found"}}})}
	}
	return nil
}

func (u *Upstream) problem(p string) {
	u.mu.Lock()
	u.problems = append(u.problems, p)
	u.mu.Unlock()
}

// fromModel answers get_chat_threads_summary and get_chat_threads from the
// scenario's chats model (a port of the oracle's lib/model.js).
func (u *Upstream) fromModel(reqID, action string, payload json.RawMessage) []json.RawMessage {
	var p struct {
		ChatID    string   `json:"chat_id"`
		Offset    *float64 `json:"offset"`
		Limit     *float64 `json:"limit"`
		ThreadIDs []string `json:"thread_ids"`
	}
	_ = json.Unmarshal(payload, &p)
	raw, ok := u.sc.Chats[p.ChatID]
	if !ok {
		return nil
	}
	var chat struct {
		Users   json.RawMessage   `json:"users"`
		Threads []json.RawMessage `json:"threads"`
	}
	if err := json.Unmarshal(raw, &chat); err != nil {
		return nil
	}
	type head struct {
		ID     string            `json:"id"`
		Order  float64           `json:"order"`
		Events []json.RawMessage `json:"events"`
	}
	heads := make([]head, len(chat.Threads))
	for i, t := range chat.Threads {
		_ = json.Unmarshal(t, &heads[i])
	}
	resp := func(pl any) []json.RawMessage {
		return []json.RawMessage{mustJSON(map[string]any{"request_id": reqID, "action": action, "type": "response", "success": true, "payload": pl})}
	}
	switch action {
	case "get_chat_threads_summary":
		offset, limit := 0, 25
		if p.Offset != nil && *p.Offset == float64(int(*p.Offset)) {
			offset = int(*p.Offset)
		}
		if p.Limit != nil && *p.Limit == float64(int(*p.Limit)) {
			limit = int(*p.Limit)
		}
		idx := make([]int, len(heads))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return heads[idx[a]].Order > heads[idx[b]].Order })
		page := []map[string]any{}
		for i := offset; i < len(idx) && i < offset+limit; i++ {
			h := heads[idx[i]]
			page = append(page, map[string]any{"id": h.ID, "order": h.Order, "events_count": len(h.Events)})
		}
		return resp(map[string]any{"threads_summary": page, "total_threads": len(heads)})
	case "get_chat_threads":
		threads := []json.RawMessage{}
		for _, id := range p.ThreadIDs {
			found := false
			for i, h := range heads {
				if h.ID == id {
					threads = append(threads, chat.Threads[i])
					found = true
					break
				}
			}
			if !found {
				return []json.RawMessage{mustJSON(map[string]any{"request_id": reqID, "action": action, "type": "response", "success": false,
					"payload": map[string]any{"error": map[string]any{"type": "not_found", "message": "Thread not found"}}})}
			}
		}
		return resp(map[string]any{"chat": map[string]any{"id": p.ChatID, "threads": threads, "users": chat.Users}})
	}
	return nil
}

func (u *Upstream) serveFile(w http.ResponseWriter, r *http.Request) {
	up := Upload{Query: r.URL.RawQuery, Authorization: r.Header.Get("Authorization"), Fields: map[string]string{}}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, "bad content type", http.StatusBadRequest)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, "bad multipart", http.StatusBadRequest)
			return
		}
		if part.FileName() != "" {
			up.FileName = part.FileName()
			up.FileType = part.Header.Get("Content-Type")
			up.FileSize, _ = io.Copy(io.Discard, part)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(part, 1<<16))
		up.Fields[part.FormName()] = string(b)
	}
	u.mu.Lock()
	u.uploads = append(u.uploads, up)
	ans := u.http
	u.mu.Unlock()
	if ans == nil {
		http.Error(w, "no scripted answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Body)
}

// substitute replaces every "$REQ" string in frame with id, in the raw
// bytes: decoding would lose the wire's key order, on which the SDK's
// results depend (lastEvent ties, candidate order).
func substitute(frame json.RawMessage, id string) json.RawMessage {
	q, _ := json.Marshal(id)
	return bytes.ReplaceAll(frame, []byte(`"$REQ"`), q)
}

// withCustomerID adds customer_id to a successful login response's payload.
func withCustomerID(frame json.RawMessage, id string) json.RawMessage {
	var f map[string]any
	if json.Unmarshal(frame, &f) != nil || f["type"] != "response" || f["success"] != true {
		return frame
	}
	p, _ := f["payload"].(map[string]any)
	if p == nil {
		p = map[string]any{}
	}
	p["customer_id"] = id
	f["payload"] = p
	return mustJSON(f)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
