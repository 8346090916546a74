package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

func TestStreamSnapshotThenLive(t *testing.T) {
	e := newEnv(t)
	s, r := e.tryStream("/v1/events", "tok")
	if s == nil {
		t.Fatalf("stream refused: %d %s", r.status, r.body)
	}
	for k, v := range map[string]string{"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if m, _ := s.next(5 * time.Second); m.Retry != "3000" {
		t.Fatalf("first line %+v, want retry: 3000", m)
	}
	if m, _ := s.next(5 * time.Second); m.Comment != "connected" {
		t.Fatalf("second line %+v, want : connected", m)
	}
	first := s.event()
	if first.Event != "customer_id" || first.hasID || first.Data != `"`+chatiosim.CustomerIDForToken("tok")+`"` {
		t.Fatalf("first event %+v", first)
	}
	var connected sseMsg
	for {
		m := s.event()
		if m.Event == "user_data" {
			continue
		}
		connected = m
		break
	}
	if connected.Event != "connected" || !connected.hasID {
		t.Fatalf("second event %+v", connected)
	}
	if d := connected.data(t); d["totalChats"] != float64(0) {
		t.Fatalf("connected %v", d)
	}

	// live: a chat started over REST, then an agent's message
	chat, _ := e.startChat("tok")
	last, _ := strconv.ParseUint(connected.ID, 10, 64)
	agent := e.sim.Agent("agent@example.com", "Agent")
	if _, err := agent.SendMessage(chat, "hello from the agent"); err != nil {
		t.Fatal(err)
	}
	for {
		m := s.event()
		id, err := strconv.ParseUint(m.ID, 10, 64)
		if err != nil || id <= last {
			t.Fatalf("event %+v: id not rising after %d", m, last)
		}
		last = id
		if m.Event != "new_event" {
			continue
		}
		d := m.data(t)
		ev, _ := d["event"].(map[string]any)
		if d["chat"] == chat && ev["text"] == "hello from the agent" && ev["author"] == "agent@example.com" {
			break
		}
	}
}

// TestStreamHeartbeat: an idle stream gets a heartbeat comment every
// HeartbeatInterval (the default, 15 s), counted from its last write: an
// event puts the next heartbeat off. In a synctest bubble: to the instant.
func TestStreamHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t)
		every := e.api.cfg.HeartbeatInterval
		if every != DefaultHeartbeatInterval {
			t.Fatalf("heartbeat interval %v, want the default %v", every, DefaultHeartbeatInterval)
		}
		chat, _ := e.startChat("tok")
		// The call's answer can come before its events are published (the
		// reader goroutine converts them): let it finish, so that they are
		// in the snapshot or replay and not between the heartbeats below.
		synctest.Wait()
		s := e.openStream("/v1/events", "tok")
		s.waitEvent("connected")
		start := time.Now()
		// beat reads the next message, which must be a heartbeat written
		// at since after start.
		beat := func(since time.Duration) {
			t.Helper()
			m, ok := s.next(time.Hour)
			if !ok || m.Comment != "heartbeat" || time.Since(start) != since {
				t.Fatalf("at %v: %+v (ok %v), want a heartbeat at %v", time.Since(start), m, ok, since)
			}
		}
		beat(every)
		beat(2 * every)
		// An event 5 s after a heartbeat: the next one comes every after it.
		time.Sleep(5 * time.Second)
		if _, err := e.sim.Agent("agent-1", "").SendMessage(chat, "hi"); err != nil {
			t.Fatal(err)
		}
		for m := s.event(); m.Event != "new_event"; m = s.event() {
		}
		if d := time.Since(start); d != 2*every+5*time.Second {
			t.Fatalf("event read at %v", d)
		}
		beat(3*every + 5*time.Second)
		beat(4*every + 5*time.Second)
	})
}

