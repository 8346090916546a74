package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxTokenLen bounds an access token taken from the Authorization header.
const maxTokenLen = 8 << 10

// bearer returns the access token of "Authorization: Bearer <token>" (the
// scheme is case-insensitive), or an AUTHENTICATION error. Two
// Authorization headers are refused: a proxy that logs, hashes or routes
// on their joined value would disagree with the gateway about who calls.
func bearer(r *http.Request) (string, error) {
	hs := r.Header.Values("Authorization")
	if len(hs) > 1 {
		return "", unauthenticated("more than one Authorization header")
	}
	if len(hs) == 0 || hs[0] == "" {
		return "", unauthenticated("missing Authorization: Bearer <token> header")
	}
	h := hs[0]
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("the Authorization header must be Bearer <token>")
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen || !printableASCII(token) {
		return "", unauthenticated("invalid bearer token")
	}
	return token, nil
}

// printableASCII: visible ASCII only (RFC 6750 b64token is narrower still).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ticketStore holds single-use stream tickets: ticket → token, each valid
// for ttl. Bounded: expired tickets are swept when the store is full, and a
// store still full refuses new tickets.
type ticketStore struct {
	ttl time.Duration // immutable
	max int           // immutable

	mu      sync.Mutex       // guards the fields below
	now     func() time.Time // the clock (tests move it)
	tickets map[string]ticket
	sweep   time.Time // next time expired tickets are swept regardless of size
}

type ticket struct {
	token   string
	expires time.Time
}

func newTicketStore(ttl time.Duration, max int) *ticketStore {
	return &ticketStore{ttl: ttl, max: max, now: time.Now, tickets: make(map[string]ticket)}
}

// issue stores a fresh ticket for token: 256 random bits, base64url.
func (ts *ticketStore) issue(token string) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	id := base64.RawURLEncoding.EncodeToString(b[:])

	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if len(ts.tickets) >= ts.max || now.After(ts.sweep) {
		for k, t := range ts.tickets {
			if !now.Before(t.expires) {
				delete(ts.tickets, k)
			}
		}
		ts.sweep = now.Add(ts.ttl)
	}
	if len(ts.tickets) >= ts.max {
		return "", overloaded("too many stream tickets outstanding; retry later")
	}
	ts.tickets[id] = ticket{token: token, expires: now.Add(ts.ttl)}
	return id, nil
}

// redeem takes a ticket out of the store: its token when it was there and
// unexpired. A ticket is accepted at most once.
func (ts *ticketStore) redeem(id string) (string, bool) {
	if id == "" || len(id) > 128 {
		return "", false
	}
	ts.mu.Lock()
	t, ok := ts.tickets[id]
	delete(ts.tickets, id)
	now := ts.now()
	ts.mu.Unlock()
	if !ok || !now.Before(t.expires) {
		return "", false
	}
	return t.token, true
}

// len is the number of tickets held (expired ones not yet swept included).
func (ts *ticketStore) len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.tickets)
}
