package chatio_test

// End to end: the client against the simulator, over a real websocket.
// Every action and push of docs/PROTOCOL.md, every error type, a drop mid-call,
// keepalive failure and the file limit.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// items holds the item queue of each client dialSim dialed
// (*chatio.Client → chan chatio.StreamItem, closed when the client ends).
var items sync.Map

// takeItems is an OnItem that queues the items on a channel of 1,024 and
// refuses one that does not fit; done closes the channel.
func takeItems() (q chan chatio.StreamItem, onItem func(chatio.StreamItem) bool, done func()) {
	q = make(chan chatio.StreamItem, 1024)
	onItem = func(it chatio.StreamItem) bool {
		select {
		case q <- it:
			return true
		default:
			return false
		}
	}
	return q, onItem, func() { close(q) }
}

// dialSim dials the simulator at url as token's customer; the client's
// items are queued for nextEvents.
func dialSim(t *testing.T, url, token string, mod func(*chatio.Config)) *chatio.Client {
	t.Helper()
	q, onItem, done := takeItems()
	cfg := chatio.Config{URL: url, License: 1, Token: token, OnItem: onItem, OnDone: done}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, login, err := chatio.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if want := chatiosim.CustomerIDForToken(token); login.CustomerID != want {
		t.Fatalf("login customer_id %q, want %q", login.CustomerID, want)
	}
	items.Store(c, q)
	t.Cleanup(func() {
		_ = c.Close()
		items.Delete(c)
	})
	return c
}

// call makes one call with Emit and returns the SDK-resolved value as JSON.
func call(t *testing.T, c *chatio.Client, action string, payload any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := c.Call(ctx, action, payload, chatio.Emit())
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	v, err := sdk.ParseResult(action, raw)
	if err != nil {
		t.Fatalf("%s: parse %s: %v", action, raw, err)
	}
	return asMap(t, v)
}

func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		var list []any
		if json.Unmarshal(b, &list) == nil {
			return map[string]any{"list": list}
		}
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return m
}

