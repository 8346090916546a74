package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// Cluster mode (Config.Engine set): see the package doc, "Cluster mode".

// ownership is what a session of a clustered pool holds of the engine:
// set by Pool.create before the session is published, immutable after.
type ownership struct {
	sid  engine.SID
	eo   engine.Ownership     // what Own answered: the log's fence for the session's appends
	sub  *engine.Subscription // Serve on the session's op subject; drained by stop (under Pool.mu)
	lost <-chan struct{}      // LeaseLost of the lease epoch Own was made under
}

// fenced reports whether the lease the session was owned under is lost.
func (o *ownership) fenced() bool {
	select {
	case <-o.lost:
		return true
	default:
		return false
	}
}

// fwdRequest is what a replica sends to a session's owner (Engine.Request):
// never the token, which the owner holds already.
type fwdRequest struct {
	Call       *op.Call `json:"call,omitempty"`
	Info       bool     `json:"info,omitempty"`
	Snapshot   bool     `json:"snapshot,omitempty"`    // a stream's snapshot as of the log's sequence (logSnapshot)
	Keep       bool     `json:"keep,omitempty"`        // a mirror's keep-alive of the session (keepReply; sent with Info, see keepOne)
	CustomerID string   `json:"customer_id,omitempty"` // the caller's X-Customer-Id (AcquireAs)
	TimeoutMS  int64    `json:"timeout_ms,omitempty"`  // how long the caller waits
	Origin     Origin   `json:"origin,omitempty"`      // the calling client instance (WithOrigin)
}

// fwdReply is the owner's answer: Result, or Err (EncodeError).
type fwdReply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Err    json.RawMessage `json:"error,omitempty"`
}

// keepReply is the owner's answer to a mirror's keep-alive of one session
// (keepOne): who the owner is (engine.Self), for the next rounds' Keep,
// and the log's sequence of the session's last appended event (0 when
// its appender gave up).
type keepReply struct {
	Owner string `json:"owner"`
	Seq   uint64 `json:"seq"`
}

// keepReply answers a keep-alive of s as its owner.
func (p *Pool) keepReply(s *Session) (json.RawMessage, error) {
	var seq uint64
	if s.elog != nil {
		seq, _ = s.elog.lastSeq()
	}
	return json.Marshal(keepReply{Owner: p.cfg.Engine.Self(), Seq: seq})
}

// Info is what GET /v1/session answers: the customer's id and the
// session's status.
type Info struct {
	CustomerID string `json:"customerId"`
	Status     string `json:"status"`
}

// Clustered reports whether the pool runs in cluster mode (Config.Engine).
func (p *Pool) Clustered() bool { return p.cfg.Engine != nil }

// sid is token's customer key in the engine (never the token itself).
func (p *Pool) sid(token string) engine.SID {
	return p.cfg.Engine.CustomerKey(strconv.FormatInt(p.cfg.Upstream.License, 10), token)
}

// fwdTimeout bounds a call forwarded to the owner: the owner's wait for a
// live upstream plus a few upstream requests (a history page makes some).
func (p *Pool) fwdTimeout() time.Duration {
	rt := p.cfg.Upstream.RequestTimeout
	if rt <= 0 {
		rt = chatio.DefaultRequestTimeout
	}
	return p.cfg.ReconnectWait + 3*rt
}

// Exec carries out call for token's customer and returns what the SDK
// method resolves to as JSON (Session.Run), with its errors. Without an
// engine: on the token's session of this pool (created on first use), with
// one more try on a session that ended before anything was sent. In
// cluster mode: on this replica when it owns the session; else on the
// owner (its error decoded: errors.Is and errors.As answer as on the
// owner); when nobody owns it, this replica takes it over (Own, dial,
// login) and runs the call. customerID is the caller's X-Customer-Id
// (AcquireAs).
func (p *Pool) Exec(ctx context.Context, token, customerID string, call op.Call) (json.RawMessage, error) {
	if err := call.Validate(); err != nil {
		return nil, err
	}
	return p.route(ctx, token, customerID, fwdRequest{Call: &call, Origin: OriginFrom(ctx)}, true,
		func(ctx context.Context, s *Session) (json.RawMessage, error) { return s.Run(ctx, call) })
}

