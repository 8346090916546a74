package httpapi

import (
	"strconv"
	"testing"
	"time"
)

// TestClusterRateLimit: the per-customer limit holds across replicas for
// the calls: a call another replica forwards to the session's owner is
// counted in the owner's bucket too, so that the customer gets RateBurst
// calls through, not RateBurst per replica, and the owner's refusal is the
// same 429 with the owner's Retry-After. (Before, with two replicas, the
// customer got twice the burst.)
func TestClusterRateLimit(t *testing.T) {
	const burst = 4
	c := newClusterWith(t, 2, 3*time.Second, func(o *envOptions) {
		o.cfg.RateLimit = 0.01 // a request every 100 s: nothing refills during the test
		o.cfg.RateBurst = burst
	})
	expect(t, c.nodes[0].do("GET", "/v1/chats", "rl", nil), 200, "")
	if o := c.owner("rl"); o != 0 {
		t.Fatalf("owner %d, want 0", o)
	}
	ok := 1
	for i := range 2 * burst {
		r := c.nodes[1].do("GET", "/v1/chats", "rl", nil)
		switch r.status {
		case 200:
			ok++
		case 429:
			expect(t, r, 429, CodeRequestFailed)
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 50 {
				t.Errorf("call %d: Retry-After %q", i, r.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	expect(t, c.nodes[0].do("GET", "/v1/chats", "rl", nil), 429, CodeRequestFailed)
	if ok != burst {
		t.Errorf("%d calls went through on two replicas, want %d (the burst, cluster-wide)", ok, burst)
	}
	expect(t, c.nodes[1].do("GET", "/v1/chats", "rl-other", nil), 200, "") // another customer has its own
}