func TestStreamResume(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	agent := e.sim.Agent("a", "A")
	for _, text := range []string{"one", "two", "three"} {
		if _, err := agent.SendMessage(chat, text); err != nil {
			t.Fatal(err)
		}
	}
	var seen []sseMsg
	for len(seen) < 3 {
		if m := s.event(); m.Event == "new_event" {
			seen = append(seen, m)
		}
	}
	s.close()

	// resume after "one": "two" and "three" again, in order, no snapshot
	for _, how := range []string{"header", "query"} {
		var r *sseStream
		if how == "header" {
			r = e.openStream("/v1/events", "tok", "Last-Event-ID: "+seen[0].ID)
		} else {
			r = e.openStream("/v1/events?lastEventId="+seen[0].ID, "tok")
		}
		var got []sseMsg
		for len(got) < 2 {
			m := r.event()
			if m.Event == "customer_id" || m.Event == "connected" {
				t.Fatalf("%s: resume started with a snapshot: %+v", how, m)
			}
			if m.Event == "new_event" {
				got = append(got, m)
			}
		}
		if got[0].ID != seen[1].ID || got[1].ID != seen[2].ID || got[1].Data != seen[2].Data {
			t.Fatalf("%s: resumed %+v, want %+v", how, got, seen[1:])
		}
		r.close()
	}

	// an id older than the buffer: a fresh snapshot first
	r := e.openStream("/v1/events", "tok", "Last-Event-ID: 1")
	if m := r.event(); m.Event != "customer_id" {
		t.Fatalf("stale id: first event %+v", m)
	}
	r.waitEvent("connected")
}

func TestStreamLimits(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.cfg.MaxStreams = 1 })
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	_, r := e.tryStream("/v1/events", "other")
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	s.close()
	eventually(t, "the stream slot released", func() bool { return e.api.OpenStreams() == 0 })
	e.openStream("/v1/events", "other").waitEvent("connected")

	// per-session subscriber cap
	e2 := newEnv(t, func(o *envOptions) { o.pool.MaxSubscribers = 1 })
	e2.openStream("/v1/events", "tok").waitEvent("connected")
	_, r = e2.tryStream("/v1/events", "tok")
	expect(t, r, 503, CodeOverloaded)
}

func TestStreamDraining(t *testing.T) {
	e := newEnv(t)
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	expect(t, e.do("GET", "/readyz", "", nil), 200, "")

	e.api.SetDraining()
	if got := s.ended(5 * time.Second); !hasRetry(got) {
		t.Fatalf("drained stream ended with %+v, want a retry hint", got)
	}
	r := e.do("GET", "/readyz", "", nil)
	expect(t, r, 503, "")
	_, r = e.tryStream("/v1/events", "tok")
	expect(t, r, 503, CodeOverloaded)
	// REST goes on while draining
	expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
}

func TestStreamPoolShutdown(t *testing.T) {
	e := newEnv(t)
	s := e.openStream("/v1/events", "tok")
	s.waitEvent("connected")
	go func() { _ = e.pool.Shutdown(t.Context()) }()
	if got := s.ended(5 * time.Second); !hasRetry(got) {
		t.Fatalf("pool shutdown: stream ended with %+v, want a retry hint", got)
	}
}

// hasRetry: one of ms is a retry hint of the default RetryHint (3 s), or
// of a drain's (3 s to 6 s).
func hasRetry(ms []sseMsg) bool {
	for _, m := range ms {
		if v, err := strconv.Atoi(m.Retry); err == nil && v >= 3000 && v <= 6000 {
			return true
		}
	}
	return false
}

// ---- the encoder ----

func TestAppendMessage(t *testing.T) {
	cases := []struct {
		m    session.Message
		want string
	}{
		{session.Message{ID: "7", Name: "new_event", Data: []byte(`{"a":1}`)}, "id: 7\nevent: new_event\ndata: {\"a\":1}\n\n"},
		{session.Message{Name: "customer_id", Data: []byte(`"x"`)}, "event: customer_id\ndata: \"x\"\n\n"},
		{session.Message{ID: "1\n2", Name: "bad\r\nname: x", Data: []byte("{\n\"a\":\r\n1}")}, "id: 12\nevent: badname:x\ndata: {\"a\":1}\n\n"},
		{session.Message{Name: "x", Data: []byte("not\njson")}, "event: x\ndata: not\ndata: json\n\n"},
		{session.Message{Name: "x"}, "event: x\ndata: null\n\n"},
	}
	for _, tc := range cases {
		if got := string(appendMessage(nil, tc.m)); got != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.m, got, tc.want)
		}
	}
}

