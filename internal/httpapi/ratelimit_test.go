package httpapi

import (
	"strconv"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// clock is a limiter's clock that tests move.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func testLimiter(rate float64, burst, size int) (*rateLimiter, *clock) {
	c := &clock{time.Unix(1000, 0)}
	l := newRateLimiter(rate, burst, size)
	l.now = c.now
	return l, c
}

// drain takes every request token's bucket holds; fatal if it held fewer
// than n.
func drain(t *testing.T, l *rateLimiter, token string, n int) {
	t.Helper()
	for i := range n {
		if err := l.allow(token); err != nil {
			t.Fatalf("request %d of %s: %v", i, token, err)
		}
	}
	limited(t, l, token)
}

// limited: token's next request is refused by the limit.
func limited(t *testing.T, l *rateLimiter, token string) *session.RateLimitError {
	t.Helper()
	err := l.allow(token)
	rl, ok := err.(*session.RateLimitError)
	if !ok {
		t.Fatalf("%s: %v, want the rate limit", token, err)
	}
	return rl
}

// TestRateLimiterRefill: a bucket holds burst requests and refills at rate;
// the refusal says how long until the next request is allowed.
func TestRateLimiterRefill(t *testing.T) {
	l, c := testLimiter(10, 2, 100)
	drain(t, l, "a", 2)
	c.add(50 * time.Millisecond)
	if rl := limited(t, l, "a"); rl.Wait <= 0 || rl.Wait > 50*time.Millisecond || rl.RetryAfter() != "1" {
		t.Fatalf("wait %v, Retry-After %s", rl.Wait, rl.RetryAfter())
	}
	c.add(50 * time.Millisecond) // 10/s: one more
	drain(t, l, "a", 1)
	c.add(time.Hour) // refilled, up to the burst only
	drain(t, l, "a", 2)
	if err := l.allow("b"); err != nil { // another token has its own bucket
		t.Fatal(err)
	}
}

// TestRateLimiterFloodBounded: a flood of new tokens is never refused for
// want of room (it used to be, with OVERLOADED, once the table was full:
// real customers arriving during a flood were locked out), and the table
// never holds more than its bound.
func TestRateLimiterFloodBounded(t *testing.T) {
	const size = 100
	l, c := testLimiter(10, 5, size)
	for i := range 50 * size {
		if err := l.allow("random-" + strconv.Itoa(i)); err != nil {
			t.Fatalf("new token %d refused: %v", i, err)
		}
		if n := l.len(); n > size {
			t.Fatalf("%d buckets held, bound %d", n, size)
		}
		if i%1000 == 0 {
			c.add(time.Millisecond)
		}
	}
	if err := l.allow("customer"); err != nil {
		t.Fatalf("a customer after the flood: %v", err)
	}
}

// TestRateLimiterFloodKeepsLimit: random tokens do not reset a limited
// customer's bucket cheaply. One that keeps sending stays limited through
// any flood; one that goes quiet keeps its bucket through at least half
// the table's bound of new tokens.
func TestRateLimiterFloodKeepsLimit(t *testing.T) {
	const size = 100
	l, _ := testLimiter(1e-6, 3, size) // the clock stands still: no refill
	drain(t, l, "busy", 3)
	for i := range 50 * size {
		_ = l.allow("random-" + strconv.Itoa(i))
		if i%(size/4) == 0 {
			limited(t, l, "busy")
		}
	}

	l, _ = testLimiter(1e-6, 3, size)
	for i := range size/2 - 1 { // the quiet customer is the last to fit its generation
		_ = l.allow("before-" + strconv.Itoa(i))
	}
	drain(t, l, "quiet", 3)
	for i := range size / 2 {
		_ = l.allow("random-" + strconv.Itoa(i))
	}
	limited(t, l, "quiet")
}

// TestRateLimiterForgetsIdle: a bucket untouched for a refill period is
// dropped (it is full: no answer changes), one touched within it is kept
// across the change of generation, and a table left idle for two periods
// holds nothing but the next token.
func TestRateLimiterForgetsIdle(t *testing.T) {
	l, c := testLimiter(1, 4, 100) // period: 4s
	_ = l.allow("early")           // t=0: the first generation starts
	c.add(3500 * time.Millisecond)
	drain(t, l, "late", 4)        // t=3.5s
	c.add(500 * time.Millisecond) // t=4s: a new generation; both move to prev
	_ = l.allow("other")
	if n := l.len(); n != 3 {
		t.Fatalf("%d buckets after one period, want 3", n)
	}
	if rl := limited(t, l, "late"); rl.Wait != 500*time.Millisecond { // 0.5 of 1 refilled
		t.Fatalf("late's state lost: wait %v", rl.Wait)
	}
	c.add(4 * time.Second) // t=8s: "early" (t=0) is dropped
	_ = l.allow("other")
	if n := l.len(); n != 2 {
		t.Fatalf("%d buckets after two periods, want 2 (late, other)", n)
	}
	c.add(8 * time.Second) // two idle periods: all dropped
	_ = l.allow("next")
	if n := l.len(); n != 1 {
		t.Fatalf("%d buckets after two idle periods, want 1", n)
	}
	drain(t, l, "late", 4) // forgotten: a full bucket, as it would have refilled to
}

// BenchmarkRateLimiter: the cost of one allow for a known token with an
// empty table and with a table full of random tokens, and for a new token
// each call into the full table (what a flood of random bearer strings
// sends). The clock stands still, so nothing refills while it runs.
func BenchmarkRateLimiter(b *testing.B) {
	now := time.Unix(1000, 0)
	newLimiter := func(full bool) *rateLimiter {
		l := newRateLimiter(1e9, 1e9, maxRateBuckets)
		l.now = func() time.Time { return now }
		_ = l.allow("customer") // a customer active before the flood
		if full {
			for i := range maxRateBuckets {
				_ = l.allow("random-" + strconv.Itoa(i))
			}
		}
		return l
	}
	const pool = 1 << 20
	tokens := make([]string, pool)
	for i := range tokens {
		tokens[i] = "new-token-" + strconv.Itoa(i)
	}
	for _, full := range []bool{false, true} {
		name := "empty"
		if full {
			name = "full"
		}
		b.Run(name+"/known", func(b *testing.B) {
			l := newLimiter(full)
			for b.Loop() {
				_ = l.allow("customer")
			}
		})
		if !full {
			continue // a stream of new tokens fills an empty table
		}
		b.Run(name+"/new", func(b *testing.B) {
			l := newLimiter(full)
			i := 0
			for b.Loop() {
				_ = l.allow(tokens[i%pool])
				i++
			}
		})
	}
}