// nextEvents reads stream items until events named want have all been seen
// (in that order among the SDK events the items convert to).
func nextEvents(t *testing.T, c *chatio.Client, want ...string) []sdk.Event {
	t.Helper()
	var got []sdk.Event
	deadline := time.After(5 * time.Second)
	q, _ := items.Load(c)
	for i := 0; i < len(want); {
		select {
		case it, ok := <-q.(chan chatio.StreamItem):
			if !ok {
				t.Fatalf("stream closed; waiting for %v, got %v", want[i:], names(got))
			}
			var evs []sdk.Event
			var err error
			if it.ResultOf != "" {
				evs, err = sdk.ResultEvents(it.ResultOf, it.Frame.Payload)
				more, _ := sdk.ResultPushEvents(it.Frame)
				evs = append(evs, more...)
			} else {
				evs, err = sdk.PushEvents(it.Frame)
			}
			if err != nil {
				t.Fatalf("convert %s: %v", it.Frame.Action, err)
			}
			for _, e := range evs {
				got = append(got, e)
				if i < len(want) && e.Name == want[i] {
					i++
				}
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %v; got %v", want[i:], names(got))
		}
	}
	return got
}

func names(evs []sdk.Event) []string {
	var n []string
	for _, e := range evs {
		n = append(n, e.Name)
	}
	return n
}

func TestSimEveryActionAndPush(t *testing.T) {
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	c := dialSim(t, url, "customer-a", nil)
	other := dialSim(t, url, "customer-a", nil) // the customer's second socket
	me := chatiosim.CustomerIDForToken("customer-a")

	sum := call(t, c, chatio.ActionGetChatsSummary, map[string]any{"offset": 0, "limit": 10})
	if sum["totalChats"] != float64(0) {
		t.Fatalf("summary of a new customer: %v", sum)
	}

	chat := call(t, c, chatio.ActionStartChat, map[string]any{
		"routing_scope": map[string]any{"type": "license"},
		"properties":    map[string]any{"source": map[string]any{"page": "/pricing"}},
	})
	chatID, _ := chat["id"].(string)
	if chatID == "" || len(chat["threads"].([]any)) != 1 {
		t.Fatalf("start_chat resolved %v", chat)
	}
	nextEvents(t, c, sdk.EventUserData, sdk.EventThreadSummary)
	// The other socket sees the new thread as a plain push.
	nextEvents(t, other, sdk.EventUserData, sdk.EventThreadSummary)

	ev := call(t, c, chatio.ActionSendEvent, map[string]any{"chat_id": chatID,
		"event": map[string]any{"type": "message", "text": "hello", "custom_id": "c-1"}})
	if ev["text"] != "hello" || ev["customId"] != "c-1" || ev["author"] != me || ev["type"] != "message" {
		t.Fatalf("send_event resolved %v", ev)
	}
	nextEvents(t, c, sdk.EventNewEvent)
	nextEvents(t, other, sdk.EventNewEvent)

	custom := call(t, c, chatio.ActionSendEvent, map[string]any{"chat_id": chatID,
		"event": map[string]any{"type": "rich_card", "title": "Plans"}})
	if custom["type"] != "rich_card" || custom["title"] != "Plans" {
		t.Fatalf("custom event resolved %v", custom)
	}

	if r := call(t, c, chatio.ActionSendSneakPeek, map[string]any{"chat_id": chatID, "sneak_peek_text": "typing…"}); r["success"] != true {
		t.Fatalf("send_sneak_peek %v", r)
	}
	if info, _ := sim.Chat(chatID); info.SneakPeek != "typing…" {
		t.Fatalf("agent side did not see the sneak peek: %+v", info)
	}
	if r := call(t, c, chatio.ActionUpdateCustomer, map[string]any{"customer": map[string]any{"name": "Ann", "fields": map[string]string{"plan": "pro"}}}); r["success"] != true {
		t.Fatalf("update_customer %v", r)
	}
	nextEvents(t, other, "customer_updated")
	if r := call(t, c, chatio.ActionUpdateChatProperties, map[string]any{"chat_id": chatID, "properties": map[string]any{"ns": map[string]any{"k": "v"}}}); r["success"] != true {
		t.Fatalf("update_chat_properties %v", r)
	}
	nextEvents(t, other, sdk.EventChatPropertiesUpdated)
	threadID := chat["threads"].([]any)[0].(string)
	if r := call(t, c, chatio.ActionUpdateChatThreadProperties, map[string]any{"chat_id": chatID, "thread_id": threadID, "properties": map[string]any{"rating": map[string]any{"score": 1}}}); r["success"] != true {
		t.Fatalf("update_chat_thread_properties %v", r)
	}
	nextEvents(t, other, sdk.EventChatThreadPropertiesUpdate)
	if r := call(t, c, chatio.ActionUpdateLastSeenTimestamp, map[string]any{"chat_id": chatID}); r["timestamp"] == nil {
		t.Fatalf("update_last_seen_timestamp %v", r)
	}
	nextEvents(t, other, sdk.EventLastSeenTimestampUpdated)

	ts := call(t, c, chatio.ActionGetChatThreadsSummary, map[string]any{"chat_id": chatID, "offset": 0, "limit": 25})
	if ts["totalThreads"] != float64(1) {
		t.Fatalf("threads summary %v", ts)
	}
	th := call(t, c, chatio.ActionGetChatThreads, map[string]any{"chat_id": chatID, "thread_ids": []string{threadID}})
	threads := th["list"].([]any)
	if len(threads) != 1 || len(threads[0].(map[string]any)["events"].([]any)) < 2 {
		t.Fatalf("threads %v", th)
	}

	// Agent side → pushes.
	agent := sim.Agent("agent-1@example.com", "Agent One")
	if err := agent.Join(chatID); err != nil {
		t.Fatal(err)
	}
	nextEvents(t, c, sdk.EventUserData, sdk.EventUserJoinedChat)
	_ = agent.Typing(chatID, true)
	nextEvents(t, c, sdk.EventUserIsTyping)
	_ = agent.Typing(chatID, false)
	nextEvents(t, c, sdk.EventUserStoppedTyping)
	if _, err := agent.SendMessage(chatID, "hi there"); err != nil {
		t.Fatal(err)
	}
	nextEvents(t, c, sdk.EventNewEvent)
	if _, err := agent.SendImage(chatID, "https://cdn.example/a.png", "image/png", 64, 48); err != nil {
		t.Fatal(err)
	}
	got := nextEvents(t, c, sdk.EventNewEvent)
	img := asMap(t, got[len(got)-1].Data)["event"].(map[string]any)
	if img["type"] != "file" || img["width"] != float64(64) || img["contentType"] != "image/png" {
		t.Fatalf("image event %v", img)
	}
	_ = agent.UpdateChatProperties(chatID, map[string]any{"ns": map[string]any{"agent": true}})
	nextEvents(t, c, sdk.EventChatPropertiesUpdated)
	_ = agent.UpdateThreadProperties(chatID, "", map[string]any{"ns": map[string]any{"x": 1}})
	nextEvents(t, c, sdk.EventChatThreadPropertiesUpdate)
	_ = agent.MarkSeen(chatID, time.Now())
	nextEvents(t, c, sdk.EventLastSeenTimestampUpdated)
	_ = agent.Leave(chatID)
	nextEvents(t, c, sdk.EventUserLeftChat)

	if r := call(t, c, chatio.ActionCloseThread, map[string]any{"chat_id": chatID}); r["success"] != true {
		t.Fatalf("close_thread %v", r)
	}
	nextEvents(t, other, sdk.EventThreadClosed)

	// A message to a chat without an active thread starts a new one: the
	// result is a new thread (user_data, thread_summary, new_event).
	ev2 := call(t, c, chatio.ActionSendEvent, map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "again"}})
	if ev2["text"] != "again" || ev2["thread"] == threadID {
		t.Fatalf("new-thread send_event resolved %v", ev2)
	}
	nextEvents(t, other, sdk.EventUserData, sdk.EventThreadSummary, sdk.EventNewEvent)

	sum = call(t, c, chatio.ActionGetChatsSummary, map[string]any{"offset": 0, "limit": 10})
	cs := sum["chatsSummary"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["lastEvent"].(map[string]any)["text"] != "again" {
		t.Fatalf("summary after messages: %v", sum)
	}

	// customer_disconnected with a reason that forbids reconnecting.
	sim.DisconnectCustomer(me, "logged_out_remotely")
	nextEvents(t, c, sdk.EventDisconnected)
	<-c.Done()
	var de *chatio.DisconnectedError
	if !errors.As(c.Err(), &de) || de.Reason != "logged_out_remotely" || de.Retry {
		t.Fatalf("Err after customer_disconnected: %v", c.Err())
	}
}

