package session

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// quietLogin is a config whose upstream login answers no customer id, as
// chat.io 0.5's {} does.
func quietLogin() Config {
	cfg := fastConfig()
	cfg.Dial = func(ctx context.Context, c chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
		cl, login, err := chatio.Dial(ctx, c)
		login.CustomerID = ""
		return cl, login, err
	}
	return cfg
}

func acquireAs(t *testing.T, p *Pool, token, id string) *Session {
	t.Helper()
	s, err := p.AcquireAs(ctxT(t), token, id)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return s
}

// The order of trust: the login's id, then the creating call's, then the
// customer of the first summary.
func TestCustomerIDOrderOfTrust(t *testing.T) {
	e := newEnv(t, fastConfig(), chatiosim.Config{})
	if got := acquireAs(t, e.pool, "tok-login", "told").CustomerID(); got != chatiosim.CustomerIDForToken("tok-login") {
		t.Fatalf("login's id lost to the caller's: %q", got)
	}

	q := newEnv(t, quietLogin(), chatiosim.Config{})
	if got := acquireAs(t, q.pool, "tok-told", "told").CustomerID(); got != "told" {
		t.Fatalf("customer id %q, want the caller's", got)
	}
	// A customer with a chat: its summary names it.
	s := acquireAs(t, q.pool, "tok-chats", "")
	if got := s.CustomerID(); got != "" {
		t.Fatalf("customer id %q of a customer without chats", got)
	}
	startChat(t, s)
	s.Disconnect()
	if got := acquireAs(t, q.pool, "tok-chats", "").CustomerID(); got != chatiosim.CustomerIDForToken("tok-chats") {
		t.Fatalf("customer id %q, want the summary's", got)
	}
	q.acquire(t, "tok-chats").Disconnect()
	if got := acquireAs(t, q.pool, "tok-chats", "told").CustomerID(); got != "told" {
		t.Fatalf("customer id %q, want the caller's before the summary's", got)
	}
}

// A session with no id at all adopts the first one a later call tells,
// once: subscribers hear it as customer_id, in order with the log.
func TestCustomerIDAdopted(t *testing.T) {
	e := newEnv(t, quietLogin(), chatiosim.Config{})
	s := acquireAs(t, e.pool, "tok", "")
	sub := subscribe(t, s, "")
	if snap := sub.Snapshot(); string(snap[0].Data) != `""` {
		t.Fatalf("snapshot customer_id %s", snap[0].Data)
	}
	if acquireAs(t, e.pool, "tok", "late") != s || s.CustomerID() != "late" {
		t.Fatalf("customer id %q, want late", s.CustomerID())
	}
	m := next(t, sub)
	if m.Name != sdk.EventCustomerID || string(m.Data) != strconv.Quote("late") || m.ID == "" {
		t.Fatalf("live %+v, want customer_id late with an id", m)
	}
	acquireAs(t, e.pool, "tok", "later")
	if got := s.CustomerID(); got != "late" {
		t.Fatalf("customer id changed to %q", got)
	}
	sendMessage(t, s, startChat(t, s), "x")
	for _, m := range until(t, sub, sdk.EventNewEvent) {
		if m.Name == sdk.EventCustomerID {
			t.Fatalf("a second customer_id: %s", m.Data)
		}
	}
	// A fresh subscriber's snapshot has it; a resumed one replays it.
	if snap := subscribe(t, s, "").Snapshot(); string(snap[0].Data) != `"late"` {
		t.Fatalf("snapshot customer_id %s", snap[0].Data)
	}
	seq := seqOf(t, m) - 1
	r := subscribe(t, s, strconv.FormatUint(seq, 10))
	if m := next(t, r); m.Name != sdk.EventCustomerID {
		t.Fatalf("resumed: %s first", m.Name)
	}
}

// Lookup never dials: nil without a session; the session once its
// creation is over; nil when the creation failed.
func TestLookup(t *testing.T) {
	var dials atomic.Int32
	release := make(chan struct{})
	cfg := fastConfig()
	cfg.Dial = func(ctx context.Context, c chatio.Config) (*chatio.Client, chatio.LoginResult, error) {
		dials.Add(1)
		if c.Token == "tok-slow" {
			<-release
		}
		return chatio.Dial(ctx, c)
	}
	e := newEnv(t, cfg, chatiosim.Config{Tokens: func(tok string) (string, error) {
		if tok == "tok-bad" {
			return "", chatiosim.ErrTokenInvalid
		}
		return chatiosim.AnyToken(tok)
	}})
	if s, err := e.pool.Lookup(ctxT(t), "tok-none"); s != nil || err != nil {
		t.Fatalf("Lookup without a session: %v %v", s, err)
	}
	if d := dials.Load(); d != 0 || e.pool.Len() != 0 {
		t.Fatalf("%d dials, %d sessions", d, e.pool.Len())
	}

	// A creation in progress is waited for.
	type result struct {
		s   *Session
		err error
	}
	created := make(chan result, 1)
	go func() {
		s, err := e.pool.Acquire(ctxT(t), "tok-slow")
		created <- result{s, err}
	}()
	eventually(t, "creation under way", func() bool { return dials.Load() == 1 })
	looked := make(chan result, 1)
	go func() {
		s, err := e.pool.Lookup(ctxT(t), "tok-slow")
		looked <- result{s, err}
	}()
	close(release)
	c, l := <-created, <-looked
	if c.err != nil || l.err != nil || l.s != c.s {
		t.Fatalf("Lookup during creation: %+v, created %+v", l, c)
	}

	// A failed creation leaves nothing to find.
	if _, err := e.pool.Acquire(ctxT(t), "tok-bad"); err == nil {
		t.Fatal("bad token acquired")
	}
	if s, err := e.pool.Lookup(ctxT(t), "tok-bad"); s != nil || err != nil {
		t.Fatalf("Lookup after a failed creation: %v %v", s, err)
	}
	if d := dials.Load(); d != 2 {
		t.Fatalf("%d dials, want 2 (Lookup dials none)", d)
	}
}
