package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// TestChaos is the proof of "every event of their chats exactly once and in
// order, whatever happens between the gateway and chat.io".
//
// 30 customers, each with a chat and two open streams (recorded by clients
// that reconnect with Last-Event-ID, as EventSource does); an agent writes
// in every chat continuously and each customer posts messages over REST;
// meanwhile the simulator drops every socket again and again, stalls some
// customers' sockets (no answers, no pongs), stalls everything once, and
// refuses connections for a while. Afterwards, on every stream: every agent
// message of the customer's chat and every customer message whose POST
// succeeded arrived exactly once; the chat's events arrived in the chat's
// order; no event of another customer's chat arrived; stream ids rose
// strictly. The counts are logged (go test -v -run TestChaos).
//
// It runs alone, not beside the parallel tests: there, on a loaded
// two-core machine, it failed in 3 of 7 runs, twice with events lost
// (both streams of one customer missing the same agent messages after the
// settle) and once with a set-up call timing out; alone, in none of 3.
// The loss is not explained yet.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos takes ~15 s")
	}
	const (
		customers     = 30
		streamsPer    = 2
		chaosFor      = 8 * time.Second
		agentEvery    = 150 * time.Millisecond
		customerEvery = 900 * time.Millisecond
		settleWithin  = 30 * time.Second
	)
	sim, url := chatiotest.Start(t, chatiosim.Config{RequestTimeout: 2 * time.Second})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		session: func(c *session.Config) {
			c.Upstream.PingInterval = 250 * time.Millisecond // a stall shows within ~0.5 s
			c.Upstream.PongTimeout = 250 * time.Millisecond
			c.Upstream.RequestTimeout = 1500 * time.Millisecond
			c.ReconnectMin = 20 * time.Millisecond
			c.ReconnectMax = 400 * time.Millisecond
			c.ReconnectWait = 3 * time.Second
			c.DialTimeout = 4 * time.Second
			c.MaxConcurrentDials = 8
			c.ReplayBuffer = 8192
			c.SubscriberBuffer = 8192
		},
		http: func(c *httpapi.Config) { c.RateLimit, c.RateBurst = 1000, 1000 },
	})
	client := relClient(t)

	type customer struct {
		token, id, chat string
		recs            []*relRecorder

		mu       sync.Mutex
		required map[string]bool // event ids that must arrive once: agent messages, customer messages answered 201
		failed   int             // customer POSTs that failed (the message may or may not exist)
	}
	cs := make([]*customer, customers)
	for i := range cs {
		c := &customer{token: fmt.Sprintf("chaos-%02d", i), required: map[string]bool{}}
		c.id = chatiosim.CustomerIDForToken(c.token)
		c.chat = relStartChat(t, client, gw.URL, c.token)
		for range streamsPer {
			c.recs = append(c.recs, relRecord(t, client, gw.URL, c.token, true))
		}
		cs[i] = c
	}
	for _, c := range cs {
		for _, r := range c.recs {
			r.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
		}
	}

	// Traffic: an agent in every chat, every customer over REST.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	var agentSent, custOK, custFailed, agentErrs atomic.Int64
	agent := sim.Agent("chaos-agent", "Chaos Agent")
	for _, c := range cs {
		traffic.Add(2)
		go func() {
			defer traffic.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(agentEvery/2 + rand.N(agentEvery)):
				}
				id, err := agent.SendMessage(c.chat, fmt.Sprintf("agent %s #%d", c.token, n))
				if err != nil {
					agentErrs.Add(1)
					continue
				}
				agentSent.Add(1)
				c.mu.Lock()
				c.required[id] = true
				c.mu.Unlock()
			}
		}()
		go func() {
			defer traffic.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(customerEvery/2 + rand.N(customerEvery)):
				}
				st, _, b := relDo(client, "POST", gw.URL+"/v1/chats/"+c.chat+"/messages", c.token,
					fmt.Sprintf(`{"text":"customer %s #%d"}`, c.token, n))
				c.mu.Lock()
				if id := jsonField(b, "id"); st == 201 && id != "" {
					c.required[id] = true
					custOK.Add(1)
				} else {
					c.failed++
					custFailed.Add(1)
				}
				c.mu.Unlock()
			}
		}()
	}

	// Faults.
	var drops, dropped, stalls atomic.Int64
	dropAll := func() {
		drops.Add(1)
		dropped.Add(int64(sim.DropAll()))
	}
	stallSome := func(from, n int, d time.Duration) {
		for _, c := range cs[from : from+n] {
			sim.StallCustomer(c.id, true)
		}
		stalls.Add(int64(n))
		time.AfterFunc(d, func() {
			for _, c := range cs[from : from+n] {
				sim.StallCustomer(c.id, false)
			}
		})
	}
	schedule := []struct {
		at time.Duration
		do func()
	}{
		{800 * time.Millisecond, dropAll},
		{1600 * time.Millisecond, func() { stallSome(0, 5, 1200*time.Millisecond) }},
		{2200 * time.Millisecond, dropAll},
		{3200 * time.Millisecond, func() { sim.Stall(true); stalls.Add(customers) }},
		{3900 * time.Millisecond, func() { sim.Stall(false) }},
		{4400 * time.Millisecond, func() { sim.RefuseConnections(700 * time.Millisecond); dropAll() }},
		{5600 * time.Millisecond, func() { stallSome(10, 5, 1500*time.Millisecond) }},
		{6000 * time.Millisecond, dropAll},
		{7000 * time.Millisecond, dropAll},
	}
	// The fault schedule runs on the wall clock: the traffic it disturbs
	// is real (sockets, timers of the gateway and the simulator).
	start := time.Now()
	for _, s := range schedule {
		time.Sleep(time.Until(start.Add(s.at)))
		s.do()
	}
	time.Sleep(time.Until(start.Add(chaosFor)))
	close(stop)
	traffic.Wait()
	sim.Stall(false)
	sim.RefuseConnections(0)
	for _, c := range cs {
		sim.StallCustomer(c.id, false)
	}

	// Everything required arrives on every stream (generous deadline), then
	// a pause for anything that would arrive twice.
	deadline := time.Now().Add(settleWithin)
	for _, c := range cs {
		c.mu.Lock()
		want := len(c.required)
		req := c.required
		c.mu.Unlock()
		for _, r := range c.recs {
			for {
				got := 0
				for _, m := range r.messages() {
					if ne, ok := parseNewEvent(m); ok && req[ne.Event.ID] {
						got++
					}
				}
				if got >= want || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // a window for duplicates to show: absence is the thing under test

	// The verdict.
	var delivered, duplicates, missing, outOfOrder, foreign, badIDs, resumes, resyncs int
	var lostSeen, restoredSeen int
	for _, c := range cs {
		order := map[string]int{}
		for i, ev := range sim.Events(c.chat) {
			order[ev.ID] = i
		}
		for si, r := range c.recs {
			msgs := r.messages()
			seen := map[string]int{}
			lastIdx, lastSeq := -1, uint64(0)
			for _, m := range msgs {
				if m.ID != "" {
					if s := seqOf(m.ID); s <= lastSeq {
						badIDs++
						t.Errorf("%s stream %d: id %s after %d", c.token, si, m.ID, lastSeq)
					} else {
						lastSeq = s
					}
				}
				if si == 0 {
					switch m.Event {
					case "connection_lost":
						lostSeen++
					case "connection_restored":
						restoredSeen++
					}
				}
				if m.Event == "connected" && m.Conn > 0 {
					resyncs++ // a resume that was too far behind: fresh snapshot
				}
				ne, ok := parseNewEvent(m)
				if !ok {
					continue
				}
				if ne.Chat != c.chat {
					foreign++
					t.Errorf("%s stream %d: event of chat %s", c.token, si, ne.Chat)
					continue
				}
				seen[ne.Event.ID]++
				if seen[ne.Event.ID] > 1 {
					duplicates++
					t.Errorf("%s stream %d: %s (%q) delivered %d times", c.token, si, ne.Event.ID, ne.Event.Text, seen[ne.Event.ID])
					continue
				}
				idx, known := order[ne.Event.ID]
				if !known {
					t.Errorf("%s stream %d: unknown event %s", c.token, si, ne.Event.ID)
					continue
				}
				if idx < lastIdx {
					outOfOrder++
					t.Errorf("%s stream %d: %s out of order", c.token, si, ne.Event.ID)
				}
				lastIdx = max(lastIdx, idx)
			}
			var miss []string
			for id := range c.required {
				if seen[id] == 0 {
					miss = append(miss, id)
				} else {
					delivered++
				}
			}
			if len(miss) > 0 {
				sort.Strings(miss)
				missing += len(miss)
				t.Errorf("%s stream %d: %d missing: %s", c.token, si, len(miss), strings.Join(miss[:min(5, len(miss))], " "))
			}
			r.mu.Lock()
			resumes += r.conns - 1
			r.mu.Unlock()
		}
	}
	reconnects := metricSum(t, gw.Reg, "gateway_upstream_reconnects_total")
	dialFailures := metricSum(t, gw.Reg, "gateway_upstream_dial_failures_total")
	gapDupsDropped := metricSum(t, gw.Reg, "gateway_events_dropped_total", "reason", "duplicate")
	t.Logf("chaos %v: %d customers × %d streams; sent %d (agent %d, customer %d; %d customer POSTs failed, outcome unknown); "+
		"delivered %d of %d required deliveries; duplicates %d, missing %d, out of order %d, foreign %d, bad ids %d; "+
		"faults: %d drop-alls (%d sockets), %d customer stalls; upstream reconnects %.0f, dial failures %.0f, "+
		"connection_lost/restored seen %d/%d; push duplicates dropped after gap fill %.0f; stream resumes %d (resyncs %d)",
		chaosFor, customers, streamsPer, agentSent.Load()+custOK.Load(), agentSent.Load(), custOK.Load(), custFailed.Load(),
		delivered, (int(agentSent.Load())+int(custOK.Load()))*streamsPer, duplicates, missing, outOfOrder, foreign, badIDs,
		drops.Load(), dropped.Load(), stalls.Load(), reconnects, dialFailures, lostSeen, restoredSeen, gapDupsDropped, resumes, resyncs)
	if agentErrs.Load() > 0 {
		t.Errorf("%d agent messages could not be sent", agentErrs.Load())
	}
	if reconnects < float64(customers) {
		t.Errorf("only %.0f reconnects: the faults did not bite", reconnects)
	}
	if resyncs > 0 {
		t.Errorf("%d streams had to resync from a snapshot", resyncs)
	}
}

// jsonField is the string member name of a JSON object ("" otherwise).
func jsonField(b []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}