func TestSimErrors(t *testing.T) {
	sim, url := chatiotest.Start(t, chatiosim.Config{RequestTimeout: 300 * time.Millisecond, MaxPending: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// authentication at login
	_, onItem, _ := takeItems()
	_, _, err := chatio.Dial(ctx, chatio.Config{URL: url, License: 1, Token: "expired:abc", OnItem: onItem})
	var ae *chatio.AuthError
	if !errors.As(err, &ae) || !errors.Is(err, chatio.ErrAuthentication) {
		t.Fatalf("expired token: %v", err)
	}

	c := dialSim(t, url, "customer-err", func(cfg *chatio.Config) { cfg.MaxPending = 12 })
	reqErr := func(err error, typ string) {
		t.Helper()
		var re *chatio.RequestError
		if !errors.As(err, &re) || re.Type != typ {
			t.Fatalf("want %s error, got %v", typ, err)
		}
	}
	_, err = c.Call(ctx, chatio.ActionSendEvent, map[string]any{"chat_id": 42, "event": map[string]any{"type": "message", "text": "x"}})
	reqErr(err, "validation")
	_, err = c.Call(ctx, chatio.ActionGetChatThreads, map[string]any{"chat_id": "NOPE", "thread_ids": []string{"T"}})
	reqErr(err, "not_found")
	_, err = c.Call(ctx, chatio.ActionGetChatsSummary, map[string]any{"limit": 26})
	reqErr(err, "validation")

	// A stalled server: requests time out upstream (request_timeout) and the
	// 11th pending one is refused (pending_requests_limit_reached).
	sim.Stall(true)
	var wg sync.WaitGroup
	errs := make(chan error, 11)
	for i := 0; i < 11; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Call(ctx, chatio.ActionGetChatsSummary, nil)
			errs <- err
		}()
	}
	wg.Wait()
	sim.Stall(false)
	close(errs)
	types := map[string]int{}
	for err := range errs {
		var re *chatio.RequestError
		if errors.As(err, &re) {
			types[re.Type]++
		} else {
			types[err.Error()]++
		}
	}
	if types["pending_requests_limit_reached"] < 1 || types["request_timeout"] < 1 {
		t.Fatalf("stalled calls ended with %v", types)
	}
}

