package httpapi

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestClusterGoneOwnerWaitedOnce: the requests for the customers of an
// owner that is gone (cut off from the engine: it answers nothing, and its
// lease holds its sessions until it lapses or is reaped) wait for that
// lapse together, not each on its own retries: the takeovers the engine
// refuses stay a few per request (the short retries that tell a gone
// owner from one about to serve, then one a second), where each request
// tried one every 200 ms before. Every request succeeds, on the replica
// that took the session over, soon after the lapse.
func TestClusterGoneOwnerWaitedOnce(t *testing.T) {
	ttl := 3 * time.Second
	c := newCluster(t, 2, ttl)
	const customers, callers = 12, 1
	for i := range customers {
		tok := fmt.Sprintf("gone-%d", i)
		c.nodes[0].startChat(tok)
		if o := c.owner(tok); o != 0 {
			t.Fatalf("%s: owner %d, want 0", tok, o)
		}
	}
	before := metricValue(t, c.nodes[1], "gateway_cluster_takeovers_refused_total")

	c.engs[0].Conn().Close() // replica 0 is gone: no renewal, no answer
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		last time.Duration // the last request's answer, after the cut
	)
	for i := range customers {
		for range callers {
			wg.Go(func() {
				r := c.nodes[1].doNoFatal("GET", "/v1/chats", fmt.Sprintf("gone-%d", i), "")
				if r.status != 200 {
					t.Errorf("gone-%d: %d %s", i, r.status, r.body)
				}
				mu.Lock()
				last = max(last, time.Since(start))
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	refused := metricValue(t, c.nodes[1], "gateway_cluster_takeovers_refused_total") - before
	// Per request: goneStrikes short rounds, one round a goneRecheck
	// while it waits, the round that takes the session over, and one
	// round of slack for a request whose rounds straddled the lapse.
	perRequest := float64(3 + int(last/time.Second) + 2)
	t.Logf("%d requests answered within %v of the cut (lease %v); %v takeovers refused, bound %v",
		customers*callers, last, ttl, refused, perRequest*customers*callers)
	if refused > perRequest*customers*callers {
		t.Errorf("%v takeovers refused for %d requests in %v: more than %v each", refused, customers*callers, last, perRequest)
	}
	if last > ttl+2*time.Second {
		t.Errorf("the last request answered %v after the cut, lease %v", last, ttl)
	}
	for i := range customers {
		if o := c.owner(fmt.Sprintf("gone-%d", i)); o != 1 {
			t.Errorf("gone-%d: owner %d after the takeover, want 1", i, o)
		}
	}
}
