package httpapi

import (
	"hash/maphash"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
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
// Several replicas. Each replica counts the requests it receives; behind
// a round-robin balancer that alone would give a customer the limit once
// per replica. In cluster mode New also hands the limiter to the pool
// (session.Pool.SetCallLimit): the owner of a customer's session counts
// every SDK call another replica forwards to it in the customer's bucket
// here, the one its own requests are counted in, and refuses what is over
// (the same 429, with its own Retry-After: session.RateLimitError crosses
// back). So the SDK calls (every /v1 REST route on the session but GET
// /v1/session) are limited cluster-wide: at most RateBurst at once and
// RateLimit per second for the customer, wherever they are received (a
// forwarded call is also counted where it was received, which refuses
// nothing the owner would let through). Tickets, streams opened with the
// header, GET /v1/session and uploads (sent upstream from the replica that
// receives them) are limited per replica: up to N times the limit with N
// replicas.
//
// The table of buckets. The limit is checked before the token is known to
// be good (that takes a login upstream, which the limit protects), so
// anyone can make the gateway hold a bucket for any string. The table is
// therefore bounded (maxRateBuckets) and costs O(1) per request whatever
// it holds: two generations of maps, cur and prev. A request looks its
// bucket up in cur, then in prev (moving it to cur); a new bucket goes
// into cur. cur becomes prev, and prev is dropped whole, when
//
//   - cur is a refill period old (burst/rate, at least a second): every
//     bucket in prev was then last touched a whole period ago, so it has
//     refilled completely and carries no information; dropping it changes
//     no answer. With steady traffic the table holds the tokens seen in
//     the last one to two periods.
//   - cur holds half the table (a flood of new tokens): memory stays within
//     maxRateBuckets buckets, and no token is ever refused for want of room.
//
// The trade-off, under a flood of random tokens: it cannot lock anyone
// out, since no token is refused for want of room and a request costs the
// same whatever the table holds; but it can make the table forget a bucket
// early, which gives that token a full burst again. A bucket is forgotten
// only when it goes untouched while at least maxRateBuckets/2 new tokens
// arrive, and a customer being limited is one that keeps sending: each of
// its requests moves its bucket back into cur. Resetting a limit thus takes
// 50,000 requests with fresh tokens to win back at most RateBurst
// requests.
//
// Why not a library: golang.org/x/time/rate's Limiter is a bucket with its
// own mutex, 80 bytes with a pointer against 16 without, and nothing to
// bound a table of them; hashicorp/golang-lru/v2 would bound the table, but
// with a heap entry of several pointers per bucket that the collector marks
// on every cycle (100,000 of them under a flood), and by count alone, where
// the generations also forget idle buckets by age. Here a bucket is two
// numbers under a seeded 64-bit hash of the token, with no pointer, so the
// collector never scans the table, and a dropped generation is one map
// left to it.

// maxRateBuckets bounds the rate limiter's table.
const maxRateBuckets = 100000

// rateLimiter holds a token bucket per access token, in two generations.
type rateLimiter struct {
	rate   float64      // tokens per second; immutable
	burst  float64      // bucket size; immutable
	half   int          // buckets one generation holds at most; immutable
	period int64        // ns after which an untouched bucket is full (≥ 1s); immutable
	seed   maphash.Seed // immutable

	mu       sync.Mutex
	now      func() time.Time  // the clock (tests move it)
	epoch    time.Time         // guarded by mu: the zero of bucket times, the clock's first reading
	cur      map[uint64]bucket // guarded by mu: buckets touched since curStart
	prev     map[uint64]bucket // guarded by mu: buckets last touched in the generation before
	curStart int64             // guarded by mu: when cur became current
}

// bucket is one token's bucket. It holds no pointer, so the collector
// never scans the maps.
type bucket struct {
	tokens float64
	last   int64 // ns since the limiter's epoch
}

// newRateLimiter: rate per second, burst at once, at most size buckets.
func newRateLimiter(rate float64, burst, size int) *rateLimiter {
	period := float64(burst) / rate * float64(time.Second)
	return &rateLimiter{
		rate:   rate,
		burst:  float64(burst),
		half:   max(1, size/2),
		period: int64(min(max(period, float64(time.Second)), float64(math.MaxInt64/4))),
		seed:   maphash.MakeSeed(),
		now:    time.Now,
	}
}

// allow takes one request from token's bucket. It returns nil or a
// *session.RateLimitError (the session package's type, so that an owner's
// refusal of a forwarded call crosses to the replica that received it:
// session.EncodeError); it never refuses a token for want of room.
func (l *rateLimiter) allow(token string) error {
	// A seeded 64-bit hash: two tokens share a bucket only by a collision
	// that no one who does not know the seed can aim for (among 100,000
	// buckets, a chance of 3e-10), and no token is held.
	key := maphash.String(l.seed, token)

	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if l.epoch.IsZero() {
		l.epoch = t
	}
	now := int64(t.Sub(l.epoch))
	if age := now - l.curStart; age >= l.period {
		// Every bucket in prev, and in cur too after two periods, was
		// last touched a period ago or more: full, as a new one would be.
		l.rotateLocked(now, age >= 2*l.period)
	}
	b, ok := l.cur[key]
	if !ok {
		if b, ok = l.prev[key]; ok {
			delete(l.prev, key)
		} else {
			b = bucket{tokens: l.burst, last: now}
		}
		if len(l.cur) >= l.half {
			l.rotateLocked(now, false) // a flood: prev goes before its time
		}
		if l.cur == nil {
			l.cur = make(map[uint64]bucket)
		}
	}
	if el := now - b.last; el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(time.Second)*l.rate)
	}
	b.last = now
	var err error
	if b.tokens >= 1 {
		b.tokens--
	} else {
		err = &session.RateLimitError{Wait: time.Duration((1 - b.tokens) / l.rate * float64(time.Second))}
	}
	l.cur[key] = b
	return err
}

// rotateLocked starts a new generation at now: cur becomes prev and the old
// prev is dropped, or both are when both is set. mu held.
func (l *rateLimiter) rotateLocked(now int64, both bool) {
	l.prev = l.cur
	if both {
		l.prev = nil
	}
	l.cur = nil // made by the next new bucket
	l.curStart = now
}

// len is the number of buckets held.
func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
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
