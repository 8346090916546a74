package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
)

// TestIsolationUnderLoad: two customers hammer the gateway at the same time
// (messages, summaries, threads, history, properties, sneak peeks, session
// reads, stream tickets, and attempts on each other's chat) while an agent
// writes to both. Neither ever sees the other's events or data: no REST
// answer and no stream event of one carries the other's chat id, customer
// id or text; every attempt on the other's chat is 404 not_found and
// changes nothing.
func TestIsolationUnderLoad(t *testing.T) {
	t.Parallel()
	const hammerFor = 3 * time.Second
	sim, url := chatiotest.Start(t, chatiosim.Config{})
	gw := startGatewayWith(t, url, 1, gatewayOptions{
		http: func(c *httpapi.Config) { c.RateLimit, c.RateBurst = 10000, 10000 },
	})
	client := relClient(t)
	type cust struct {
		token, secret, id, chat string
		recs                    []*relRecorder
	}
	cs := [2]*cust{{token: "iso-alpha", secret: "alpha-secret"}, {token: "iso-bravo", secret: "bravo-secret"}}
	for _, c := range cs {
		c.id = chatiosim.CustomerIDForToken(c.token)
		c.chat = relStartChat(t, client, gw.URL, c.token)
		for range 2 {
			r := relRecord(t, client, gw.URL, c.token, true)
			r.waitFor(t, "connected", 10*time.Second, hasEvent("connected"))
			c.recs = append(c.recs, r)
		}
	}
	// a stream opened with a ticket is the ticket owner's
	for _, c := range cs {
		st, _, b := relDo(client, "POST", gw.URL+"/v1/tickets", c.token, "")
		if st != 200 {
			t.Fatalf("ticket: %d %s", st, b)
		}
		ticket := jsonField(b, "ticket")
		r := relRecordTicket(t, client, gw.URL, ticket)
		r.waitFor(t, "customer_id", 10*time.Second, hasEvent("customer_id"))
		if m := r.messages()[0]; m.Event != "customer_id" || m.Data != `"`+c.id+`"` {
			t.Fatalf("ticket stream of %s starts with %s %s", c.token, m.Event, m.Data)
		}
		r.stop()
	}

	var mu sync.Mutex
	var leaks []string
	calls := 0
	leak := func(i int, what, body string) {
		other := cs[1-i]
		for _, s := range []string{other.chat, other.id, other.secret, other.token} {
			if strings.Contains(body, s) {
				mu.Lock()
				leaks = append(leaks, fmt.Sprintf("%s got %q in %s: %.200s", cs[i].token, s, what, body))
				mu.Unlock()
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	agent := sim.Agent("iso-agent", "Agent")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			c := cs[n%2]
			_, _ = agent.SendMessage(c.chat, "agent to "+c.secret)
		}
	}()
	for i, c := range cs {
		other := cs[1-i]
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := gw.URL + "/v1"
				own := base + "/chats/" + c.chat
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					type req struct{ method, url, body string }
					var rq req
					switch (n + w) % 8 {
					case 0:
						rq = req{"POST", own + "/messages", fmt.Sprintf(`{"text":"%s %d-%d"}`, c.secret, w, n)}
					case 1:
						rq = req{"GET", base + "/chats", ""}
					case 2:
						rq = req{"GET", own + "/threads-summary", ""}
					case 3:
						rq = req{"GET", own + "/history", ""}
					case 4:
						rq = req{"PATCH", own + "/properties", fmt.Sprintf(`{"iso":{"owner":"%s"}}`, c.secret)}
					case 5:
						rq = req{"PUT", own + "/sneak-peek", fmt.Sprintf(`{"text":"%s typing"}`, c.secret)}
					case 6:
						rq = req{"GET", base + "/session", ""}
					case 7: // the other customer's chat
						st, _, b := relDo(client, "POST", base+"/chats/"+other.chat+"/messages", c.token, `{"text":"intruder"}`)
						if st != 404 || jsonField(b, "type") != "not_found" {
							mu.Lock()
							leaks = append(leaks, fmt.Sprintf("%s posting to the other's chat: %d %s", c.token, st, b))
							mu.Unlock()
						}
						st, _, b = relDo(client, "GET", base+"/chats/"+other.chat+"/history", c.token, "")
						if st != 404 {
							mu.Lock()
							leaks = append(leaks, fmt.Sprintf("%s reading the other's history: %d %s", c.token, st, b))
							mu.Unlock()
						}
						continue
					}
					st, _, b := relDo(client, rq.method, rq.url, c.token, rq.body)
					mu.Lock()
					calls++
					mu.Unlock()
					if st >= 500 || st == 0 {
						mu.Lock()
						leaks = append(leaks, fmt.Sprintf("%s %s %s: %d %s", c.token, rq.method, rq.url, st, b))
						mu.Unlock()
					}
					leak(i, rq.method+" "+strings.TrimPrefix(rq.url, gw.URL), string(b))
					if strings.HasSuffix(rq.url, "/session") && jsonField(b, "customerId") != c.id {
						mu.Lock()
						leaks = append(leaks, fmt.Sprintf("%s: session of %s", c.token, b))
						mu.Unlock()
					}
				}
			}()
		}
	}
	time.Sleep(hammerFor) // how long the load lasts: the thing under test
	close(stop)
	wg.Wait()

	// Both streams of each customer have everything of their own chat and
	// nothing of the other's.
	for i, c := range cs {
		last := sim.Events(c.chat)
		lastID := last[len(last)-1].ID
		for si, r := range c.recs {
			r.waitFor(t, "the chat's last event", 10*time.Second, func(ms []relMsg) bool {
				for _, m := range ms {
					if ne, ok := parseNewEvent(m); ok && ne.Event.ID == lastID {
						return true
					}
				}
				return false
			})
			n := 0
			for _, m := range r.messages() {
				leak(i, fmt.Sprintf("stream %d event %s", si, m.Event), m.Data)
				if ne, ok := parseNewEvent(m); ok {
					n++
					if ne.Chat != c.chat {
						leaks = append(leaks, fmt.Sprintf("%s stream %d: event of chat %s", c.token, si, ne.Chat))
					}
				}
			}
			if si == 0 {
				t.Logf("%s: %d events on each stream", c.token, n)
			}
		}
		for _, ev := range sim.Events(c.chat) {
			if ev.Text == "intruder" {
				leaks = append(leaks, fmt.Sprintf("%s's chat got the other's message", c.token))
			}
		}
	}
	t.Logf("%d REST calls by two customers in %v", calls, hammerFor)
	for _, l := range leaks {
		t.Error(l)
	}
}
