package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxTokenLen bounds an access token taken from the Authorization header
// (chat.io's are well under 1 KiB).
const maxTokenLen = 2 << 10

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

// ticketStore holds single-use stream tickets, each valid for ttl: ticket
// id → the token whose stream it opens (and the X-Customer-Id of the
// request that got the ticket, at most session.MaxCustomerIDLen bytes).
//
// Bounded in count and in bytes: at most max tickets are held, and a
// ticket holds no copy of its token. Tickets that name one token share one
// string (postTicket passes the session's own, so the bytes live once),
// counted and dropped with the last ticket that names it: the memory a
// ticket holds does not grow with the token's length. (unique.Make would
// intern too, but with a copy of its own beside the session's.)
//
// Every ticket lives ttl, so issue order is expiry order: the tickets are
// also a list, oldest first, and issue drops the expired ones from its head
// (O(1) for each ticket dropped), then refuses a ticket while max
// unexpired ones are held.
type ticketStore struct {
	ttl time.Duration // immutable
	max int           // immutable

	mu             sync.Mutex            // guards the fields below
	now            func() time.Time      // the clock (tests move it)
	tickets        map[string]*ticket    // by id
	tokens         map[string]*heldToken // by token: the tickets' one string of each
	oldest, newest *ticket               // the tickets in issue order
}

type ticket struct {
	id         string
	tok        *heldToken
	customerID string // "" when the request had none
	expires    time.Time
	prev, next *ticket // the one issued before and after
}

// heldToken is the string the tickets of one token share, and how many do.
type heldToken struct {
	token string
	refs  int
}

func newTicketStore(ttl time.Duration, max int) *ticketStore {
	return &ticketStore{ttl: ttl, max: max, now: time.Now,
		tickets: make(map[string]*ticket), tokens: make(map[string]*heldToken)}
}

// issue stores a fresh ticket for token and customerID: 256 random bits,
// base64url. The store refers to token's string (or to the one its other
// tickets share) and holds no copy of it.
func (ts *ticketStore) issue(token, customerID string) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	id := base64.RawURLEncoding.EncodeToString(b[:])

	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	for t := ts.oldest; t != nil && !now.Before(t.expires); t = ts.oldest {
		ts.removeLocked(t)
	}
	if len(ts.tickets) >= ts.max {
		return "", overloaded("too many stream tickets outstanding; retry later")
	}
	h := ts.tokens[token]
	if h == nil {
		h = &heldToken{token: token}
		ts.tokens[token] = h
	}
	h.refs++
	t := &ticket{id: id, tok: h, customerID: customerID, expires: now.Add(ts.ttl), prev: ts.newest}
	if ts.newest != nil {
		ts.newest.next = t
	} else {
		ts.oldest = t
	}
	ts.newest = t
	ts.tickets[id] = t
	return id, nil
}

// removeLocked takes t out of the store. mu held.
func (ts *ticketStore) removeLocked(t *ticket) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		ts.oldest = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		ts.newest = t.prev
	}
	t.prev, t.next = nil, nil
	delete(ts.tickets, t.id)
	if t.tok.refs--; t.tok.refs == 0 {
		delete(ts.tokens, t.tok.token)
	}
}

// redeem takes a ticket out of the store: its token and customer id when
// it was there and unexpired. A ticket is accepted at most once.
func (ts *ticketStore) redeem(id string) (token, customerID string, ok bool) {
	if id == "" || len(id) > 128 {
		return "", "", false
	}
	ts.mu.Lock()
	t, ok := ts.tickets[id]
	if ok {
		ts.removeLocked(t)
	}
	now := ts.now()
	ts.mu.Unlock()
	if !ok || !now.Before(t.expires) {
		return "", "", false
	}
	return t.tok.token, t.customerID, true
}

// len is the number of tickets held (expired ones not yet dropped included).
func (ts *ticketStore) len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.tickets)
}
