package httpapi

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// heldPerTicket is the heap the store holds per outstanding ticket when n
// tickets are issued for one token of tokenLen bytes, each issue given its
// own copy of the token, as each request carries one.
func heldPerTicket(t *testing.T, tokenLen int) float64 {
	t.Helper()
	const n = 4000
	ts := newTicketStore(time.Minute, n)
	token := strings.Repeat("k", tokenLen)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // sync.Pools hold what they had for one cycle more
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := ts.issue(strings.Clone(token), ""); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if ts.len() != n {
		t.Fatalf("%d tickets held", ts.len())
	}
	runtime.KeepAlive(ts)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
}

// TestTicketHoldsNoTokenCopy: the memory an outstanding ticket holds does
// not grow with its token's length: the tickets of one token share one
// string, whatever copies the requests that asked for them carried.
func TestTicketHoldsNoTokenCopy(t *testing.T) {
	short, long := heldPerTicket(t, 16), heldPerTicket(t, maxTokenLen)
	t.Logf("held per ticket: %.0f bytes with a 16-byte token, %.0f with a %d-byte one", short, long, maxTokenLen)
	if long-short > 256 {
		t.Fatalf("a ticket of a %d-byte token holds %.0f bytes more than one of a 16-byte token", maxTokenLen, long-short)
	}
}

// TestTicketSharesSessionToken: a ticket refers to its session's own token
// string (the bytes live once), the tickets of one token share it, and each
// ticket still opens its own customer's stream, once. A token longer than
// maxTokenLen is refused.
func TestTicketSharesSessionToken(t *testing.T) {
	e := newEnv(t)
	a, b := strings.Repeat("a", maxTokenLen), strings.Repeat("b", maxTokenLen)
	type issued struct{ token, ticket string }
	var tickets []issued
	for _, tok := range []string{a, b, a} {
		m := expect(t, e.do("POST", "/v1/tickets", tok, nil), 200, "")
		tickets = append(tickets, issued{tok, m["ticket"].(string)})
	}

	ts := e.api.tickets
	ts.mu.Lock()
	held := make([]string, len(tickets))
	for i, it := range tickets {
		held[i] = ts.tickets[it.ticket].tok.token
	}
	tokens := len(ts.tokens)
	ts.mu.Unlock()
	if tokens != 2 {
		t.Fatalf("%d token strings held for 2 tokens", tokens)
	}
	for i, it := range tickets {
		sess, err := e.pool.Acquire(context.Background(), it.token)
		if err != nil {
			t.Fatal(err)
		}
		if held[i] != it.token || unsafe.StringData(held[i]) != unsafe.StringData(sess.Token()) {
			t.Fatalf("ticket %d holds a string of its own, not its session's token", i)
		}
	}

	for i, it := range tickets {
		s := e.openStream("/v1/events?ticket="+it.ticket, "")
		if c := s.event(); c.Event != "customer_id" || c.Data != `"`+chatiosim.CustomerIDForToken(it.token)+`"` {
			t.Fatalf("ticket %d: first event %+v", i, c)
		}
		_, r := e.tryStream("/v1/events?ticket="+it.ticket, "")
		expect(t, r, 401, CodeAuthentication)
	}
	ts.mu.Lock()
	left := len(ts.tickets) + len(ts.tokens)
	ts.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d tickets and token strings left after every ticket was used", left)
	}

	expect(t, e.do("POST", "/v1/tickets", a+"a", nil), 401, CodeAuthentication)
}

// TestTicketStoreExpiry: expired tickets are dropped oldest first as new
// ones are issued, and with them their token strings; a store full of
// unexpired tickets refuses a new one; an expired ticket is not redeemed.
func TestTicketStoreExpiry(t *testing.T) {
	ts := newTicketStore(time.Minute, 10)
	now := time.Unix(1000, 0)
	ts.now = func() time.Time { return now }
	heldNow := func() (tickets, tokens int) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.tickets), len(ts.tokens)
	}
	var ids []string
	for i := range 10 { // one every 10s, for tokens t0..t4 twice
		id, err := ts.issue("t"+strconv.Itoa(i%5), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		now = now.Add(10 * time.Second)
	}
	// 100s after the first: tickets 0..4 (issued 0s..40s) have expired
	if _, _, ok := ts.redeem(ids[4]); ok {
		t.Fatal("an expired ticket was redeemed")
	}
	if _, err := ts.issue("new", ""); err != nil {
		t.Fatalf("with expired tickets held: %v", err)
	}
	if n, k := heldNow(); n != 6 || k != 6 { // tickets 5..9 and new; t0..t4 and new
		t.Fatalf("%d tickets, %d tokens held; want 6, 6", n, k)
	}
	for range 4 {
		if _, err := ts.issue("more", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.issue("more", ""); err == nil {
		t.Fatal("a store full of unexpired tickets took one more")
	}
	if tok, _, ok := ts.redeem(ids[9]); !ok || tok != "t4" {
		t.Fatalf("redeem: %q %v", tok, ok)
	}
	now = now.Add(time.Hour) // all expired
	if _, err := ts.issue("last", ""); err != nil {
		t.Fatal(err)
	}
	if n, k := heldNow(); n != 1 || k != 1 {
		t.Fatalf("%d tickets, %d tokens held after an hour; want 1, 1", n, k)
	}
}
