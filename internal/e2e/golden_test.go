package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// golden is the sdk-oracle's output for a scenario.
type golden struct {
	Connect struct {
		Requests []Request            `json:"requests"`
		Events   [][2]json.RawMessage `json:"events"`
	} `json:"connect"`
	Steps    []goldenStep `json:"steps"`
	Problems []string     `json:"problems"`
}

type goldenStep struct {
	Index         int                  `json:"index"`
	Call          string               `json:"call"`
	Args          []json.RawMessage    `json:"args"`
	Iterator      string               `json:"iterator"`
	InFlight      bool                 `json:"inFlight"`
	SettledInStep *int                 `json:"settledInStep"`
	Requests      []Request            `json:"requests"`
	HTTP          []goldenUpload       `json:"http"`
	Result        *goldenResult        `json:"result"`
	Events        [][2]json.RawMessage `json:"events"`
	ResultPushes  []struct {
		Request      string               `json:"request"`
		AsPushEvents [][2]json.RawMessage `json:"asPushEvents"`
	} `json:"resultPushes"`
}

type goldenResult struct {
	Resolved json.RawMessage `json:"resolved"`
	Rejected json.RawMessage `json:"rejected"`
	Returned json.RawMessage `json:"returned"`
}

type goldenUpload struct {
	Method        string                     `json:"method"`
	Path          string                     `json:"path"`
	Query         map[string]any             `json:"query"`
	Authorization string                     `json:"authorization"`
	Fields        map[string]json.RawMessage `json:"fields"`
}

const oracleDir = "../../testdata/oracle"

// malformedOnPurpose are the scenarios whose wire frames are odd on
// purpose (testdata/oracle/edge-events.json: "unusual but parseable wire
// shapes, to pin serverDataParser's exact rules").
var malformedOnPurpose = map[string]bool{"edge-events": true}

