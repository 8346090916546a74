package sdk

// Replays the SDK oracle's golden files (testdata/oracle/golden, made by
// running the real SDK 0.9.1 on the scenarios in testdata/oracle) at the
// level of the conversion functions of sdk.go: the frames of each scenario
// go through ParseChatsSummary, PushEvents, ParseResult, ResultEvents and
// ResultPushEvents the way socketListener.js and sideEffects.js route
// them, and what comes out must equal, as JSON values and in key order, what
// the SDK resolved, rejected and emitted.
//
// Nothing here runs node or reads outside this repository: the scenarios and
// their outputs are committed copies. To change a scenario, run the oracle
// again (README of the sdk-oracle tool) and commit the new golden file.
//
// What this layer cannot express is skipped here and left to the gateway's
// end-to-end golden test (which replays the same files against the running
// gateway and a fake upstream):
//   - the SDK's own argument checks (INVALID_ARGS: chat/thread summary
//     limits, the 10 MiB file limit), which send nothing upstream;
//   - sendFile's HTTP upload and its answer;
//   - the requests the SDK sends (step.requests): the client's business;
//   - the getChatHistory iterator's paging (which threads a page asks for,
//     done); only each page's events are checked here, from the threads the
//     page's requests asked for;
//   - setSneakPeek's throttle;
//   - a socket drop rejecting in-flight calls with CONNECTION_LOST.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

const oracleDir = "../../testdata/oracle"

// --- scenario files (the oracle's input) ---

type oracleScenario struct {
	Description string                     `json:"description"`
	Token       string                     `json:"token"`
	CustomerID  string                     `json:"customerId"`
	Login       [][]json.RawMessage        `json:"login"`
	Chats       map[string]oracleModelChat `json:"chats"`
	Steps       []oracleStep               `json:"steps"`
}

type oracleModelChat struct {
	Users   json.RawMessage   `json:"users"`
	Threads []json.RawMessage `json:"threads"`
}

type oracleStep struct {
	Call     string              `json:"call"`
	Args     []json.RawMessage   `json:"args"`
	Reply    []json.RawMessage   `json:"reply"`
	Replies  [][]json.RawMessage `json:"replies"`
	Push     json.RawMessage     `json:"push"`
	Drop     bool                `json:"drop"`
	Relogin  [][]json.RawMessage `json:"relogin"`
	Wait     *float64            `json:"wait"`
	InFlight bool                `json:"inFlight"`
	HTTP     json.RawMessage     `json:"http"`
}

// replyLists is the step's reply lists (reply is shorthand for one).
func (s oracleStep) replyLists() [][]json.RawMessage {
	if s.Reply != nil {
		return [][]json.RawMessage{s.Reply}
	}
	return s.Replies
}

// pushFrames is the step's push: one frame or a list.
func (s oracleStep) pushFrames(t *testing.T) []json.RawMessage {
	t.Helper()
	p := bytes.TrimSpace(s.Push)
	if len(p) > 0 && p[0] == '[' {
		var fs []json.RawMessage
		mustUnmarshal(t, p, &fs)
		return fs
	}
	return []json.RawMessage{p}
}

// --- golden files (the oracle's output) ---

type goldenOutput struct {
	Scenario string `json:"scenario"`
	SDK      string `json:"sdk"`
	Connect  struct {
		Requests []goldenRequest `json:"requests"`
		Events   json.RawMessage `json:"events"`
	} `json:"connect"`
	Steps    []goldenStep `json:"steps"`
	Problems []string     `json:"problems"`
}

