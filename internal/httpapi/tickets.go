package httpapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// Stream tickets (POST /v1/tickets, GET /v1/events?ticket=).
//
// A ticket is sealed, not stored: AES-256-GCM under Config.TicketKey (the
// cluster key's ticket subkey, the same on every replica) of
//
//	version (1) | expiry (unix ms, 8) | id (16 random bytes) |
//	len(customer id) (1) | customer id | token
//
// behind a random 12-byte nonce, in base64url without padding. Any replica
// opens it: the token inside is what lets that replica open the customer's
// session (the token is kept nowhere else, and the URL carries only the
// sealed ticket, which is opaque). Redeeming opens the seal (a forged or
// altered ticket fails there), checks the expiry, then records the id
// with the engine for the rest of the ticket's life (engine.Once): only
// the first redemption on any replica is accepted. The gateway holds
// nothing per outstanding ticket.

// ticketVersion is the first byte of a sealed ticket's plaintext.
const ticketVersion = 1

// TicketKeyLen is the length of Config.TicketKey (AES-256).
const TicketKeyLen = 32

const (
	ticketIDLen     = 16
	ticketHeaderLen = 1 + 8 + ticketIDLen + 1
	ticketNonceLen  = 12
	ticketTagLen    = 16
	// maxTicketLen bounds a ticket worth opening: the longest token and
	// customer id sealed, in base64 (≈ 3 KiB, well under URL limits).
	maxTicketLen = (ticketNonceLen + ticketHeaderLen + session.MaxCustomerIDLen + maxTokenLen + ticketTagLen + 2) / 3 * 4
)

var b64 = base64.RawURLEncoding

// ticketSealer seals and opens tickets with one key.
type ticketSealer struct {
	aead cipher.AEAD
}

func newTicketSealer(key []byte) *ticketSealer {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // Validate checked the length
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &ticketSealer{aead: aead}
}

// seal returns a ticket for token and customerID valid for ttl.
func (ts *ticketSealer) seal(token, customerID string, ttl time.Duration) string {
	pt := make([]byte, ticketHeaderLen, ticketHeaderLen+len(customerID)+len(token))
	pt[0] = ticketVersion
	binary.BigEndian.PutUint64(pt[1:9], uint64(time.Now().Add(ttl).UnixMilli()))
	_, _ = rand.Read(pt[9 : 9+ticketIDLen]) // crypto/rand.Read never fails (Go ≥ 1.24)
	pt[9+ticketIDLen] = byte(len(customerID))
	pt = append(pt, customerID...)
	pt = append(pt, token...)
	out := make([]byte, ticketNonceLen, ticketNonceLen+len(pt)+ticketTagLen)
	_, _ = rand.Read(out)
	out = ts.aead.Seal(out, out, pt, nil)
	return b64.EncodeToString(out)
}

// openedTicket is what a ticket carries.
type openedTicket struct {
	id         string // hex: what engine.Once records
	expires    time.Time
	token      string
	customerID string
}

// open checks the seal and the expiry of ticket t; ok is false when it is
// malformed, forged, altered or expired.
func (ts *ticketSealer) open(t string) (openedTicket, bool) {
	if len(t) > maxTicketLen {
		return openedTicket{}, false
	}
	raw, err := b64.DecodeString(t)
	if err != nil || len(raw) < ticketNonceLen+ticketTagLen+ticketHeaderLen {
		return openedTicket{}, false
	}
	pt, err := ts.aead.Open(nil, raw[:ticketNonceLen], raw[ticketNonceLen:], nil)
	if err != nil || pt[0] != ticketVersion {
		return openedTicket{}, false
	}
	n := int(pt[9+ticketIDLen])
	rest := pt[ticketHeaderLen:]
	if n > len(rest) || n > session.MaxCustomerIDLen || len(rest)-n == 0 {
		return openedTicket{}, false
	}
	o := openedTicket{
		id:         hex.EncodeToString(pt[9 : 9+ticketIDLen]),
		expires:    time.UnixMilli(int64(binary.BigEndian.Uint64(pt[1:9]))),
		customerID: string(rest[:n]),
		token:      string(rest[n:]),
	}
	if !time.Now().Before(o.expires) {
		return openedTicket{}, false
	}
	return o, true
}

// redeem opens ticket t and accepts it once on any replica: 401 when it
// is forged, altered, expired or used, 503 when the engine cannot tell.
func (s *Server) redeem(ctx context.Context, t string) (openedTicket, error) {
	o, ok := s.tickets.open(t)
	if !ok {
		s.m.tickets.WithLabelValues("rejected").Inc()
		return o, unauthenticated("invalid, expired or already used ticket")
	}
	// Recorded a little beyond its expiry: a clock a little behind on
	// another replica still finds it.
	first, err := s.once.Once(ctx, o.id, time.Until(o.expires)+ticketClockSkew)
	if err != nil {
		s.m.tickets.WithLabelValues("unavailable").Inc()
		var ae *apiError
		if errors.As(err, &ae) {
			return o, err
		}
		// Debug: the outage itself is logged once, by the gateway's engine probe.
		s.log.Debug("stream ticket: engine unavailable", zap.Error(err))
		return o, overloaded("the engine cannot record this ticket's use now; retry later (the ticket was not used up)")
	}
	if !first {
		s.m.tickets.WithLabelValues("rejected").Inc()
		return o, unauthenticated("invalid, expired or already used ticket")
	}
	s.m.tickets.WithLabelValues("redeemed").Inc()
	return o, nil
}

// ticketClockSkew is how much longer than its life a ticket's id is kept.
const ticketClockSkew = 30 * time.Second

// onceStore records one-time ids: *engine.Engine, or localOnce.
type onceStore interface {
	Once(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// localOnce is engine.Once within one process, for a Server without an
// engine (Config.Engine nil: tests and tools that embed the API without a
// cluster): the redeemed ids for ttl (the tickets' lifetime), in expiry
// order.
type localOnce struct {
	mu    sync.Mutex
	ttl   time.Duration
	now   func() time.Time
	seen  map[string]bool
	queue []onceEntry // by expiry
}

type onceEntry struct {
	id      string
	expires time.Time
}

// maxLocalOnce bounds the ids localOnce holds.
const maxLocalOnce = 100000

func (l *localOnce) Once(_ context.Context, id string, _ time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for len(l.queue) > 0 && !now.Before(l.queue[0].expires) {
		delete(l.seen, l.queue[0].id)
		l.queue[0] = onceEntry{}
		l.queue = l.queue[1:]
	}
	if l.seen[id] {
		return false, nil
	}
	if len(l.seen) >= maxLocalOnce {
		return false, overloaded("too many stream tickets redeemed; retry later")
	}
	l.seen[id] = true
	l.queue = append(l.queue, onceEntry{id, now.Add(l.ttl)})
	return true, nil
}
