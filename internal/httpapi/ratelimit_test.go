package httpapi

import (
	"strconv"
	"testing"
	"time"
)

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