type goldenRequest struct {
	Action  string          `json:"action"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type goldenStep struct {
	Index               int                `json:"index"`
	Call                string             `json:"call"`
	Requests            []goldenRequest    `json:"requests"`
	Result              *goldenResult      `json:"result"`
	SettledInStep       *int               `json:"settledInStep"`
	Events              json.RawMessage    `json:"events"`
	ResultPushes        []goldenResultPush `json:"resultPushes"`
	UnhandledRejections []json.RawMessage  `json:"unhandledRejections"`
	SDKErrors           []string           `json:"sdkErrors"`
}

type goldenResult struct {
	Resolved json.RawMessage `json:"resolved"`
	Rejected json.RawMessage `json:"rejected"`
	Returned json.RawMessage `json:"returned"`
	Threw    *string         `json:"threw"`
	Pending  bool            `json:"pending"`
}

type goldenResultPush struct {
	Request      *string         `json:"request"`
	Action       string          `json:"action"`
	AsPushEvents json.RawMessage `json:"asPushEvents"`
}

// sdkThrowsMarker is how the oracle writes a push the SDK throws on.
const sdkThrowsMarker = "(the SDK throws on this push)"

func TestGoldenOracle(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(oracleDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d scenarios under %s", len(files), oracleDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			var sc oracleScenario
			var g goldenOutput
			readJSON(t, file, &sc)
			readJSON(t, filepath.Join(oracleDir, "golden", name+".json"), &g)
			if len(g.Problems) > 0 {
				t.Fatalf("golden output has problems (a broken scenario): %q", g.Problems)
			}
			if g.Scenario != name || g.SDK != "@livechat/chat.io-customer-sdk@0.9.1" {
				t.Fatalf("golden output is for scenario %q, SDK %q", g.Scenario, g.SDK)
			}
			if len(g.Steps) != len(sc.Steps) {
				t.Fatalf("scenario has %d steps, golden output %d: regenerate it", len(sc.Steps), len(g.Steps))
			}
			replayConnect(t, &sc, &g)
			for i := range sc.Steps {
				st, gs := sc.Steps[i], g.Steps[i]
				t.Run(fmt.Sprintf("step%02d", i), func(t *testing.T) {
					if len(gs.SDKErrors) > 0 {
						t.Fatalf("the SDK threw in this step: %q", gs.SDKErrors)
					}
					if gs.Index != i || gs.Call != st.Call {
						t.Fatalf("golden step %d is %q, scenario step %d %q: regenerate", gs.Index, gs.Call, i, st.Call)
					}
					switch {
					case st.Call != "":
						replayCall(t, &sc, st, gs)
					case st.Push != nil:
						replayPush(t, st, gs)
					case st.Drop:
						replayDrop(t, st, gs)
					case st.Wait != nil:
						replayWait(t, st, gs)
					default:
						t.Fatalf("step of no known kind")
					}
				})
			}
		})
	}
}

// replayConnect: the SDK emits customer_id (the token's entity id), then,
// once get_chats_summary answers, user_data per user of every summary and
// connected {chatsSummary, totalChats} (sideEffects.js, socket_connected).
func replayConnect(t *testing.T, sc *oracleScenario, g *goldenOutput) {
	t.Helper()
	summary := findReply(t, sc.Login, chatio.ActionGetChatsSummary)
	evs := []Event{{EventCustomerID, sc.CustomerID}}
	evs = append(evs, summaryConnectEvents(t, summary, EventConnected)...)
	compareEvents(t, "connect.events", g.Connect.Events, evs)
}

// summaryConnectEvents answers a get_chats_summary reply list: user_data per
// user, then name (connected or connection_restored) with the summary.
func summaryConnectEvents(t *testing.T, frames []json.RawMessage, name string) []Event {
	t.Helper()
	f := decodeFrame(t, frames[0])
	if f.Type != chatio.TypeResponse || f.Success == nil || !*f.Success {
		t.Fatalf("get_chats_summary reply is not a successful response: %s", frames[0])
	}
	cs, users, err := ParseChatsSummary(f.Payload)
	if err != nil {
		t.Fatalf("ParseChatsSummary: %v", err)
	}
	return append(users, Event{name, cs})
}

// findReply returns the reply list answering action (scenario.js replyAction:
// the action of the first frame with request_id "$REQ", else of the first).
func findReply(t *testing.T, lists [][]json.RawMessage, action string) []json.RawMessage {
	t.Helper()
	for _, l := range lists {
		if replyAction(t, l) == action {
			return l
		}
	}
	t.Fatalf("no reply list for %s", action)
	return nil
}

func replyAction(t *testing.T, frames []json.RawMessage) string {
	t.Helper()
	for _, raw := range frames {
		f := decodeFrame(t, raw)
		if string(f.RequestID) == `"$REQ"` {
			return f.Action
		}
	}
	if len(frames) == 0 {
		return ""
	}
	return decodeFrame(t, frames[0]).Action
}

// replayPush: socketListener.js hands a frame to parsePush + handlePush only
// when it is a push without request_id; a push whose request_id is present
// but not a string is dropped.
func replayPush(t *testing.T, st oracleStep, gs goldenStep) {
	t.Helper()
	var evs []Event
	for _, raw := range st.pushFrames(t) {
		f := decodeFrame(t, raw)
		if f.Type != chatio.TypePush || f.RequestID != nil {
			continue
		}
		ev, err := PushEvents(f)
		if err != nil {
			t.Fatalf("PushEvents(%s): %v", raw, err)
		}
		evs = append(evs, ev...)
	}
	compareEvents(t, "events", gs.Events, evs)
}

// replayDrop: connection_lost (undefined data: null), then the relogin's
// get_chats_summary: user_data per user and connection_restored. The
// rejection of in-flight calls (CONNECTION_LOST) is the client's and the
// end-to-end test's business.
func replayDrop(t *testing.T, st oracleStep, gs goldenStep) {
	t.Helper()
	evs := []Event{{EventConnectionLost, nil}}
	evs = append(evs, summaryConnectEvents(t, findReply(t, st.Relogin, chatio.ActionGetChatsSummary), EventConnectionRestored)...)
	compareEvents(t, "events", gs.Events, evs)
}

// replayWait: a wait only lets time pass; its events, if any, come from the
// replies answering requests sent meanwhile (the sneak-peek throttle's
// trailing call), which emit nothing.
func replayWait(t *testing.T, st oracleStep, gs goldenStep) {
	t.Helper()
	compareEvents(t, "events", gs.Events, nil)
	checkUnhandled(t, st, gs)
}

// checkUnhandled: a failed send_sneak_peek rejects a promise setSneakPeek
// drops; the oracle records the rejection as unhandled. It must be what
// parseServerError makes of the failure.
func checkUnhandled(t *testing.T, st oracleStep, gs goldenStep) {
	t.Helper()
	var want []json.RawMessage
	for _, l := range st.replyLists() {
		for _, raw := range l {
			f := decodeFrame(t, raw)
			if f.Type == chatio.TypeResponse && (f.Success == nil || !*f.Success) {
				want = append(want, mustMarshal(t, mustRejection(t, f.Payload)))
			}
		}
	}
	if len(want) != len(gs.UnhandledRejections) {
		t.Fatalf("%d failed replies, %d unhandled rejections in the golden output", len(want), len(gs.UnhandledRejections))
	}
	for i := range want {
		compareJSON(t, fmt.Sprintf("unhandledRejections[%d]", i), gs.UnhandledRejections[i], want[i])
	}
}

func replayCall(t *testing.T, sc *oracleScenario, st oracleStep, gs goldenStep) {
	t.Helper()
	switch {
	case st.Call == "getChatHistory.next":
		replayHistory(t, sc, gs)
		return
	case st.Call == "setSneakPeek":
		// Returns undefined whatever happens; throttling is the gateway's.
		compareEvents(t, "events", gs.Events, nil)
		checkUnhandled(t, st, gs)
		return
	case st.Call == "sendFile":
		t.Skip("sendFile: HTTP upload and SDK-side size check, tested end to end")
	case len(gs.Requests) == 0:
		t.Skipf("%s sent nothing upstream (SDK-side check: %s), tested end to end", st.Call, compact(gs.Result.Rejected))
	case st.InFlight:
		if gs.SettledInStep == nil || gs.Result == nil || compact(gs.Result.Rejected) != `{"code":"CONNECTION_LOST"}` {
			t.Fatalf("in-flight call: want a CONNECTION_LOST rejection in a later step, golden has %+v", gs.Result)
		}
		t.Skipf("%s in flight when the socket dropped (CONNECTION_LOST in step %d): the client's, tested end to end", st.Call, *gs.SettledInStep)
	}
	if len(gs.Requests) != 1 {
		t.Fatalf("%s sent %d requests", st.Call, len(gs.Requests))
	}
	action := gs.Requests[0].Action
	frames := findReply(t, st.replyLists(), action)
	got := routeReply(t, action, frames)

	if gs.Result == nil {
		t.Fatalf("no result in the golden step")
	}
	switch {
	case gs.Result.Resolved != nil:
		if got.resolved == nil {
			t.Fatalf("the SDK resolved %s; the replay did not", gs.Result.Resolved)
		}
		compareJSON(t, "result.resolved", gs.Result.Resolved, got.resolved)
	case gs.Result.Rejected != nil:
		if got.rejected == nil {
			t.Fatalf("the SDK rejected with %s; the replay did not", gs.Result.Rejected)
		}
		compareJSON(t, "result.rejected", gs.Result.Rejected, got.rejected)
	default:
		t.Fatalf("unexpected result %+v", gs.Result)
	}
	compareEvents(t, "events", gs.Events, got.events)

	if len(got.resultPushes) != len(gs.ResultPushes) {
		t.Fatalf("%d result pushes in the reply, %d in the golden output", len(got.resultPushes), len(gs.ResultPushes))
	}
	for i, f := range got.resultPushes {
		checkResultPush(t, i, action, f, gs.ResultPushes[i])
	}
}

type replayed struct {
	resolved     json.RawMessage
	rejected     json.RawMessage
	events       []Event
	resultPushes []chatio.Frame
}

// routeReply feeds a reply list to the conversion functions the way
// socketListener.js's messageHandler does:
//   - a response: on failure, parseServerError rejects; on success of an
//     action in METHODS_WITH_DIRECT_RESPONSE (IsDirect of the RESPONSE's
//     action), parseResponse(request action, payload) resolves and
//     handleResponse emits; other successful responses are acks;
//   - a push with a string request_id is the request's result (parsed with
//     the REQUEST's action), except customer_updated, which is ignored;
//   - a push without request_id is a push like any other.
func routeReply(t *testing.T, action string, frames []json.RawMessage) replayed {
	t.Helper()
	var r replayed
	settled := false
	settle := func(payload json.RawMessage) {
		if settled {
			t.Fatalf("a second result for the request")
		}
		settled = true
		v, err := ParseResult(action, payload)
		if err != nil {
			t.Fatalf("ParseResult(%s): %v", action, err)
		}
		r.resolved = mustMarshal(t, v)
		ev, err := ResultEvents(action, payload)
		if err != nil {
			t.Fatalf("ResultEvents(%s): %v", action, err)
		}
		r.events = append(r.events, ev...)
	}
	for _, raw := range frames {
		f := decodeFrame(t, raw)
		ours := string(f.RequestID) == `"$REQ"`
		switch {
		case f.Type == chatio.TypeResponse:
			if !ours {
				t.Fatalf("a response for another request: %s", raw)
			}
			if f.Success == nil || !*f.Success {
				settled = true
				r.rejected = mustMarshal(t, mustRejection(t, f.Payload))
				continue
			}
			if chatio.IsDirect(f.Action) {
				settle(f.Payload)
			}
		case isJSONString(f.RequestID):
			if f.Action == chatio.PushCustomerUpdated {
				continue
			}
			if !ours {
				t.Fatalf("a result push for another request: %s", raw)
			}
			settle(f.Payload)
			r.resultPushes = append(r.resultPushes, f)
		case f.RequestID == nil && f.Type == chatio.TypePush:
			ev, err := PushEvents(f)
			if err != nil {
				t.Fatalf("PushEvents(%s): %v", raw, err)
			}
			r.events = append(r.events, ev...)
		}
	}
	if !settled {
		t.Fatalf("the reply list never settles the request")
	}
	return r
}

// checkResultPush: the oracle's asPushEvents are what the SDK's own
// parsePush + handlePush make of the result push had it come without a
// request id: PushEvents must give the same. API.md streams it to every
// subscriber, less what the caller's SDK already emitted: ResultPushEvents.
func checkResultPush(t *testing.T, i int, action string, f chatio.Frame, gp goldenResultPush) {
	t.Helper()
	what := fmt.Sprintf("resultPushes[%d]", i)
	if gp.Request == nil || *gp.Request != action || gp.Action != f.Action {
		t.Fatalf("%s: golden is %v/%s, replay %s/%s", what, gp.Request, gp.Action, action, f.Action)
	}
	var asPush [][2]json.RawMessage
	mustUnmarshal(t, gp.AsPushEvents, &asPush)
	for _, e := range asPush {
		if string(e[0]) == `"`+sdkThrowsMarker+`"` {
			t.Logf("%s: the SDK throws on this push as a plain push; not compared", what)
			return
		}
	}
	plain := f
	plain.RequestID = nil
	evs, err := PushEvents(plain)
	if err != nil {
		t.Fatalf("%s: PushEvents: %v", what, err)
	}
	compareEvents(t, what+".asPushEvents", gp.AsPushEvents, evs)

	newEvents, err := ResultPushEvents(f)
	if err != nil {
		t.Fatalf("%s: ResultPushEvents: %v", what, err)
	}
	var want []json.RawMessage
	for _, e := range asPush {
		if n := string(e[0]); n != `"`+EventUserData+`"` && n != `"`+EventThreadSummary+`"` {
			want = append(want, mustMarshal(t, e))
		}
	}
	wantJSON := mustMarshal(t, want)
	if want == nil {
		wantJSON = json.RawMessage("[]")
	}
	compareEvents(t, what+" (ResultPushEvents)", wantJSON, newEvents)
}

// replayHistory: a getChatHistory page resolves {value: events of the
// threads it loaded, done} and emits, per get_chat_threads it made,
// user_data per user (handleResponse) and then thread_summary per thread
// (chatHistory.js onLoadedThreads). The threads come from the scenario's
// chats model (the oracle's lib/model.js), in the order asked for.
func replayHistory(t *testing.T, sc *oracleScenario, gs goldenStep) {
	t.Helper()
	var value []jsonobj.Object
	var evs []Event
	loaded := false
	for _, rq := range gs.Requests {
		if rq.Action != chatio.ActionGetChatThreads {
			continue
		}
		loaded = true
		payload := modelThreads(t, sc, rq.Payload)
		threads, err := ParseChatThreads(payload)
		if err != nil {
			t.Fatalf("ParseChatThreads: %v", err)
		}
		users, err := ResultEvents(chatio.ActionGetChatThreads, payload)
		if err != nil {
			t.Fatalf("ResultEvents: %v", err)
		}
		evs = append(evs, users...)
		for _, th := range threads {
			value = append(value, ThreadEvents(th)...)
			evs = append(evs, Event{EventThreadSummary, ThreadSummary(th)})
		}
	}
	if gs.Result == nil || gs.Result.Resolved == nil {
		t.Fatalf("history page did not resolve: %+v", gs.Result)
	}
	var page struct {
		Value json.RawMessage `json:"value"`
	}
	mustUnmarshal(t, gs.Result.Resolved, &page)
	if loaded {
		if value == nil {
			value = []jsonobj.Object{}
		}
		compareJSON(t, "result.resolved.value", page.Value, mustMarshal(t, value))
	} else if page.Value != nil {
		t.Fatalf("a page with events but no get_chat_threads request")
	}
	compareEvents(t, "events", gs.Events, evs)
}

// modelThreads is lib/model.js's answer to get_chat_threads.
func modelThreads(t *testing.T, sc *oracleScenario, reqPayload json.RawMessage) json.RawMessage {
	t.Helper()
	var rq struct {
		ChatID    string   `json:"chat_id"`
		ThreadIDs []string `json:"thread_ids"`
	}
	mustUnmarshal(t, reqPayload, &rq)
	chat, ok := sc.Chats[rq.ChatID]
	if !ok {
		t.Fatalf("chat %s is not in the model", rq.ChatID)
	}
	byID := map[string]json.RawMessage{}
	for _, th := range chat.Threads {
		var id struct {
			ID string `json:"id"`
		}
		mustUnmarshal(t, th, &id)
		byID[id.ID] = th
	}
	threads := make([]json.RawMessage, 0, len(rq.ThreadIDs))
	for _, id := range rq.ThreadIDs {
		th, ok := byID[id]
		if !ok {
			t.Fatalf("thread %s is not in the model", id)
		}
		threads = append(threads, th)
	}
	return mustMarshal(t, map[string]any{"chat": map[string]any{"id": rq.ChatID, "threads": threads, "users": chat.Users}})
}

// sdkRejection is parseServerError (serverDataParser.js): what a call
// rejects with when its response has success false. An error of type
// "authentication" gives {code: "AUTHENTICATION", error: message}; any other
// gives _extends({code: "REQUEST_FAILED"}, error): every member of the wire
// error, in its order, after code (a wire "code" member would replace the
// value but keep the first position). The HTTP layer maps failures the same
// way (API.md's errors by code).
func sdkRejection(payload json.RawMessage) (jsonobj.Object, error) {
	p, err := jsonobj.ParseObject(payload)
	if err != nil {
		return nil, fmt.Errorf("failed response payload: %w", err)
	}
	e, err := jsonobj.ParseObject(p.Raw("error"))
	if err != nil {
		// error.type of undefined or null throws in the SDK: the call
		// never settles.
		return nil, fmt.Errorf("failed response without error object: %w", err)
	}
	if string(e.Raw("type")) == `"authentication"` {
		return jsonobj.Object{{Key: "code", Value: rawString("AUTHENTICATION")}, {Key: "error", Value: e.Raw("message")}}, nil
	}
	o := jsonobj.Object{{Key: "code", Value: rawString("REQUEST_FAILED")}}
	for _, m := range e {
		o.Set(m.Key, m.Value)
	}
	return o, nil
}

func mustRejection(t *testing.T, payload json.RawMessage) jsonobj.Object {
	t.Helper()
	o, err := sdkRejection(payload)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestSDKRejection(t *testing.T) {
	for _, tc := range []struct{ payload, want string }{
		{`{"error":{"type":"validation","message":"m"}}`, `{"code":"REQUEST_FAILED","type":"validation","message":"m"}`},
		{`{"error":{"type":"authentication","message":"expired"}}`, `{"code":"AUTHENTICATION","error":"expired"}`},
		{`{"error":{"type":"authentication"}}`, `{"code":"AUTHENTICATION"}`},
		{`{"error":{"message":"m","type":"internal","data":[1]}}`, `{"code":"REQUEST_FAILED","message":"m","type":"internal","data":[1]}`},
		{`{"error":{"type":"x","code":7}}`, `{"code":7,"type":"x"}`},
		{`{"error":{}}`, `{"code":"REQUEST_FAILED"}`},
	} {
		o, err := sdkRejection(json.RawMessage(tc.payload))
		if err != nil {
			t.Fatalf("%s: %v", tc.payload, err)
		}
		if got := string(mustMarshal(t, o)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.payload, got, tc.want)
		}
	}
	for _, bad := range []string{`{}`, `{"error":null}`, `null`} {
		if _, err := sdkRejection(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// --- comparison ---

// compareEvents compares the golden [[name, data], ...] with evs.
func compareEvents(t *testing.T, what string, want json.RawMessage, evs []Event) {
	t.Helper()
	got := make([][2]any, len(evs))
	for i, e := range evs {
		got[i] = [2]any{e.Name, e.Data}
	}
	if want == nil {
		want = json.RawMessage("[]")
	}
	compareJSON(t, what, want, mustMarshal(t, got))
}

// compareJSON compares as JSON values (an absent key and null differ), with
// a readable list of differences; equal values must also have their object
// keys in the same order, since JSON.stringify's order is deterministic.
func compareJSON(t *testing.T, what string, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: golden JSON: %v", what, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: produced invalid JSON: %v\n%s", what, err, got)
	}
	if !reflect.DeepEqual(w, g) {
		var diffs []string
		jsonDiff("$", w, g, &diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		t.Errorf("%s differs from the SDK:\n  %s\nwant %s\ngot  %s", what, strings.Join(diffs, "\n  "), compact(want), got)
		return
	}
	if err := sameKeyOrder(want, got); err != nil {
		t.Errorf("%s: same value, different key order: %v\nwant %s\ngot  %s", what, err, compact(want), got)
	}
}

func jsonDiff(path string, want, got any, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: want object, got %s", path, short(got)))
			return
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				*out = append(*out, fmt.Sprintf("%s.%s: missing (want %s)", path, k, short(wv)))
			case !inW:
				*out = append(*out, fmt.Sprintf("%s.%s: unexpected %s", path, k, short(gv)))
			default:
				jsonDiff(path+"."+k, wv, gv, out)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: want array, got %s", path, short(got)))
			return
		}
		if len(w) != len(g) {
			*out = append(*out, fmt.Sprintf("%s: want %d elements, got %d", path, len(w), len(g)))
		}
		for i := 0; i < len(w) && i < len(g); i++ {
			jsonDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], out)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, short(want), short(got)))
		}
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// sameKeyOrder compares two JSON texts of equal value token by token, so
// that object keys must come in the same order (numbers compare by value,
// but -0 is not 0; strings after unescaping).
func sameKeyOrder(a, b []byte) error {
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for n := 0; ; n++ {
		ta, errA := da.Token()
		tb, errB := db.Token()
		if errors.Is(errA, io.EOF) && errors.Is(errB, io.EOF) {
			return nil
		}
		if errA != nil || errB != nil {
			return fmt.Errorf("token %d: %v / %v", n, errA, errB)
		}
		if na, ok := ta.(json.Number); ok {
			if nb, ok := tb.(json.Number); ok {
				fa, _ := na.Float64()
				fb, _ := nb.Float64()
				if fa == fb && math.Signbit(fa) == math.Signbit(fb) { // JSON.stringify(-0) is 0
					continue
				}
			}
		}
		if ta != tb {
			return fmt.Errorf("token %d: want %v, got %v", n, ta, tb)
		}
	}
}

// --- helpers ---

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, b, v)
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %.200s: %v", b, err)
	}
}

func mustMarshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %#v: %v", v, err)
	}
	return b
}

func decodeFrame(t *testing.T, raw json.RawMessage) chatio.Frame {
	t.Helper()
	var f chatio.Frame
	mustUnmarshal(t, raw, &f)
	return f
}

func isJSONString(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) > 0 && r[0] == '"'
}

// rawString is s as a JSON string.
func rawString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