// TestGoldenSDK replays every sdk-oracle scenario through the whole gateway:
// REST bodies must equal what the SDK resolved, upstream frames what it
// sent, stream events what it emitted.
//
// The scenarios run at the same time, each as a subtest started from a
// goroutine of its own: each has an upstream and a gateway of its own and
// shares nothing else. A scenario spends its time waiting (a quiet window
// after every step, the sneak-peek throttle), not computing, so they are
// not held to -parallel (GOMAXPROCS by default) as t.Parallel would: the
// whole test takes about as long as its longest scenario. The test itself
// is a parallel one: it runs beside the package's other parallel tests
// once the sequential ones (the stuck subscriber, chaos) are done.
func TestGoldenSDK(t *testing.T) {
	t.Parallel()
	scenarios, err := filepath.Glob(filepath.Join(oracleDir, "*.json"))
	if err != nil || len(scenarios) == 0 {
		t.Fatalf("no scenarios in %s: %v", oracleDir, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, path := range scenarios {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		wg.Go(func() {
			t.Run(name, func(t *testing.T) {
				sc, err := LoadScenario(path)
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(oracleDir, "golden", name+".json"))
				if err != nil {
					t.Fatalf("golden output: %v", err)
				}
				var g golden
				if err := json.Unmarshal(b, &g); err != nil {
					t.Fatal(err)
				}
				if len(g.Problems) > 0 {
					t.Fatalf("golden has problems: %v", g.Problems)
				}
				replay(t, sc, &g)
			})
		})
	}
}

// callResult is a REST answer.
type callResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func replay(t *testing.T, sc *Scenario, g *golden) {
	if refusedFirstLogin(sc) {
		adaptFreshToken(t, sc, g)
	}
	up := StartUpstream(sc)
	defer up.Close()
	gw := startGateway(t, up.URL(), 123)
	auth := http.Header{"Authorization": {"Bearer " + sc.Token}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Every answer and stream message is also checked against the
	// OpenAPI schemas: the SDK-exact bodies must fit the spec. Scenarios
	// that feed deliberately malformed wire shapes (numeric ids, a type
	// that is an array, …) pin how the SDK passes garbage through; no
	// schema should bless those, so they are compared with the SDK only.
	client := http.DefaultClient
	if !malformedOnPurpose[path.Base(t.Name())] {
		client = apiValidatingClient(t)
	}

	// Connect: the first subscriber creates the session (login, summary)
	// and gets customer_id, user_data…, connected.
	stream := apiOpenStreamWith(t, ctx, client, gw+"/v1/events", auth)
	stream.expectEvents(t, g.Connect.Events, 5*time.Second)
	compareRequests(t, "connect", up.TakeRequests(), g.Connect.Requests)

	cursors := map[string]string{} // history iterator → cursor
	inFlight := map[int]chan callResult{}
	for i, st := range sc.Steps {
		gs := g.Steps[i]
		up.BeginStep(st)
		var want [][2]json.RawMessage
		want = append(want, gs.Events...)
		switch {
		case st.Call != "":
			// API.md: every subscriber sees what the customer did over
			// REST, as the customer's other tabs would (the result push
			// as a plain push), less what the SDK already emitted.
			for _, rp := range gs.ResultPushes {
				for _, e := range rp.AsPushEvents {
					if n := string(e[0]); n != `"user_data"` && n != `"thread_summary"` {
						want = append(want, e)
					}
				}
			}
			done := make(chan callResult, 1)
			go func() { done <- doCall(ctx, client, gw, auth, st, cursors) }()
			if st.InFlight {
				inFlight[i] = done
				break
			}
			res := <-done
			checkResult(t, i, st, gs, res, cursors)
			if st.Call == "sendFile" {
				checkUploads(t, i, up.Uploads(), gs.HTTP)
			}
		case len(st.Push) > 0:
			if err := up.Push(ctx, st.pushFrames()); err != nil {
				t.Fatalf("step %d push: %v", i, err)
			}
		case st.Drop:
			up.Drop()
		case st.Wait != nil:
			// The scenario's own pause (the SDK's sneak-peek throttle is
			// what sneak-peek.json waits out): the time that passes is
			// the thing under test, on the gateway's real clock.
			time.Sleep(time.Duration(*st.Wait) * time.Millisecond)
		}
		stream.expectEvents(t, want, 5*time.Second)
		// Calls left in flight settle in a later step (a drop).
		for j, ch := range inFlight {
			if gs := g.Steps[j]; gs.SettledInStep != nil && *gs.SettledInStep == i {
				select {
				case res := <-ch:
					checkResult(t, j, sc.Steps[j], gs, res, cursors)
				case <-time.After(5 * time.Second):
					t.Fatalf("step %d: in-flight call of step %d did not settle", i, j)
				}
				delete(inFlight, j)
			}
		}
		stream.quiet(t, 150*time.Millisecond)
		compareRequests(t, fmt.Sprintf("step %d (%s)", i, stepKind(st)), up.TakeRequests(), gs.Requests)
		if p := up.Problems(); len(p) > 0 {
			t.Errorf("step %d: upstream problems: %v", i, p)
		}
	}
}

func stepKind(st ScenarioStep) string {
	switch {
	case st.Call != "":
		return st.Call
	case st.Drop:
		return "drop"
	case st.Wait != nil:
		return "wait"
	}
	return "push"
}

// compareRequests checks the frames the gateway sent upstream for the SDK's
// account (request ids aside).
func compareRequests(t *testing.T, where string, got, want []Request) {
	t.Helper()
	norm := func(rs []Request) []any {
		out := []any{}
		for _, r := range rs {
			m := map[string]any{"action": r.Action}
			if len(r.Payload) > 0 {
				var p any
				_ = json.Unmarshal(r.Payload, &p)
				m["payload"] = p
			}
			out = append(out, m)
		}
		return out
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: upstream requests\n got  %s\n want %s", where, mustMarshal(g), mustMarshal(w))
	}
}

// doCall makes the REST call API.md maps the SDK method to.
// historyEnded marks, in the cursors of replay, a history iterator whose
// last page has come (it had no cursor).
const historyEnded = "\x00ended"

func doCall(ctx context.Context, client *http.Client, gw string, auth http.Header, st ScenarioStep, cursors map[string]string) callResult {
	arg := func(i int) json.RawMessage {
		if i < len(st.Args) {
			return st.Args[i]
		}
		return nil
	}
	str := func(i int) string {
		var s string
		_ = json.Unmarshal(arg(i), &s)
		return s
	}
	chat := url.PathEscape(str(0))
	var method, path string
	var body io.Reader
	contentType := "application/json"
	jsonBody := func(r json.RawMessage) {
		if len(r) == 0 {
			r = json.RawMessage("{}")
		}
		body = bytes.NewReader(r)
	}
	switch st.Call {
	case "startChat":
		method, path = "POST", "/v1/chats"
		jsonBody(arg(0))
	case "getChatsSummary":
		method, path = "GET", "/v1/chats"+pagination(arg(0))
	case "getChatThreads":
		var ids []string
		_ = json.Unmarshal(arg(1), &ids)
		method, path = "GET", "/v1/chats/"+chat+"/threads?ids="+url.QueryEscape(strings.Join(ids, ","))
	case "getChatThreadsSummary":
		method, path = "GET", "/v1/chats/"+chat+"/threads-summary"+pagination(arg(1))
	case "getChatHistory.next":
		it := st.Iterator
		if it == "" {
			it = str(0)
		}
		if cursors[it] == historyEnded {
			// The SDK's next() after the end resolves {done: true} and
			// sends nothing; over HTTP the last page had no cursor, so a
			// client (while (cursor)) asks nothing either.
			return callResult{status: http.StatusOK, body: []byte(`{"events":[],"done":true}`)}
		}
		method, path = "GET", "/v1/chats/"+chat+"/history"
		if c := cursors[it]; c != "" {
			path += "?cursor=" + url.QueryEscape(c)
		}
	case "sendEvent":
		method, path = "POST", "/v1/chats/"+chat+"/events"
		jsonBody(arg(1))
	case "sendMessage":
		method, path = "POST", "/v1/chats/"+chat+"/messages"
		jsonBody(arg(1))
	case "sendFile":
		method, path = "POST", "/v1/chats/"+chat+"/files"
		var b bytes.Buffer
		contentType, body = multipartFile(&b, arg(1))
	case "closeThread":
		method, path = "POST", "/v1/chats/"+chat+"/close-thread"
	case "updateChatProperties":
		method, path = "PATCH", "/v1/chats/"+chat+"/properties"
		jsonBody(arg(1))
	case "updateChatThreadProperties":
		method, path = "PATCH", "/v1/chats/"+chat+"/threads/"+url.PathEscape(str(1))+"/properties"
		jsonBody(arg(2))
	case "updateCustomer":
		method, path = "PATCH", "/v1/customer"
		jsonBody(arg(0))
	case "updateLastSeenTimestamp":
		method, path = "POST", "/v1/chats/"+chat+"/last-seen"
		if ts := arg(1); len(ts) > 0 {
			jsonBody(json.RawMessage(`{"timestamp":` + string(ts) + `}`))
		} else {
			jsonBody(nil)
		}
	case "setSneakPeek":
		method, path = "PUT", "/v1/chats/"+chat+"/sneak-peek"
		jsonBody(json.RawMessage(mustMarshal(map[string]string{"text": str(1)})))
	default:
		return callResult{err: fmt.Errorf("unknown call %s", st.Call)}
	}
	req, err := http.NewRequestWithContext(ctx, method, gw+path, body)
	if err != nil {
		return callResult{err: err}
	}
	req.Header = auth.Clone()
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return callResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return callResult{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

func pagination(r json.RawMessage) string {
	var p map[string]json.RawMessage
	_ = json.Unmarshal(r, &p)
	q := url.Values{}
	for _, k := range []string{"offset", "limit"} {
		if v, ok := p[k]; ok {
			q.Set(k, string(v))
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// multipartFile builds the sendFile body from the scenario's file spec.
func multipartFile(b *bytes.Buffer, r json.RawMessage) (string, io.Reader) {
	var spec struct {
		File struct {
			Name   string `json:"name"`
			Type   string `json:"type"`
			Text   string `json:"text"`
			Base64 string `json:"base64"`
			Size   *int64 `json:"size"`
		} `json:"file"`
		CustomID string `json:"customId"`
	}
	_ = json.Unmarshal(r, &spec)
	mw := multipart.NewWriter(b)
	var content io.Reader = strings.NewReader(spec.File.Text)
	if spec.File.Base64 != "" {
		raw, _ := base64.StdEncoding.DecodeString(spec.File.Base64)
		content = bytes.NewReader(raw)
	}
	if spec.File.Size != nil {
		content = io.LimitReader(repeatReader('a'), *spec.File.Size)
	}
	if spec.CustomID != "" {
		_ = mw.WriteField("customId", spec.CustomID)
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, spec.File.Name)}
	h["Content-Type"] = []string{spec.File.Type}
	w, _ := mw.CreatePart(h)
	_, _ = io.Copy(w, content)
	_ = mw.Close()
	return mw.FormDataContentType(), b
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// statusFor is the status API.md gives a successful call.
func statusFor(call string) int {
	switch call {
	case "startChat", "sendEvent", "sendMessage", "sendFile":
		return http.StatusCreated
	case "setSneakPeek":
		return http.StatusAccepted
	}
	return http.StatusOK
}

// errorStatus is API.md's status for an SDK rejection.
func errorStatus(code, typ string) []int {
	switch code {
	case "INVALID_ARGS":
		return []int{400, 413}
	case "AUTHENTICATION":
		return []int{401}
	case "CONNECTION_LOST", "OVERLOADED":
		return []int{503}
	case "TIMEOUT":
		return []int{504}
	case "REQUEST_FAILED":
		switch typ {
		case "validation":
			return []int{400}
		case "not_found":
			return []int{404}
		case "too_many_requests":
			return []int{429}
		}
		return []int{502}
	}
	return nil
}

func checkResult(t *testing.T, i int, st ScenarioStep, gs goldenStep, res callResult, cursors map[string]string) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("step %d %s: %v", i, st.Call, res.err)
	}
	switch {
	case gs.Result == nil:
		t.Fatalf("step %d: golden has no result", i)
	case gs.Result.Rejected != nil:
		var rej struct {
			Code    string          `json:"code"`
			Reason  string          `json:"reason"`
			Type    string          `json:"type"`
			Message string          `json:"message"`
			Error   json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(gs.Result.Rejected, &rej)
		var errText string
		if rej.Code == "" {
			// sendFile: the SDK rejects with the upload's error body as is,
			// {error: {type, message}}; API.md gives every error a code,
			// so the gateway answers REQUEST_FAILED with that type.
			var up struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(rej.Error, &up)
			rej.Code, rej.Type, rej.Message = "REQUEST_FAILED", up.Type, up.Message
		} else {
			_ = json.Unmarshal(rej.Error, &errText) // AUTHENTICATION: {code, error: message}
		}
		var got struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if err := json.Unmarshal(res.body, &got); err != nil {
			t.Fatalf("step %d: error body %q: %v", i, res.body, err)
		}
		// The text is the SDK's reason, the upstream's message, or the
		// authentication error's text; with none, any message will do.
		wantMsg := rej.Reason + rej.Message + errText
		if got.Code != rej.Code || (wantMsg != "" && got.Message != wantMsg) || got.Message == "" || got.Type != rej.Type {
			t.Errorf("step %d %s: error\n got  %s (status %d)\n want %s", i, st.Call, res.body, res.status, gs.Result.Rejected)
		}
		if ok := errorStatus(rej.Code, rej.Type); !containsInt(ok, res.status) {
			t.Errorf("step %d %s: status %d, want one of %v", i, st.Call, res.status, ok)
		}
		if rej.Code == "CONNECTION_LOST" && res.header.Get("Retry-After") == "" {
			t.Errorf("step %d: CONNECTION_LOST without Retry-After", i)
		}
	case st.Call == "setSneakPeek":
		if res.status != http.StatusAccepted || !sameJSON(res.body, json.RawMessage("{}")) {
			t.Errorf("step %d setSneakPeek: %d %s, want 202 {}", i, res.status, res.body)
		}
	case st.Call == "getChatHistory.next":
		var want struct {
			Value json.RawMessage `json:"value"`
			Done  bool            `json:"done"`
		}
		_ = json.Unmarshal(gs.Result.Resolved, &want)
		var got struct {
			Events json.RawMessage `json:"events"`
			Done   bool            `json:"done"`
			Cursor string          `json:"cursor"`
		}
		if err := json.Unmarshal(res.body, &got); err != nil || res.status != 200 {
			t.Fatalf("step %d history: %d %s", i, res.status, res.body)
		}
		if want.Value == nil {
			want.Value = json.RawMessage("[]") // the SDK's {done: true} after the end
		}
		if !sameJSON(got.Events, want.Value) || got.Done != want.Done {
			t.Errorf("step %d history:\n got  %s\n want %s", i, res.body, gs.Result.Resolved)
		}
		// API.md: the cursor is present exactly when done is false.
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(res.body, &fields)
		if _, has := fields["cursor"]; has == got.Done || has && got.Cursor == "" {
			t.Errorf("step %d history: done %v with cursor %q: %s", i, got.Done, got.Cursor, res.body)
		}
		it := st.Iterator
		if it == "" {
			var s string
			_ = json.Unmarshal(st.Args[0], &s)
			it = s
		}
		cursors[it] = got.Cursor
		if got.Done {
			cursors[it] = historyEnded
		}
	default:
		if res.status != statusFor(st.Call) {
			t.Errorf("step %d %s: status %d, want %d (%s)", i, st.Call, res.status, statusFor(st.Call), res.body)
		}
		if !sameJSON(res.body, gs.Result.Resolved) {
			t.Errorf("step %d %s:\n got  %s\n want %s", i, st.Call, res.body, gs.Result.Resolved)
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// checkUploads compares the upload the fake upstream received with the one
// the SDK made.
func checkUploads(t *testing.T, i int, got []Upload, want []goldenUpload) {
	t.Helper()
	if len(want) == 0 {
		return // refused before upload (INVALID_ARGS)
	}
	if len(got) == 0 {
		t.Fatalf("step %d: no upload reached the upstream", i)
	}
	g, w := got[len(got)-1], want[len(want)-1]
	if g.Authorization != w.Authorization {
		t.Errorf("step %d upload authorization %q, want %q", i, g.Authorization, w.Authorization)
	}
	q, _ := url.ParseQuery(g.Query)
	if fmt.Sprint(w.Query["license_id"]) != q.Get("license_id") {
		t.Errorf("step %d upload query %q, want license_id %v", i, g.Query, w.Query["license_id"])
	}
	for k, v := range w.Fields {
		var s string
		if json.Unmarshal(v, &s) == nil {
			if g.Fields[k] != s {
				t.Errorf("step %d upload field %s = %q, want %q", i, k, g.Fields[k], s)
			}
			continue
		}
		var f struct {
			Filename    string `json:"filename"`
			ContentType string `json:"contentType"`
			Size        int64  `json:"size"`
		}
		_ = json.Unmarshal(v, &f)
		if g.FileName != f.Filename || g.FileType != f.ContentType || g.FileSize != f.Size {
			t.Errorf("step %d upload file %s/%s/%d, want %s/%s/%d", i, g.FileName, g.FileType, g.FileSize, f.Filename, f.ContentType, f.Size)
		}
	}
}

// refusedFirstLogin reports whether the scenario's first login is refused
// with an authentication error (the SDK then logs in again with a fresh
// token from its auth package).
func refusedFirstLogin(sc *Scenario) bool {
	if len(sc.Login) < 3 || len(sc.Login[0]) == 0 {
		return false
	}
	var f struct {
		Action  string `json:"action"`
		Success bool   `json:"success"`
		Payload struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"payload"`
	}
	_ = json.Unmarshal(sc.Login[0][0], &f)
	return f.Action == "login" && !f.Success && f.Payload.Error.Type == "authentication"
}

// adaptFreshToken handles a scenario whose first login is refused. The
// gateway has only the bearer token the client sent, no auth package to
// ask for a fresh one: a refused login is the client's 401. The test checks
// that, then replays the rest of the scenario as if the first login had
// succeeded: the refused login is dropped from the replies and from the
// expected requests, and the fresh token is the client's token.
func adaptFreshToken(t *testing.T, sc *Scenario, g *golden) {
	t.Helper()
	refused := &Scenario{Token: sc.Token, CustomerID: sc.CustomerID, Login: sc.Login[:1]}
	up := StartUpstream(refused)
	defer up.Close()
	gw := startGateway(t, up.URL(), 123)
	req, _ := http.NewRequest(http.MethodGet, gw+"/v1/session", nil)
	req.Header.Set("Authorization", "Bearer "+sc.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct{ Code, Message string }
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusUnauthorized || e.Code != "AUTHENTICATION" || e.Message == "" {
		t.Fatalf("refused login: %d %s, want 401 AUTHENTICATION", resp.StatusCode, body)
	}

	sc.Login = sc.Login[1:]
	if len(g.Connect.Requests) > 0 && g.Connect.Requests[0].Action == "login" {
		g.Connect.Requests = g.Connect.Requests[1:]
	}
	for i := range g.Connect.Requests {
		g.Connect.Requests[i].Payload = replaceToken(g.Connect.Requests[i].Payload, sc.Token)
	}
	for i := range g.Steps {
		for j := range g.Steps[i].Requests {
			g.Steps[i].Requests[j].Payload = replaceToken(g.Steps[i].Requests[j].Payload, sc.Token)
		}
	}
}

// replaceToken sets a login payload's token to "Bearer "+token.
func replaceToken(p json.RawMessage, token string) json.RawMessage {
	var m map[string]any
	if json.Unmarshal(p, &m) != nil {
		return p
	}
	if _, ok := m["token"]; !ok {
		return p
	}
	m["token"] = "Bearer " + token
	return json.RawMessage(mustMarshal(m))
}
