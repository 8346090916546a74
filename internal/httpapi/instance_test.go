package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// textsUntil reads st's new_event messages up to the one with text last
// and returns their texts, in order, with the id of the event before the
// first (the stream's "connected", say: a Last-Event-ID to resume from).
func textsUntil(t *testing.T, st *sseStream, last string) []string {
	t.Helper()
	var texts []string
	for {
		m := st.event()
		if m.Event != "new_event" {
			continue
		}
		ev, _ := m.data(t)["event"].(map[string]any)
		text, _ := ev["text"].(string)
		texts = append(texts, text)
		if text == last {
			return texts
		}
	}
}

// ownCallsScenario runs the "own call" story on the replicas pick hands
// out: streams of one customer opened by instance tab-a, by tab-b and by no
// instance; tab-a and tab-b each send a message, then the agent does. A
// stream leaves out the new_event of its own instance's calls (an SDK
// instance resolves them and emits nothing), and gets everything else; a
// stream resumed by tab-a replays without them too.
func ownCallsScenario(t *testing.T, pick func() *env, sim *chatiosim.Server, token string) {
	hA, hB := "X-Client-Instance: tab-a", "X-Client-Instance: tab-b"
	a := pick().openStream("/v1/events", token, hA)
	conn := a.waitEvent("connected")
	b := pick().openStream("/v1/events", token, hB)
	b.waitEvent("connected")
	none := pick().openStream("/v1/events", token)
	none.waitEvent("connected")
	// EventSource's form: the instance as a query parameter.
	r := pick().do("POST", "/v1/tickets", token, nil)
	ticket, _ := expect(t, r, 200, "")["ticket"].(string)
	q := pick().openStream("/v1/events?clientInstance=tab-a&ticket="+ticket, "")
	q.waitEvent("connected")

	m := expect(t, pick().do("POST", "/v1/chats", token, `{}`, hA), 201, "")
	chat, _ := m["id"].(string)
	expect(t, pick().do("POST", "/v1/chats/"+chat+"/messages", token, `{"text":"from a"}`, hA), 201, "")
	expect(t, pick().do("POST", "/v1/chats/"+chat+"/messages", token, `{"text":"from b"}`, hB), 201, "")
	if _, err := sim.Agent("agent-own", "Agent").SendMessage(chat, "agent"); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		st   *sseStream
		want []string
	}{
		{"tab-a", a, []string{"from b", "agent"}},
		{"tab-a by query", q, []string{"from b", "agent"}},
		{"tab-b", b, []string{"from a", "agent"}},
		{"no instance", none, []string{"from a", "from b", "agent"}},
	} {
		if got := textsUntil(t, c.st, "agent"); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("stream of %s got %q, want %q", c.name, got, c.want)
		}
	}

	// Resumed by tab-a from before the calls: the same, from the log.
	ra := pick().openStream("/v1/events", token, hA, "Last-Event-ID: "+conn.ID)
	if got := textsUntil(t, ra, "agent"); fmt.Sprint(got) != fmt.Sprint([]string{"from b", "agent"}) {
		t.Errorf("tab-a resumed got %q, want [from b agent]", got)
	}
	rn := pick().openStream("/v1/events", token, "Last-Event-ID: "+conn.ID)
	if got := textsUntil(t, rn, "agent"); fmt.Sprint(got) != fmt.Sprint([]string{"from a", "from b", "agent"}) {
		t.Errorf("resumed without instance got %q, want all three", got)
	}
}

func TestOwnCallsLeftOut(t *testing.T) {
	e := newEnv(t)
	ownCallsScenario(t, func() *env { return e }, e.sim, "tok-own")
}

// TestClusterOwnCallsLeftOut: the same with every request on a random
// replica of three: the origin travels with a forwarded call to the owner
// and lives with the event in the engine's log (live and on resume).
func TestClusterOwnCallsLeftOut(t *testing.T) {
	c := newCluster(t, 3, 3*time.Second)
	ownCallsScenario(t, c.any, c.sim, "tok-own")
}

func TestClientInstanceMalformed(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{
		"X-Client-Instance: " + strings.Repeat("x", 129),
		"X-Client-Instance: has space",
		"X-Client-Instance: caf\u00e9",
	} {
		expect(t, e.do("GET", "/v1/chats", "tok-bad", nil, h), 400, "INVALID_ARGS")
		if st, r := e.tryStream("/v1/events", "tok-bad", h); st != nil || r.status != 400 {
			t.Fatalf("stream with %q: %d", h, r.status)
		}
	}
	if _, r := e.tryStream("/v1/events?clientInstance=", "tok-bad"); r.status != 400 {
		t.Fatalf("stream with an empty clientInstance: %d", r.status)
	}
	expect(t, e.do("GET", "/v1/chats", "tok-bad", nil, "X-Client-Instance: "+strings.Repeat("x", 128)), 200, "")
}
