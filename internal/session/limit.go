package session

// The per-customer call limit in cluster mode. The HTTP layer limits the
// requests of each access token it receives (httpapi's rate limiter), but
// a replica sees only the requests it receives: behind a round-robin
// balancer, N replicas would let a customer through N times the limit.
// Every SDK call of a customer runs on its session's owner, though, the
// calls of other replicas forwarded to it: so the owner applies the limit
// to each forwarded call too (answer), with the same limiter its own
// requests are counted by. The owner's bucket thus sees every SDK call of
// the customer, wherever it was received, and refuses what is over the
// limit cluster-wide; the refusal (a *RateLimitError) crosses back with
// EncodeError. What is not forwarded as a call (tickets, uploads, streams,
// GET /v1/session) stays limited per replica.

// SetCallLimit sets the limit the owner applies to each SDK call
// forwarded to it by another replica (cluster mode), before it runs: fn
// gets the session's token and returns nil, or the error to answer with
// (a *RateLimitError, so that the receiving replica answers 429 with its
// Retry-After). Nil: no limit. Safe to call at any time; calls forwarded
// to this replica before it has been called are not limited.
func (p *Pool) SetCallLimit(fn func(token string) error) {
	if fn == nil {
		p.callLimit.Store(nil)
		return
	}
	p.callLimit.Store(&fn)
}

// limitCall applies SetCallLimit's limit to a call forwarded for token.
func (p *Pool) limitCall(token string) error {
	if fn := p.callLimit.Load(); fn != nil {
		return (*fn)(token)
	}
	return nil
}
