package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// cluster is several gateways (httpapi + session pool + engine node each)
// in this test process on one JetStream server and one simulator: what
// GATEWAY_NATS_URL with several replicas runs. The embedded engine listens
// on nothing, so the replicas share a nats-server run here on 127.0.0.1.
type cluster struct {
	t     *testing.T
	ns    *server.Server
	sim   *chatiosim.Server
	nodes []*env
	engs  []*engine.Engine
	dials atomic.Int64 // upstream dials of every replica
}

var (
	clusterKey = bytes.Repeat([]byte{0x42}, 32)
	ticketKey  = bytes.Repeat([]byte{0x43}, TicketKeyLen)
)

func newCluster(t *testing.T, n int, ttl time.Duration) *cluster {
	t.Helper()
	return newClusterWith(t, n, ttl, nil)
}

// newClusterWith is newCluster with each replica's options changed by mod.
func newClusterWith(t *testing.T, n int, ttl time.Duration, mod func(*envOptions)) *cluster {
	t.Helper()
	return newClusterEngine(t, n, ttl, mod, nil)
}

// newClusterEngine is newClusterWith with each engine's configuration
// changed by emod.
func newClusterEngine(t *testing.T, n int, ttl time.Duration, mod func(*envOptions), emod func(*engine.Config)) *cluster {
	t.Helper()
	o := &server.Options{
		ServerName: "t1", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	c := &cluster{t: t, ns: ns}
	var url string
	c.sim, url = chatiotest.Start(t, chatiosim.Config{})
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ecfg := engine.Config{
			URL: ns.ClientURL(), NodeID: fmt.Sprintf("r%d", i), ClusterKey: clusterKey,
			LeaseTTL: ttl, OpTimeout: 2 * time.Second, ReconnectWait: 50 * time.Millisecond,
		}
		if emod != nil {
			emod(&ecfg)
		}
		eng, err := engine.Start(ctx, ecfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the replica's: closed after its pool.
		t.Cleanup(func() { _ = eng.Close(context.Background()) })
		c.engs = append(c.engs, eng)
		c.nodes = append(c.nodes, newEnv(t, func(o *envOptions) {
			o.upstreamURL = url
			o.pool.Engine = eng
			o.cfg.Engine = eng
			o.cfg.TicketKey = ticketKey
			o.pool.Dial = func(ctx context.Context, cfg chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
				c.dials.Add(1)
				return chatio.Dial(ctx, cfg)
			}
			if mod != nil {
				mod(o)
			}
		}))
	}
	return c
}

// takeLease gives replica i's node lease to another incarnation, as if the
// replica had been paused past its lease and the node restarted: its
// sessions are fenced.
func (c *cluster) takeLease(i int) {
	c.t.Helper()
	nc, err := nats.Connect(c.ns.ClientURL())
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "cgw_nodes")
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := kv.Put(ctx, fmt.Sprintf("r%d", i), []byte("another-incarnation")); err != nil {
		c.t.Fatal(err)
	}
}

// any is a replica picked at random.
func (c *cluster) any() *env { return c.nodes[rand.N(len(c.nodes))] }

// sockets is the simulator's count of open sockets of token's customer.
func (c *cluster) sockets(token string) int {
	return c.sim.CustomerSockets(chatiosim.CustomerIDForToken(token))
}

// owner is the index of the replica owning token's session (-1: none).
func (c *cluster) owner(token string) int {
	sid := engine.CustomerKey(clusterKey, "1", token)
	node, alive, err := c.engs[len(c.engs)-1].Owner(context.Background(), sid) // the last replica stays connected
	if err != nil || !alive {
		return -1
	}
	for i, e := range c.engs {
		if e.NodeID() == node {
			return i
		}
	}
	return -1
}

