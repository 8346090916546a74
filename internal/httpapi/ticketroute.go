package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Stream tickets across replicas.
//
// With Config.AdvertiseAddr set, a ticket names the replica that issued it
// and is signed with the key every replica shares (Config.TicketKey):
//
//	<id>.<issuer>.<mac>
//
// id is the 256 random bits the issuer's ticketStore holds, issuer the
// issuer's AdvertiseAddr, mac HMAC-SHA256(key, id "|" issuer), each
// base64url without padding. A replica that gets ?ticket= for another
// issuer checks the mac and, when it is good, reverse-proxies the stream to
// the issuer, which redeems the ticket (single use, expiry) and holds the
// customer's one upstream socket. The mac is the guard against SSRF: only
// addresses signed by a replica are ever dialled, whatever network they are
// on. A forwarded request carries forwardedHeader and is never forwarded
// again (a loop guard).
//
// Without AdvertiseAddr (one replica) tickets are the bare id, as before.

// forwardedHeader marks a stream request forwarded by another replica.
const forwardedHeader = "X-Chatio-Forwarded"

// forwardDialTimeout bounds the connection to the issuing replica.
const forwardDialTimeout = 5 * time.Second

// maxTicketLen bounds a ticket worth parsing.
const maxTicketLen = 1024

var b64 = base64.RawURLEncoding

// ticketMAC is HMAC-SHA256(key, id "|" issuer).
func ticketMAC(key []byte, id, issuer string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'|'})
	m.Write([]byte(issuer))
	return m.Sum(nil)
}

// sealTicket turns a stored ticket id into the ticket handed to the client.
func (s *Server) sealTicket(id string) string {
	if s.cfg.AdvertiseAddr == "" {
		return id
	}
	issuer := s.cfg.AdvertiseAddr
	return id + "." + b64.EncodeToString([]byte(issuer)) + "." +
		b64.EncodeToString(ticketMAC(s.cfg.TicketKey, id, issuer))
}

// openTicket splits a ticket into its stored id and its issuer; ok is false
// when it is malformed or its mac does not verify.
func (s *Server) openTicket(t string) (id, issuer string, ok bool) {
	if len(t) > maxTicketLen {
		return "", "", false
	}
	parts := strings.Split(t, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	iss, err1 := b64.DecodeString(parts[1])
	mac, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(iss) == 0 || len(mac) < 16 || len(mac) > sha256.Size || parts[0] == "" {
		return "", "", false
	}
	want := ticketMAC(s.cfg.TicketKey, parts[0], string(iss))
	if !hmac.Equal(mac, want[:len(mac)]) {
		return "", "", false
	}
	return parts[0], string(iss), true
}

// routeTicket decides where the stream of ticket t is served. It returns the
// id to redeem here, or forward: the issuer to proxy to. A ticket that is
// neither (forged, altered, or forwarded here by mistake) is refused.
func (s *Server) routeTicket(r *http.Request, t string) (id, forward string, err error) {
	if s.cfg.AdvertiseAddr == "" {
		return t, "", nil // one replica: bare ids
	}
	id, issuer, ok := s.openTicket(t)
	switch {
	case !ok:
		return "", "", unauthenticated("invalid, expired or already used ticket")
	case issuer == s.cfg.AdvertiseAddr:
		return id, "", nil
	case r.Header.Get(forwardedHeader) != "":
		// A forwarded request for someone else: never forward twice.
		return "", "", unauthenticated("invalid, expired or already used ticket")
	}
	return "", issuer, nil
}

// newForwardTransport is the transport to other replicas: a bounded dial,
// no keep-alive (each forwarded stream is long-lived and has its own
// connection), no proxy from the environment.
func newForwardTransport() *http.Transport {
	return &http.Transport{
		DialContext:       (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		DisableKeepAlives: true,
		Proxy:             nil,
	}
}

// forwardStream proxies the stream request to the replica issuer, which
// redeems the ticket. It ends with the client or when this server drains.
func (s *Server) forwardStream(w http.ResponseWriter, r *http.Request, issuer string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.drain:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.m.tickets.WithLabelValues("forwarded").Inc()
	rid := requestID(r.Context())
	p := &httputil.ReverseProxy{
		Transport:     s.fwd,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *pr.In.URL
			u.Scheme, u.Host, u.Path, u.RawPath = "http", issuer, "/v1/events", ""
			pr.Out.URL = &u
			pr.Out.Host = issuer
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, "1")
			pr.Out.Header.Set(requestIDHeader, rid)
			pr.Out.Header.Del("Origin") // CORS is this replica's answer
			pr.Out.Header.Del("Cookie")
		},
		ModifyResponse: func(res *http.Response) error {
			for k := range w.Header() { // set here already (request id, CORS)
				res.Header.Del(k)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if ctx.Err() != nil {
				return // the client left or this server drains
			}
			s.log.Warn("stream forward failed", zap.String("request_id", rid),
				zap.String("issuer", issuer), zap.Error(err))
			s.writeError(w, r, overloaded("the replica that issued the ticket cannot be reached; get a new ticket"))
		},
	}
	defer func() {
		// ReverseProxy aborts a stream whose copy failed; when this side
		// ended it (client gone, draining), end the answer normally.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler || ctx.Err() == nil { //nolint:errorlint // as net/http compares it
				panic(v)
			}
		}
	}()
	p.ServeHTTP(w, r.WithContext(ctx))
}
