package httpapi

import (
	"crypto/sha256"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The per-token request rate limit.
//
// Every /v1 request authenticated by a bearer token takes one token from
// that access token's bucket (RateLimit per second, RateBurst at most);
// an empty bucket answers
//
//	429 {"code":"REQUEST_FAILED","type":"too_many_requests","message":...}
//	Retry-After: <seconds until the bucket holds a token again>
//
// Why 429 REQUEST_FAILED/too_many_requests and not 503 OVERLOADED: the
// refusal is about this customer's own pace, not the gateway's load.
// OVERLOADED (503) tells a client that the service is full and that
// anyone's retry may fail; 429 tells it to slow down, which is what it must
// do. The contract already gives 429 to REQUEST_FAILED with type
// too_many_requests (chat.io's own rate limit, which the SDK reports the
// same way), so a client handles the gateway's limit and the upstream's
// with one branch, and Retry-After says when to come back.
//
// Streams opened with a ticket are not counted again: the ticket itself was
// (POST /v1/tickets), and it serves one stream.
//
// Memory: one bucket per access token seen recently, keyed by a hash of
// the token, at most maxRateBuckets. Buckets that have refilled completely
// carry no information and are swept; when the table is still full, new
// tokens are refused with OVERLOADED (the gateway, not the customer, is
// over its limit).

// maxRateBuckets bounds the rate limiter's table.
const maxRateBuckets = 100000

// rateLimitedError is a request refused by the per-token rate limit.
type rateLimitedError struct{ wait time.Duration }

func (e *rateLimitedError) Error() string {
	return "rate limit: retry in " + e.wait.String()
}

// retryAfter is the Retry-After value: whole seconds, at least 1.
func (e *rateLimitedError) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.wait.Seconds()))))
}

// rateLimiter holds a token bucket per access token.
type rateLimiter struct {
	rate  float64 // tokens per second; immutable
	burst float64 // bucket size; immutable
	max   int     // buckets held at most; immutable

	mu      sync.Mutex
	now     func() time.Time     // the clock (tests move it)
	buckets map[[16]byte]*bucket // guarded by mu
	sweep   time.Time            // guarded by mu: next sweep regardless of size
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst, max int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), max: max, now: time.Now, buckets: make(map[[16]byte]*bucket)}
}

// allow takes one request from token's bucket. It returns nil, a
// *rateLimitedError, or OVERLOADED when the table of buckets is full.
func (l *rateLimiter) allow(token string) error {
	sum := sha256.Sum256([]byte(token))
	var key [16]byte
	copy(key[:], sum[:16])

	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max || now.After(l.sweep) {
			l.sweepLocked(now)
		}
		if len(l.buckets) >= l.max {
			return overloaded("too many clients; retry later")
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return &rateLimitedError{wait: wait}
}

// sweepLocked forgets buckets that have refilled completely. mu held.
func (l *rateLimiter) sweepLocked(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	l.sweep = now.Add(max(full, time.Second))
}

// len is the number of buckets held.
func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limitRate applies the per-token rate limit to one request of token;
// false when it has answered the request with the refusal.
func (s *Server) limitRate(w http.ResponseWriter, r *http.Request, token string) bool {
	err := s.limiter.allow(token)
	if err == nil {
		return true
	}
	s.writeError(w, r, err)
	return false
}