func TestSimDropMidCall(t *testing.T) {
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	c := dialSim(t, url, "customer-drop", nil)
	sim.SetLatency(2 * time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), chatio.ActionGetChatsSummary, nil)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	sim.DropAll()
	select {
	case err := <-errc:
		if !errors.Is(err, chatio.ErrConnectionLost) {
			t.Fatalf("in-flight call after a drop: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("in-flight call did not fail after the drop")
	}
	<-c.Done()
	if !errors.Is(c.Err(), chatio.ErrConnectionLost) {
		t.Fatalf("Err after a drop: %v", c.Err())
	}
}

func TestSimKeepaliveFailure(t *testing.T) {
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	c := dialSim(t, url, "customer-stall", func(cfg *chatio.Config) {
		cfg.PingInterval = 50 * time.Millisecond
		cfg.PongTimeout = 150 * time.Millisecond
	})
	time.Sleep(200 * time.Millisecond) // healthy pings meanwhile
	select {
	case <-c.Done():
		t.Fatalf("healthy client ended: %v", c.Err())
	default:
	}
	sim.Stall(true)
	defer sim.Stall(false)
	select {
	case <-c.Done():
		if !errors.Is(c.Err(), chatio.ErrTimeout) {
			t.Fatalf("stall ended the client with %v", c.Err())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stalled peer not detected within PingInterval+PongTimeout (+slack)")
	}
}

// chat.io closes a socket from which nothing came for about 30 s, pushes
// to it notwithstanding (docs/PROTOCOL.md: keep the socket busy): the client's
// keepalive pings go on while the socket brings a steady flow of pushes.
func TestSimBusySocketKeptAlive(t *testing.T) {
	const idle = 300 * time.Millisecond
	sim, url := chatiotest.Start(t, chatiosim.Config{IdleTimeout: idle})
	c := dialSim(t, url, "customer-busy", func(cfg *chatio.Config) {
		cfg.PingInterval = idle / 3
	})
	chat := call(t, c, chatio.ActionStartChat, map[string]any{"routing_scope": map[string]any{"type": "license"}})
	chatID := chat["id"].(string)
	agent := sim.Agent("agent-busy@example.com", "Agent Busy")
	if err := agent.Join(chatID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(4 * idle); time.Now().Before(deadline); {
		if _, err := agent.SendMessage(chatID, "still here"); err != nil {
			t.Fatalf("agent: %v", err)
		}
		time.Sleep(idle / 15)
	}
	select {
	case <-c.Done():
		t.Fatalf("a socket with pushes flowing in was closed: %v", c.Err())
	default:
	}
}

func TestSimSendFile(t *testing.T) {
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	c := dialSim(t, url, "customer-file", nil)
	chat := call(t, c, chatio.ActionStartChat, map[string]any{"routing_scope": map[string]any{"type": "license"}})
	chatID := chat["id"].(string)
	nextEvents(t, c, sdk.EventThreadSummary)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := c.SendFile(ctx, chatID, "f-1", "notes.txt", "text/plain", strings.NewReader("some notes"))
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	var res struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.URL == "" {
		t.Fatalf("SendFile result %s", raw)
	}
	// The upload shows up as a file event on the socket.
	got := nextEvents(t, c, sdk.EventNewEvent)
	fe := asMap(t, got[len(got)-1].Data)["event"].(map[string]any)
	if fe["type"] != "file" || fe["url"] != res.URL || fe["customId"] != "f-1" {
		t.Fatalf("file event %v (url %s)", fe, res.URL)
	}
	if evs := sim.Events(chatID); len(evs) == 0 {
		t.Fatal("simulator has no file event")
	}

	// Over the limit: refused while streaming.
	big := io.LimitReader(zeros{}, chatio.MaxFileSize+1)
	if _, err := c.SendFile(ctx, chatID, "", "big.bin", "application/octet-stream", big); !errors.Is(err, chatio.ErrFileTooLarge) {
		t.Fatalf("file over the limit: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