// SessionInfo is the customer's id and the status of token's session,
// wherever it is (opened here when nobody has it, as Exec does).
func (p *Pool) SessionInfo(ctx context.Context, token, customerID string) (Info, error) {
	raw, err := p.route(ctx, token, customerID, fwdRequest{Info: true}, true,
		func(ctx context.Context, s *Session) (json.RawMessage, error) {
			return EncodeResult(Info{CustomerID: s.CustomerID(), Status: s.Status()})
		})
	if err != nil {
		return Info{}, err
	}
	var in Info
	if err := json.Unmarshal(raw, &in); err != nil {
		return Info{}, fmt.Errorf("session: info: %w", err)
	}
	return in, nil
}

// Disconnect ends token's session wherever it is (Session.Disconnect);
// without one it does nothing and opens none.
func (p *Pool) Disconnect(ctx context.Context, token string) error {
	_, err := p.route(ctx, token, "", fwdRequest{Call: &op.Call{Args: op.Disconnect{}}}, false,
		func(ctx context.Context, s *Session) (json.RawMessage, error) {
			s.Disconnect()
			return nil, nil
		})
	return err
}

// SendFile uploads a file for token's customer from this replica: on its
// session's client when this replica has one, else (cluster mode: the
// session is another replica's, or nobody's) straight upstream with the
// token, which the upload alone needs (chatio.UploadFile): no socket is
// opened for it. It resolves what Session.SendFile does.
func (p *Pool) SendFile(ctx context.Context, token, chatID string, form chatio.FileForm) (json.RawMessage, error) {
	if p.cfg.Engine == nil {
		var res json.RawMessage
		err := p.withSession(ctx, token, "", func(s *Session) error {
			var err error
			res, err = s.SendFile(ctx, chatID, form)
			return err
		})
		return res, err
	}
	if s, err := p.Lookup(ctx, token); err != nil {
		return nil, err
	} else if s != nil && s.touch() {
		res, err := s.SendFile(ctx, chatID, form)
		if !errors.Is(err, ErrSessionClosed) { // else nothing of the form was read: upload it here
			return res, err
		}
	}
	cfg := p.cfg.Upstream
	cfg.Token = token
	cfg.Logger = p.log.WithLazy(zap.String("session", tokenKey(token)))
	start := time.Now()
	res, err := chatio.UploadFile(ctx, cfg, chatID, form)
	traceDone(ctx, start, err)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		res = json.RawMessage("null")
	}
	return res, nil
}