// logTexts reads token's log in the engine and returns the text of each
// new_event message, in order, once each (the send_event result and the
// push are one event id apart, the same message).
func (c *cluster) logTexts(token string) []string {
	sid := engine.CustomerKey(clusterKey, "1", token)
	eng := c.engs[len(c.engs)-1]
	var texts []string
	seen := map[string]bool{}
	var after uint64
	for {
		p, err := eng.Read(context.Background(), sid, after, 0)
		if err != nil {
			c.t.Errorf("read %s's log: %v", token, err)
			return nil
		}
		for _, ev := range p.Events {
			name, data, ok := session.DecodeLogEvent(ev.Data)
			if !ok {
				c.t.Errorf("%s's log: event %d undecodable: %q", token, ev.Seq, ev.Data)
				continue
			}
			var d struct {
				Event struct {
					ID   string `json:"id"`
					Text string `json:"text"`
				} `json:"event"`
			}
			if name != "new_event" || json.Unmarshal(data, &d) != nil || d.Event.Text == "" || seen[d.Event.ID] {
				continue
			}
			seen[d.Event.ID] = true
			texts = append(texts, d.Event.Text)
		}
		if !p.More {
			return texts
		}
		after = p.Last
	}
}

// TestClusterCallsOnAnyReplica: customers whose every call goes to a
// random replica get their answers, and the simulator sees exactly one
// socket per token, held by the session's owner; the others forward.
func TestClusterCallsOnAnyReplica(t *testing.T) {
	c := newCluster(t, 3, 3*time.Second)
	tokens := []string{"cl-a", "cl-b", "cl-c", "cl-d"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, tok := range tokens {
		wg.Go(func() {
			r := c.any().doNoFatal("POST", "/v1/chats", tok, `{}`)
			if r.status != 201 {
				errs <- fmt.Errorf("%s: start chat: %d %s", tok, r.status, r.body)
				return
			}
			m := r.json(t)
			chat, _ := m["id"].(string)
			for i := range 6 {
				r := c.any().doNoFatal("POST", "/v1/chats/"+chat+"/messages", tok, fmt.Sprintf(`{"text":"m%d"}`, i))
				if r.status != 201 {
					errs <- fmt.Errorf("%s: send: %d %s", tok, r.status, r.body)
				}
				r = c.any().doNoFatal("GET", "/v1/session", tok, "")
				if r.status != 200 || !bytes.Contains(r.body, []byte(`"status":"connected"`)) {
					errs <- fmt.Errorf("%s: session: %d %s", tok, r.status, r.body)
				}
			}
			r = c.any().doNoFatal("GET", "/v1/chats?limit=5", tok, "")
			if r.status != 200 || !bytes.Contains(r.body, []byte(chat)) {
				errs <- fmt.Errorf("%s: summary: %d %s", tok, r.status, r.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, tok := range tokens {
		if n := c.sockets(tok); n != 1 {
			t.Errorf("%s: %d sockets at the simulator, want 1", tok, n)
		}
		if c.owner(tok) < 0 {
			t.Errorf("%s: no live owner", tok)
		}
	}
	if n := c.dials.Load(); n != int64(len(tokens)) {
		t.Errorf("%d upstream dials for %d tokens", n, len(tokens))
	}
	// The owner appended each customer's events to its log in the engine,
	// in order.
	for _, tok := range tokens {
		var texts []string
		testwait.For(t, 5*time.Second, tok+"'s messages in the engine's log", func() bool {
			texts = c.logTexts(tok)
			return len(texts) >= 6
		})
		for i := range 6 {
			if want := fmt.Sprintf("m%d", i); texts[i] != want {
				t.Errorf("%s: the log's messages %q, want m0..m5 in order", tok, texts)
				break
			}
		}
	}
	// An upstream error crosses the engine as itself: 404 REQUEST_FAILED
	// from whichever replica.
	for _, e := range c.nodes {
		expect(t, e.do("POST", "/v1/chats/nochat/close-thread", "cl-a", nil), 404, CodeRequestFailed)
	}
	// The session ends on any replica; the next call opens one again.
	expect(t, c.any().do("DELETE", "/v1/session", "cl-a", nil), 204, "")
	testwait.For(t, 5*time.Second, "the socket closed", func() bool { return c.sockets("cl-a") == 0 })
	testwait.For(t, 5*time.Second, "the ownership released", func() bool { return c.owner("cl-a") < 0 })
	expect(t, c.any().do("GET", "/v1/session", "cl-a", nil), 200, "")
	if n := c.sockets("cl-a"); n != 1 {
		t.Errorf("after a new session: %d sockets", n)
	}
}

// TestClusterConcurrentFirstCalls: first calls for one token on every
// replica at once: exactly one replica wins the ownership and dials, the
// others forward to it.
func TestClusterConcurrentFirstCalls(t *testing.T) {
	c := newCluster(t, 3, 3*time.Second)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 12 {
		e := c.nodes[i%len(c.nodes)]
		wg.Go(func() {
			if r := e.doNoFatal("GET", "/v1/chats", "race", ""); r.status != 200 {
				failed.Add(1)
				t.Errorf("call %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	if n := c.dials.Load(); n != 1 {
		t.Errorf("%d upstream dials, want 1", n)
	}
	if n := c.sockets("race"); n != 1 {
		t.Errorf("%d sockets, want 1", n)
	}
}

// TestClusterTakeover: the owner replica dies (its engine connection is
// gone: no renewal, no answer to forwarded calls): its lease runs out, it
// closes its socket by itself (fenced), and another replica takes the
// session over within the lease TTL and a margin. Uploads go straight
// upstream from the replica that received them.
func TestClusterTakeover(t *testing.T) {
	ttl := time.Second
	c := newCluster(t, 3, ttl)
	e0 := c.nodes[0]
	chat, _ := e0.startChat("tk")
	own := c.owner("tk")
	if own != 0 {
		t.Fatalf("owner %d, want the replica that opened the session", own)
	}

	// An upload from a replica that does not hold the session: no second
	// socket.
	body := filePartB("hello") + "\r\n--B--\r\n"
	m := expect(t, c.nodes[1].do("POST", "/v1/chats/"+chat+"/files", "tk", body, "Content-Type: "+formB), 201, "")
	if u, _ := m["url"].(string); u == "" {
		t.Fatalf("upload answered %v", m)
	}
	if n := c.sockets("tk"); n != 1 {
		t.Fatalf("%d sockets after an upload elsewhere", n)
	}

	// A stream on replica 2 follows the customer across the takeover.
	st := c.nodes[2].openStream("/v1/events", "tk")
	st.waitEvent("connected")
	agent := c.sim.Agent("agent-t", "Agent")
	if _, err := agent.SendMessage(chat, "before"); err != nil {
		t.Fatal(err)
	}
	if got, _ := messages(t, st, 1); got[0] != "before" {
		t.Fatalf("stream got %q", got)
	}

	c.engs[0].Conn().Close() // replica 0 is cut off from the engine
	start := time.Now()
	testwait.For(t, ttl+3*time.Second, "replica 0 closes its socket (fenced)", func() bool { return c.sockets("tk") == 0 })
	// chat.io pushes this while nobody holds the socket: the next owner's
	// gap fill reads it back before connection_restored.
	if _, err := agent.SendMessage(chat, "while nobody owned it"); err != nil {
		t.Fatal(err)
	}
	var r resp
	testwait.For(t, ttl+3*time.Second, "a call on replica 1 succeeds", func() bool {
		r = c.nodes[1].doNoFatal("POST", "/v1/chats/"+chat+"/messages", "tk", `{"text":"after"}`)
		return r.status == 201
	})
	took := time.Since(start)
	t.Logf("taken over in %v (lease TTL %v)", took, ttl)
	if took > ttl+2*time.Second {
		t.Errorf("takeover took %v", took)
	}
	if got := c.owner("tk"); got == 0 || got < 0 {
		t.Errorf("owner after takeover: %d", got)
	}
	expect(t, c.nodes[2].do("GET", "/v1/session", "tk", nil), 200, "")
	testwait.For(t, 5*time.Second, "the new owner's event in the log", func() bool {
		texts := c.logTexts("tk")
		return len(texts) > 0 && texts[len(texts)-1] == "after"
	})
	// The stream saw the drop, the missed message, the restore, then the
	// new message, with rising ids.
	var names []string
	var texts []string
	var prev uint64
	for len(texts) < 2 {
		m := st.event()
		if m.hasID {
			id, _ := strconv.ParseUint(m.ID, 10, 64)
			if id <= prev {
				t.Fatalf("id %s after %d", m.ID, prev)
			}
			prev = id
		}
		names = append(names, m.Event)
		if m.Event == "new_event" {
			ev, _ := m.data(t)["event"].(map[string]any)
			if text, _ := ev["text"].(string); text != "" && (len(texts) == 0 || texts[len(texts)-1] != text) {
				texts = append(texts, text)
			}
		}
	}
	if texts[0] != "while nobody owned it" || texts[1] != "after" {
		t.Errorf("stream after the takeover: texts %q (events %q)", texts, names)
	}
	if names[0] != "connection_lost" || !slices.Contains(names, "connection_restored") {
		t.Errorf("stream after the takeover: events %q, want connection_lost … connection_restored", names)
	}
	if n := c.sockets("tk"); n != 1 {
		t.Errorf("%d sockets after the takeover, want 1", n)
	}
}

// messages reads a stream's new_event messages until it has want texts
// (each message once: its id), and returns the texts and the SSE id of
// the last event read.
func messages(t *testing.T, st *sseStream, want int) (texts []string, lastID string) {
	t.Helper()
	seen := map[string]bool{}
	var prev uint64
	for len(texts) < want {
		m := st.event()
		if m.hasID {
			id, err := strconv.ParseUint(m.ID, 10, 64)
			if err != nil || id <= prev {
				t.Fatalf("event id %q after %d: not rising", m.ID, prev)
			}
			prev, lastID = id, m.ID
		}
		if m.Event != "new_event" {
			continue
		}
		d := m.data(t)
		ev, _ := d["event"].(map[string]any)
		id, _ := ev["id"].(string)
		text, _ := ev["text"].(string)
		if text == "" || seen[id] {
			continue
		}
		seen[id] = true
		texts = append(texts, text)
	}
	return texts, lastID
}

// TestClusterStreams: streams on every replica of one customer get the
// same events, with the log's sequences as ids; a stream resumes with its
// Last-Event-ID on another replica.
func TestClusterStreams(t *testing.T) {
	c := newCluster(t, 3, 3*time.Second)
	s1 := c.nodes[1].openStream("/v1/events", "st") // nobody owns it: replica 1 takes it over
	if m := s1.event(); m.Event != "customer_id" {
		t.Fatalf("first event %+v, want customer_id", m)
	}
	conn := s1.waitEvent("connected")
	if !conn.hasID {
		t.Fatal("connected without an id")
	}
	s2 := c.nodes[2].openStream("/v1/events", "st") // its snapshot comes from replica 1
	if m := s2.event(); m.Event != "customer_id" {
		t.Fatalf("first event %+v, want customer_id", m)
	}
	s2.waitEvent("connected")
	if n := c.sockets("st"); n != 1 {
		t.Fatalf("%d sockets", n)
	}

	chat, _ := c.nodes[0].startChat("st")
	for i := range 5 {
		expect(t, c.any().do("POST", "/v1/chats/"+chat+"/messages", "st", fmt.Sprintf(`{"text":"m%d"}`, i)), 201, "")
	}
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	got1, last1 := messages(t, s1, 5)
	got2, last2 := messages(t, s2, 5)
	if fmt.Sprint(got1) != fmt.Sprint(want) || fmt.Sprint(got2) != fmt.Sprint(want) {
		t.Fatalf("streams got %q and %q, want %q", got1, got2, want)
	}
	if last1 != last2 {
		t.Errorf("the streams' last ids differ: %s, %s", last1, last2)
	}

	// Resume on another replica after the stream went away.
	s2.close()
	expect(t, c.any().do("POST", "/v1/chats/"+chat+"/messages", "st", `{"text":"m5"}`), 201, "")
	s0 := c.nodes[0].openStream("/v1/events", "st", "Last-Event-ID: "+last2)
	if m := s0.event(); m.Event == "customer_id" || m.Event == "connected" {
		t.Fatalf("resumed with a snapshot: %+v", m)
	}
	s0b := c.nodes[0].openStream("/v1/events", "st", "Last-Event-ID: "+last2) // a second stream joins the mirror
	got0, _ := messages(t, s0b, 1)
	if got0[0] != "m5" {
		t.Fatalf("resumed stream got %q, want m5", got0)
	}
	if got, _ := messages(t, s1, 1); got[0] != "m5" {
		t.Fatalf("stream 1 got %q, want m5", got)
	}

	// A ticket from one replica opens a stream on another.
	r := c.nodes[0].do("POST", "/v1/tickets", "st", nil)
	ticket, _ := expect(t, r, 200, "")["ticket"].(string)
	stt := c.nodes[2].openStream("/v1/events?ticket="+ticket, "")
	if m := stt.event(); m.Event != "customer_id" {
		t.Fatalf("ticket stream starts with %+v", m)
	}
	stt.close()

	// An id this log never gave (another gateway's, a forged one): a
	// snapshot, never a silent gap.
	sf := c.nodes[1].openStream("/v1/events", "st", "Last-Event-ID: 99999999999")
	if m := sf.event(); m.Event != "customer_id" {
		t.Fatalf("a resume from an unknown id starts with %+v, want a snapshot", m)
	}
	sf.close()

	// The session ends on any replica: every stream gets "disconnected"
	// and ends.
	expect(t, c.nodes[2].do("DELETE", "/v1/session", "st", nil), 204, "")
	for i, st := range []*sseStream{s1, s0b} {
		msgs := st.ended(5 * time.Second)
		if len(msgs) == 0 || msgs[len(msgs)-1].Event != "disconnected" {
			var names []string
			for _, m := range msgs {
				names = append(names, m.Event)
			}
			t.Errorf("stream %d ended with %q, want disconnected last", i, names)
		}
	}
}

// TestClusterNothingLost: an agent keeps writing to several customers
// whose sessions replica 0 owns, while their streams are on the other
// replicas; replica 0 is cut off mid-run. Every stream gets every message
// once, in order, and the simulator never sees two sockets for a token.
func TestClusterNothingLost(t *testing.T) {
	ttl := time.Second
	c := newCluster(t, 3, ttl)
	const customers, msgs = 4, 12
	type cust struct {
		token, chat string
		st          *sseStream
	}
	var cs []*cust
	for i := range customers {
		cu := &cust{token: fmt.Sprintf("nl-%d", i)}
		cu.chat, _ = c.nodes[0].startChat(cu.token) // replica 0 owns them all
		cu.st = c.nodes[1+i%2].openStream("/v1/events", cu.token)
		cu.st.waitEvent("connected")
		cs = append(cs, cu)
	}
	agent := c.sim.Agent("agent-nl", "Agent")
	var maxSockets atomic.Int64
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			for _, cu := range cs {
				if n := int64(c.sockets(cu.token)); n > maxSockets.Load() {
					maxSockets.Store(n)
				}
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	for i := range msgs {
		if i == msgs/3 {
			c.engs[0].Conn().Close()
		}
		for _, cu := range cs {
			if _, err := agent.SendMessage(cu.chat, fmt.Sprintf("n%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	lost, dup := 0, 0
	for _, cu := range cs {
		got := map[string]int{}
		var order []string
		deadline := time.After(ttl + 8*time.Second)
		for len(got) < msgs {
			var m sseMsg
			var ok bool
			select {
			case m, ok = <-cu.st.ch:
			case <-deadline:
				ok = false
			}
			if !ok {
				break
			}
			if m.Event != "new_event" {
				continue
			}
			ev, _ := m.data(t)["event"].(map[string]any)
			text, _ := ev["text"].(string)
			if text == "" {
				continue
			}
			got[text]++
			order = append(order, text)
		}
		for i := range msgs {
			switch n := got[fmt.Sprintf("n%d", i)]; {
			case n == 0:
				lost++
			case n > 1:
				dup += n - 1
			}
		}
		for i, text := range order {
			if want := fmt.Sprintf("n%d", i); text != want {
				t.Errorf("%s: messages out of order: %q", cu.token, order)
				break
			}
		}
	}
	close(stopWatch)
	watch.Wait()
	for _, cu := range cs {
		if o := c.owner(cu.token); o < 1 {
			t.Errorf("%s: owner %d after the cut, want another replica", cu.token, o)
		}
	}
	t.Logf("%d customers × %d messages, owner cut off after %d: %d lost, %d duplicated, at most %d sockets per token",
		customers, msgs, msgs/3, lost, dup, maxSockets.Load())
	if lost != 0 || dup != 0 || maxSockets.Load() > 1 {
		t.Fail()
	}
}

// TestClusterEngineDown: a replica that lost the engine answers calls it
// would forward with 503 and Retry-After at once, and ends its streams
// with a retry hint, counted as engine_unavailable.
func TestClusterEngineDown(t *testing.T) {
	c := newCluster(t, 2, 3*time.Second)
	c.nodes[0].startChat("ed")
	st := c.nodes[1].openStream("/v1/events", "ed")
	st.waitEvent("connected")
	c.engs[1].Conn().Close()
	start := time.Now()
	r := c.nodes[1].do("GET", "/v1/chats", "ed", nil)
	expect(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Errorf("503 after %v, Retry-After %q", time.Since(start), r.header.Get("Retry-After"))
	}
	msgs := st.ended(10 * time.Second)
	retry := false
	for i, m := range msgs {
		// the hint at the end, not the one every stream starts with
		retry = retry || (m.Retry != "" && i+1 < len(msgs) && strings.Contains(msgs[i+1].Comment, "reconnect"))
	}
	if !retry {
		t.Errorf("the stream ended without a retry hint: %+v", msgs)
	}
	// Counted as what it was, not as a draining replica's.
	ends := c.nodes[1].api.m.streamEnds
	testwait.For(t, 5*time.Second, "the stream's end counted", func() bool {
		return testutil.ToFloat64(ends.WithLabelValues("engine_unavailable")) == 1
	})
	if n := testutil.ToFloat64(ends.WithLabelValues("draining")); n != 0 {
		t.Errorf("%v streams counted as draining", n)
	}
	expect(t, c.nodes[0].do("GET", "/v1/chats", "ed", nil), 200, "") // the owner serves on
}

// TestClusterRelease: an owner gives its sessions back when they idle out
// and when it shuts down, at once (not a lease TTL later): the next call
// on another replica opens the session there.
func TestClusterRelease(t *testing.T) {
	c := newClusterWith(t, 2, time.Minute, func(o *envOptions) { o.pool.IdleTimeout = 300 * time.Millisecond })
	expect(t, c.nodes[0].do("GET", "/v1/session", "rel-idle", nil), 200, "")
	testwait.For(t, 5*time.Second, "the idle session released", func() bool {
		return c.sockets("rel-idle") == 0 && c.owner("rel-idle") < 0
	})
	expect(t, c.nodes[1].do("GET", "/v1/session", "rel-idle", nil), 200, "")
	if o := c.owner("rel-idle"); o != 1 {
		t.Errorf("owner %d, want 1", o)
	}

	expect(t, c.nodes[0].do("GET", "/v1/session", "rel-down", nil), 200, "")
	// Calls on replica 1 while replica 0, the owner, shuts down: every one
	// is answered (forwarded, then taken over), but one in flight on the
	// owner's socket when it closed: 503 CONNECTION_LOST with Retry-After,
	// as in one process.
	var calls sync.WaitGroup
	calls.Go(func() {
		lost := 0
		for i := range 30 {
			r := c.nodes[1].doNoFatal("GET", "/v1/chats", "rel-down", "")
			switch {
			case r.status == 200:
			case r.status == 503 && r.header.Get("Retry-After") != "" && bytes.Contains(r.body, []byte(CodeConnectionLost)) && lost == 0:
				lost++
			default:
				t.Errorf("call %d during the owner's shutdown: %d %s", i, r.status, r.body)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	time.Sleep(30 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[0].pool.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	calls.Wait()
	expect(t, c.nodes[1].do("GET", "/v1/session", "rel-down", nil), 200, "")
	if o := c.owner("rel-down"); o != 1 {
		t.Errorf("owner %d after replica 0's shutdown, want 1", o)
	}
	if n := c.sockets("rel-down"); n != 1 {
		t.Errorf("%d sockets", n)
	}
}

// TestClusterLeaseLost: an owner that finds its lease gone (renewals
// refused: another process took its key, as after a pause longer than the
// TTL) closes its sockets by itself (fenced) and another replica takes its
// customer over; the customer's stream on a third replica goes on.
func TestClusterLeaseLost(t *testing.T) {
	c := newCluster(t, 3, 900*time.Millisecond)
	chat, _ := c.nodes[0].startChat("ll")
	st := c.nodes[2].openStream("/v1/events", "ll")
	st.waitEvent("connected")

	c.takeLease(0)
	testwait.For(t, 3*time.Second, "replica 0 fenced: its socket closed", func() bool { return c.sockets("ll") == 0 })
	if n := metricValue(t, c.nodes[0], "gateway_cluster_fenced_sessions_total"); n < 1 {
		t.Errorf("fenced sessions: %v", n)
	}
	expect(t, c.nodes[1].do("POST", "/v1/chats/"+chat+"/messages", "ll", `{"text":"later"}`), 201, "")
	if o := c.owner("ll"); o < 1 {
		t.Errorf("owner %d", o)
	}
	if n := c.sockets("ll"); n != 1 {
		t.Errorf("%d sockets", n)
	}
	if got, _ := messages(t, st, 1); got[0] != "later" {
		t.Errorf("stream got %q", got)
	}
}

// metricValue is the value of a replica's counter or gauge named name
// (one series, no labels).
func metricValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestClusterResumeTooOld: a Last-Event-ID whose successors the log no
// longer holds all (its ring of MaxEventsPerCustomer is past it) gets a
// fresh snapshot, never a silent gap; one still covered resumes.
func TestClusterResumeTooOld(t *testing.T) {
	c := newClusterEngine(t, 2, 3*time.Second, nil, func(cfg *engine.Config) { cfg.MaxEventsPerCustomer = 8 })
	chat, _ := c.nodes[0].startChat("old")
	st := c.nodes[1].openStream("/v1/events", "old")
	st.waitEvent("connected")
	expect(t, c.nodes[1].do("POST", "/v1/chats/"+chat+"/messages", "old", `{"text":"first"}`), 201, "")
	_, early := messages(t, st, 1)
	for i := range 12 { // more events than the log keeps for a customer
		expect(t, c.any().do("POST", "/v1/chats/"+chat+"/messages", "old", fmt.Sprintf(`{"text":"x%d"}`, i)), 201, "")
	}
	_, late := messages(t, st, 11)
	st.close()

	old := c.nodes[0].openStream("/v1/events", "old", "Last-Event-ID: "+early)
	if m := old.event(); m.Event != "customer_id" {
		t.Fatalf("a resume older than the log starts with %+v, want a snapshot", m)
	}
	recent := c.nodes[0].openStream("/v1/events", "old", "Last-Event-ID: "+late)
	if got, _ := messages(t, recent, 1); got[0] != "x11" {
		t.Fatalf("a resume within the log got %q, want x11", got)
	}
}

// TestClusterStreamResumeAfterCrash: the replica holding both the session
// and the customer's stream dies; the client comes back on another
// replica with its Last-Event-ID: the session is taken over and the
// stream gets every message, those sent meanwhile included, within the
// lease TTL and a margin.
func TestClusterStreamResumeAfterCrash(t *testing.T) {
	ttl := time.Second
	c := newCluster(t, 3, ttl)
	chat, _ := c.nodes[0].startChat("crash")
	st := c.nodes[0].openStream("/v1/events", "crash")
	st.waitEvent("connected")
	agent := c.sim.Agent("agent-c", "Agent")
	if _, err := agent.SendMessage(chat, "a0"); err != nil {
		t.Fatal(err)
	}
	_, last := messages(t, st, 1)

	c.engs[0].Conn().Close() // replica 0 dies, as far as the cluster can tell
	st.close()
	start := time.Now()
	for _, text := range []string{"a1", "a2"} {
		if _, err := agent.SendMessage(chat, text); err != nil {
			t.Fatal(err)
		}
	}
	again := c.nodes[1].openStream("/v1/events", "crash", "Last-Event-ID: "+last)
	got, _ := messages(t, again, 2)
	took := time.Since(start)
	t.Logf("stream resumed with every message %v after the crash (lease TTL %v)", took, ttl)
	if got[0] != "a1" || got[1] != "a2" {
		t.Errorf("resumed stream got %q, want a1, a2", got)
	}
	if took > ttl+3*time.Second {
		t.Errorf("resumed after %v", took)
	}
	if n := c.sockets("crash"); n != 1 {
		t.Errorf("%d sockets", n)
	}
}