// parseSSE is a strict reader of one encoded message.
func parseSSE(t *testing.T, b []byte) (id, name, data string) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n\n")) || bytes.Count(b, []byte("\n\n")) != 1 {
		t.Fatalf("message framing: %q", b)
	}
	sc := bufio.NewScanner(bytes.NewReader(b[:len(b)-1]))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, line[6:])
		default:
			t.Fatalf("bad line %q in %q", line, b)
		}
	}
	if bytes.ContainsRune(b, '\r') {
		t.Fatalf("CR in %q", b)
	}
	return id, name, strings.Join(lines, "\n")
}

func FuzzAppendMessage(f *testing.F) {
	f.Add("1", "new_event", []byte(`{"chat":"c","event":{"text":"a\nb"}}`))
	f.Add("", "x\ny", []byte("a\r\nb\rc\n"))
	f.Add("9\r", ":", []byte(""))
	f.Add("", "", []byte("{\n}"))
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		out := appendMessage(nil, session.Message{ID: id, Name: name, Data: data})
		gid, gname, gdata := parseSSE(t, out)
		if gid != safeField(id) || gname != safeField(name) {
			t.Fatalf("id/name %q %q from %q %q", gid, gname, id, name)
		}
		for _, c := range []byte(gid + gname) {
			if !safeByte(c) {
				t.Fatalf("unsafe byte %q", c)
			}
		}
		if len(data) == 0 {
			data = []byte("null")
		}
		if json.Valid(data) {
			var a, b any
			_ = json.Unmarshal(data, &a)
			if err := json.Unmarshal([]byte(gdata), &b); err != nil {
				t.Fatalf("data %q from JSON %q: %v", gdata, data, err)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("data %q from %q", gdata, data)
			}
			return
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if gdata != want {
			t.Fatalf("data %q, want %q", gdata, want)
		}
	})
}

// TestManyClients: customers in parallel, two streams each; every stream
// sees every message its customer sent over REST, once, and nothing of the
// others.
func TestManyClients(t *testing.T) {
	e := newEnv(t)
	const customers, messages = 8, 5
	type tab struct {
		token   string
		chat    string
		streams [2]*sseStream
	}
	tabs := make([]*tab, customers)
	for i := range tabs {
		tb := &tab{token: "many-" + strconv.Itoa(i)}
		tb.chat, _ = e.startChat(tb.token)
		for j := range tb.streams {
			tb.streams[j] = e.openStream("/v1/events", tb.token)
			tb.streams[j].waitEvent("connected")
		}
		tabs[i] = tb
	}
	var wg sync.WaitGroup
	errs := make(chan string, customers*messages)
	for _, tb := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range messages {
				r := e.doNoFatal("POST", "/v1/chats/"+tb.chat+"/messages", tb.token, `{"text":"`+tb.token+`/`+strconv.Itoa(k)+`"}`)
				if r.status != 201 {
					errs <- string(r.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tb := range tabs {
		for _, s := range tb.streams {
			seen := map[string]bool{}
			for len(seen) < messages {
				m := s.waitEvent("new_event")
				ev, _ := m.data(t)["event"].(map[string]any)
				text, _ := ev["text"].(string)
				if !strings.HasPrefix(text, tb.token+"/") || seen[text] {
					t.Fatalf("%s saw %q (seen %v)", tb.token, text, seen)
				}
				seen[text] = true
			}
		}
	}
}

// TestStreamDrainingJitter: the streams a drain ends each get a retry hint
// of their own, uniform in [RetryHint, 2×RetryHint], so that their clients
// do not all come back at the same moment.
func TestStreamDrainingJitter(t *testing.T) {
	e := newEnv(t)
	var streams []*sseStream
	for i := range 16 {
		s := e.openStream("/v1/events", fmt.Sprintf("tok-%d", i%4))
		s.waitEvent("connected")
		streams = append(streams, s)
	}
	e.api.SetDraining()
	hints := map[int]bool{}
	for i, s := range streams {
		got := s.ended(5 * time.Second)
		last := ""
		for _, m := range got {
			if m.Retry != "" {
				last = m.Retry
			}
		}
		ms, err := strconv.Atoi(last)
		if err != nil || ms < 3000 || ms > 6000 {
			t.Fatalf("stream %d ended with retry %q, want 3000..6000 ms; %+v", i, last, got)
		}
		hints[ms] = true
	}
	if len(hints) < 2 {
		t.Fatalf("every drained stream got the same retry hint %v", hints)
	}
}