// withSession runs fn on token's session of this pool (created on first
// use), once more when the session ended before fn could send anything.
func (p *Pool) withSession(ctx context.Context, token, customerID string, fn func(*Session) error) error {
	for attempt := 0; ; attempt++ {
		s, err := p.AcquireAs(ctx, token, customerID)
		if err != nil {
			return err
		}
		err = fn(s)
		if attempt == 0 && errors.Is(err, ErrSessionClosed) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// route runs req for token's customer: with local on this pool's session
// of the token when there is one (or one is being opened), else on the
// session's owner; when nobody owns it, create says whether this replica
// takes it over (and runs local) or answers nothing (nil, nil). A session
// that ended under the call, an owner that is still being decided
// (another replica won Own and is not serving yet) and an owner that is
// shutting down are tried again with a short backoff, within DialTimeout;
// an owner that answers nothing and whose lease still holds the session
// (gone, its lease not lapsed yet) is waited out once for every request
// (goneStrikes, lapse.go).
func (p *Pool) route(ctx context.Context, token, customerID string, req fwdRequest, create bool, local func(context.Context, *Session) (json.RawMessage, error)) (json.RawMessage, error) {
	if p.cfg.Engine == nil {
		var res json.RawMessage
		if !create {
			s, err := p.Lookup(ctx, token)
			if s == nil || err != nil {
				return nil, err
			}
			return local(ctx, s)
		}
		err := p.withSession(ctx, token, customerID, func(s *Session) error {
			var err error
			res, err = local(ctx, s)
			return err
		})
		return res, err
	}
	req.CustomerID = customerID
	var sid engine.SID // made when the call goes to another replica: an HMAC per local call is waste
	deadline := time.Now().Add(p.cfg.DialTimeout)
	back := 5 * time.Millisecond
	closedRetries := 0
	// gone: the owner that, strikes rounds in a row, answered nothing
	// (no responders) while its lease kept the session from a takeover.
	var (
		gone    string
		strikes int
	)
	for {
		var res json.RawMessage
		forwarded := false
		refusedBy := ""
		s, err := p.Lookup(ctx, token)
		switch {
		case err != nil:
			return nil, err
		case s != nil && !p.cfg.Engine.LeaseValid():
			// Paused past the lease: the session is being closed (fenced)
			// and may have another owner already; run nothing on it.
			return nil, fmt.Errorf("%w: this replica's lease lapsed", ErrEngine)
		case s != nil:
			if !s.touch() {
				err = ErrSessionClosed
				break
			}
			if customerID != "" {
				s.adoptCustomerID(customerID)
			}
			res, err = local(ctx, s)
		default:
			if sid == "" {
				sid = p.sid(token)
			}
			start := time.Now()
			res, err = p.forward(ctx, sid, req)
			if errors.Is(err, engine.ErrNoOwner) {
				if !create {
					return nil, nil
				}
				if s, err = p.AcquireAs(ctx, token, customerID); err == nil {
					p.m.takeovers.Inc()
					res, err = local(ctx, s)
				} else {
					refusedBy = ownedBy(err)
				}
			} else {
				forwarded = true
				p.m.forwarded.WithLabelValues(req.kind()).Inc()
				p.m.forwardS.Observe(time.Since(start).Seconds())
				if req.Call != nil {
					traceDone(ctx, start, err)
				}
			}
		}
		switch {
		case errors.Is(err, ErrElsewhere):
		case forwarded && (errors.Is(err, ErrDraining) || errors.Is(err, ErrSessionClosed)):
			// The owner is shutting down, or its session ended before the
			// call was sent: it gives the session back in a moment, and a
			// later round takes it over.
		case errors.Is(err, ErrSessionClosed) && closedRetries < 2:
			closedRetries++
		default:
			return res, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		switch {
		case refusedBy == "":
			gone, strikes = "", 0
		case refusedBy == gone:
			strikes++
		default:
			gone, strikes = refusedBy, 1
		}
		wait := back
		var lapse <-chan struct{}
		if strikes >= goneStrikes {
			// Gone, most likely (killed, cut off), its lease not yet
			// lapsed: its lapse is waited for once for every request
			// (lapse.go), and looked at again every goneRecheck, should it
			// serve again (its engine connection back).
			if lapse = p.lapseOf(gone); lapse != nil {
				wait = goneRecheck
			}
		}
		t := time.NewTimer(min(wait, max(time.Until(deadline), time.Millisecond)))
		select {
		case <-t.C:
		case <-lapse:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		back = min(2*back, 200*time.Millisecond)
	}
}

// A request for a session whose owner answers nothing while its lease
// holds the session waits for that lease's lapse (lapseOf) from its
// goneStrikes-th such round on: the rounds before tell a gone owner from
// one that won the session a moment ago and serves it a moment later. It
// looks again every goneRecheck.
const (
	goneStrikes = 3
	goneRecheck = time.Second
)

// ownedBy is the owner named by an engine.OwnedError in err's chain; "".
func ownedBy(err error) string {
	var oe *engine.OwnedError
	if errors.As(err, &oe) {
		return oe.Owner
	}
	return ""
}

// forward sends req to the session's owner and decodes its answer.
// engine.ErrNoOwner: nobody serves the session.
func (p *Pool) forward(ctx context.Context, sid engine.SID, req fwdRequest) (json.RawMessage, error) {
	if st := p.cfg.Engine.State(); st != engine.StateConnected {
		// An answer, not a wait: the request would sit in the
		// connection's buffer until it reconnects.
		return nil, fmt.Errorf("%w: the engine connection is %s", ErrEngine, st)
	}
	wait := p.fwdTimeout()
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	req.TimeoutMS = max(wait.Milliseconds(), 1)
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// The owner answers its own timeout first.
	tctx, cancelT := context.WithTimeout(ctx, wait+time.Second)
	defer cancelT()
	rctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	// An owner that keeps its engine connection but does not answer (a
	// paused process) gives no "no responders". So while no answer comes,
	// the owner's lease is looked at every third of a lease: lapsed, nobody
	// owns the session (ErrNoOwner: the caller takes it over; the paused
	// owner, once awake, answers nothing, see answer). The call is not
	// sent again. The owner may also change under the call: a request sent
	// as the owner was killed can reach its dead connection before the
	// engine notices (no "no responders", no answer), and once the dead
	// owner's lease lapsed another replica may take the session over,
	// whose lease is alive. So a change of the owner's incarnation (node
	// and lease epoch) between two looks ends the wait as a lapse does:
	// the owner that was sent the call is gone, and it answers nothing
	// once its lease lapsed. forward owns the watching goroutine: it has
	// ended when forward returns.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		every := max(p.cfg.Engine.LeaseTTL()/3, 10*time.Millisecond)
		t := time.NewTicker(every)
		defer t.Stop()
		first := ""
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(rctx, every)
			id, alive, err := p.cfg.Engine.OwnerID(cctx, sid)
			ccancel()
			if err != nil {
				continue
			}
			if !alive || (first != "" && id != first) {
				cancel(errOwnerGone)
				return
			}
			first = id
		}
	}()
	defer func() { cancel(nil); <-watched }()
	out, err := p.cfg.Engine.Request(rctx, sid, b)
	switch {
	case errors.Is(err, engine.ErrNoOwner):
		return nil, err
	case err != nil && errors.Is(context.Cause(rctx), errOwnerGone):
		return nil, engine.ErrNoOwner
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && rctx.Err() != nil:
		return nil, fmt.Errorf("%w: no answer from the session's owner: %w", chatio.ErrTimeout, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	var rep fwdReply
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("%w: the owner's answer: %w", ErrEngine, err)
	}
	if len(rep.Err) > 0 && string(rep.Err) != "null" {
		return nil, DecodeError(rep.Err)
	}
	return rep.Result, nil
}

// own makes this replica the owner of token's session before create opens
// it: it waits for the release of the token's previous session here,
// takes the ownership (engine.Own) and serves the session's op subject at
// once, answering from e once it is ready. ErrElsewhere: another replica
// owns it; ErrEngine: the engine failed, or this replica's lease is not
// valid.
func (p *Pool) own(token string, e *entry) (*ownership, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	p.mu.Lock()
	prev := p.releasing[token]
	p.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return nil, p.ctxErr(ctx)
		}
	}
	eng := p.cfg.Engine
	lost := eng.LeaseLost()
	sid := p.sid(token)
	eo, err := eng.Own(ctx, sid)
	if err != nil {
		switch {
		case errors.Is(err, engine.ErrOwned):
			p.m.refused.Inc()
			return nil, fmt.Errorf("%w: %w", ErrElsewhere, err)
		case ctx.Err() != nil:
			return nil, p.ctxErr(ctx)
		}
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	p.m.owned.Inc() // until releaseLocked's release has run
	sub, err := eng.Serve(sid, p.serveOps(e), p.keepOwned(e))
	if err != nil {
		p.mu.Lock()
		release := p.releaseLocked(token, sid)
		p.mu.Unlock()
		release()
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	return &ownership{sid: sid, eo: eo, sub: sub, lost: lost}, nil
}

// ctxErr is the error of own's ended ctx: ErrDraining when the pool is
// shutting down.
func (p *Pool) ctxErr(ctx context.Context) error {
	if p.ctx.Err() != nil {
		return ErrDraining
	}
	return fmt.Errorf("%w: %w", ErrEngine, ctx.Err())
}

// releaseLocked records that token's ownership is being given back and
// returns what gives it back (engine.Release), to be run once the session's
// socket is closed; until it has run, own waits (a Release after the next
// Own of this replica would delete the new record). Pool.mu held.
func (p *Pool) releaseLocked(token string, sid engine.SID) func() {
	done := make(chan struct{})
	p.releasing[token] = done
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		if err := p.cfg.Engine.Release(ctx, sid); err != nil {
			p.log.Info("session ownership not released (it lapses with the lease)", zap.Error(err))
		}
		cancel()
		p.m.owned.Dec()
		p.mu.Lock()
		if p.releasing[token] == done {
			delete(p.releasing, token)
		}
		p.mu.Unlock()
		close(done)
	}
}

// releaseTimeout bounds one Release.
const releaseTimeout = 5 * time.Second

// serveOps is the handler of the op subject of e's session: each request
// is answered on a goroutine of its own (counted in Pool.wg, added under
// Pool.mu while not draining, as a creation is), once e is ready.
func (p *Pool) serveOps(e *entry) func(engine.Request) {
	return func(r engine.Request) {
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			reply(r, nil, ErrDraining)
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.answer(r, e)
		}()
	}
}

// keepOwned is e's session's part of a Keep (engine.Serve's keep, on the
// engine's operations goroutine, without a wait): it keeps the session
// from idling out, as a forwarded info request does, and answers the log's
// sequence of its last appended event. Not served (the caller asks again
// one by one, keepOne): a session still opening or ending, or a replica
// whose lease is no longer valid (see answer).
func (p *Pool) keepOwned(e *entry) func() (uint64, bool) {
	return func() (uint64, bool) {
		if !p.cfg.Engine.LeaseValid() {
			return 0, false
		}
		select {
		case <-e.ready:
		default:
			return 0, false
		}
		s := e.s
		if e.err != nil || s == nil || s.elog == nil || !s.touch() {
			return 0, false
		}
		return s.elog.lastSeq()
	}
}

// errOwnerGone: a forwarded call's owner did not answer and its lease has
// lapsed.
var errOwnerGone = errors.New("session: the owner's lease lapsed")

// answer carries out one forwarded request on e's session. A replica
// whose lease is no longer valid (it was paused past it, its sessions may
// have another owner by now) carries out nothing: it answers ErrDraining,
// as an owner giving its sessions back does.
func (p *Pool) answer(r engine.Request, e *entry) {
	if !p.cfg.Engine.LeaseValid() {
		reply(r, nil, ErrDraining)
		return
	}
	var req fwdRequest
	if err := json.Unmarshal(r.Data, &req); err != nil {
		reply(r, nil, &op.ArgError{Message: "undecodable call: " + err.Error()})
		return
	}
	if req.Call == nil && !req.Info && !req.Snapshot && !req.Keep {
		reply(r, nil, &op.ArgError{Message: "no call"})
		return
	}
	wait := p.fwdTimeout()
	if req.TimeoutMS > 0 {
		wait = min(wait, time.Duration(req.TimeoutMS)*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	select {
	case <-e.ready:
	case <-ctx.Done():
		reply(r, nil, ctx.Err())
		return
	}
	if e.err != nil {
		reply(r, nil, e.err)
		return
	}
	s := e.s
	if !s.touch() {
		reply(r, nil, ErrSessionClosed)
		return
	}
	if req.CustomerID != "" {
		s.adoptCustomerID(req.CustomerID)
	}
	if req.Keep { // before Info, which it comes with (see keepOne)
		res, err := p.keepReply(s)
		reply(r, res, err)
		return
	}
	if req.Info {
		res, err := EncodeResult(Info{CustomerID: s.CustomerID(), Status: s.Status()})
		reply(r, res, err)
		return
	}
	if req.Snapshot {
		snap, err := s.logSnapshot(ctx)
		if err != nil {
			reply(r, nil, err)
			return
		}
		res, err := json.Marshal(snap)
		reply(r, res, err)
		return
	}
	if err := p.limitCall(s.token); err != nil { // the customer's limit, cluster-wide (limit.go)
		reply(r, nil, err)
		return
	}
	res, err := s.Run(WithOrigin(ctx, req.Origin), *req.Call)
	reply(r, res, err)
}

// reply answers a forwarded request with res or err.
func reply(r engine.Request, res json.RawMessage, err error) {
	var rep fwdReply
	if err != nil {
		rep.Err, _ = EncodeError(err)
	} else {
		rep.Result = res
		if len(res) == 0 {
			rep.Result = json.RawMessage("null")
		}
	}
	b, _ := json.Marshal(rep)
	_ = r.Respond(b)
}

// watchLease runs while the pool does (cluster mode): when this replica's
// lease is lost, every session it owns is ended at once, its socket
// closed (it is fenced: another replica may take it over); then it waits
// for the engine's next lease.
func (p *Pool) watchLease() {
	defer p.wg.Done()
	eng := p.cfg.Engine
	for {
		lost := eng.LeaseLost()
		select {
		case <-p.ctx.Done():
			return
		case <-lost:
		}
		p.fence()
		for eng.LeaseLost() == lost {
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// errFenced ends the sessions of a replica that lost its lease.
var errFenced = fmt.Errorf("%w: this replica's lease was lost (fenced)", ErrSessionClosed)

// fence ends every session whose ownership's lease is lost.
func (p *Pool) fence() {
	p.mu.Lock()
	var list []*Session
	for _, e := range p.sessions {
		select {
		case <-e.ready:
			if e.s != nil && e.s.own != nil && e.s.own.fenced() {
				list = append(list, e.s)
			}
		default: // create checks the lease once it has opened
		}
	}
	p.mu.Unlock()
	if len(list) > 0 {
		p.log.Warn("lease lost: closing the sessions this replica owned", zap.Int("sessions", len(list)))
	}
	for _, s := range list {
		p.stopFenced(s, errFenced)
	}
}
