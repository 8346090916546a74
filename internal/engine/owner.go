package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseState is the node lease: the key NodeID in cgw_nodes, whose value is
// this incarnation's epoch (random), renewed by CAS every LeaseTTL/4; the
// bucket's MaxAge (LeaseTTL) removes it when renewals stop. The local
// deadline is kept on the monotonic clock.
type leaseState struct {
	base     time.Time    // monotonic origin of deadline
	deadline atomic.Int64 // ns since base; the lease is valid before it

	mu    sync.Mutex
	epoch string
	rev   uint64
	lost  chan struct{} // closed when this epoch's lease is lost
	dead  bool          // lost closed; a new epoch is due

	partitioned atomic.Bool // tests: renewals fail as if the engine were unreachable
}

func (l *leaseState) ttl(e *Engine) time.Duration { return e.cfg.LeaseTTL }

// margin is how long before the bucket's MaxAge the holder's own deadline
// comes (extend): 30 % of the TTL. Renewed every quarter (renewEvery), a
// holder whose one renewal failed has another one 20 % of the TTL before
// its deadline; and the other nodes reap a stopped holder's lease sooner,
// the larger the margin (reapAfter).
func (l *leaseState) margin(e *Engine) time.Duration { return e.cfg.LeaseTTL * 3 / 10 }

// renewEvery is the renewal period: a quarter of the TTL.
func (l *leaseState) renewEvery(e *Engine) time.Duration { return e.cfg.LeaseTTL / 4 }

// extend sets the deadline to LeaseTTL minus a margin after t0, the moment
// the successful renewal was sent (the server's expiry counts from later).
func (l *leaseState) extend(e *Engine, t0 time.Time) {
	l.deadline.Store(int64(t0.Sub(l.base) + l.ttl(e) - l.margin(e)))
}

func (l *leaseState) valid() bool {
	return time.Since(l.base) < time.Duration(l.deadline.Load())
}

// acquire writes a new epoch for this node (Put: a restarted node replaces
// its previous incarnation, whose session records die with it).
func (l *leaseState) acquire(ctx context.Context, e *Engine) error {
	epoch := randomID()
	t0 := time.Now()
	var rev uint64
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		var err error
		rev, err = e.nodes.Put(ctx, e.cfg.NodeID, []byte(epoch))
		return err
	})
	if err != nil {
		return fmt.Errorf("engine: node lease: %w", err)
	}
	l.mu.Lock()
	l.epoch, l.rev = epoch, rev
	l.lost = make(chan struct{})
	l.dead = false
	l.mu.Unlock()
	l.extend(e, t0)
	return nil
}

func (l *leaseState) start(ctx context.Context, e *Engine) error {
	l.base = time.Now()
	return l.acquire(ctx, e)
}

// lose closes the current epoch's channel once.
func (l *leaseState) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dead {
		l.dead = true
		l.deadline.Store(0)
		close(l.lost)
	}
}

// renewLoop renews the lease every LeaseTTL/4 and closes the epoch's
// channel at its local deadline when renewals failed; it then takes a new
// epoch as soon as the engine answers again. It returns when ctx ends.
func (l *leaseState) renewLoop(ctx context.Context, e *Engine) {
	tick := time.NewTicker(l.renewEvery(e))
	defer tick.Stop()
	timer := time.NewTimer(l.untilDeadline())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if !l.valid() {
				l.lose()
			}
		case <-tick.C:
			l.mu.Lock()
			dead := l.dead
			l.mu.Unlock()
			if l.partitioned.Load() {
				// no renewal reaches the engine
			} else if dead {
				actx, cancel := context.WithTimeout(ctx, l.renewEvery(e))
				_ = l.acquire(actx, e)
				cancel()
			} else {
				l.renew(ctx, e)
			}
		}
		if !l.valid() {
			l.lose()
			// Nothing to watch until a new epoch: the ticker retries.
			timer.Reset(l.renewEvery(e))
			continue
		}
		timer.Reset(max(l.untilDeadline(), time.Millisecond))
	}
}

func (l *leaseState) untilDeadline() time.Duration {
	return time.Duration(l.deadline.Load()) - time.Since(l.base)
}

// renew makes one CAS renewal, bounded so that it ends before the local
// deadline.
func (l *leaseState) renew(ctx context.Context, e *Engine) {
	l.mu.Lock()
	epoch, rev := l.epoch, l.rev
	l.mu.Unlock()
	wait := min(l.ttl(e)/4, l.untilDeadline())
	if wait <= 0 {
		return
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t0 := time.Now()
	nrev, err := e.nodes.Update(actx, e.cfg.NodeID, []byte(epoch), rev)
	if err == nil {
		l.mu.Lock()
		if l.epoch == epoch && !l.dead {
			l.rev = nrev
			l.extend(e, t0)
		}
		l.mu.Unlock()
		return
	}
	if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLast(err) {
		return // unreachable or slow: the deadline decides
	}
	// The revision moved: our previous renewal was stored but its answer
	// lost (adopt it), or the key expired or another process took it.
	ent, gerr := e.nodes.Get(actx, e.cfg.NodeID)
	if gerr == nil && string(ent.Value()) == epoch {
		l.mu.Lock()
		if l.epoch == epoch {
			l.rev = ent.Revision()
		}
		l.mu.Unlock()
		return
	}
	if gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
		l.lose()
	}
}

func isWrongLast(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == 10071 || ae.ErrorCode == 10164)
}

// giveUp deletes the node lease on Close, so that the node's sessions may
// be taken over at once.
func (l *leaseState) giveUp(ctx context.Context, e *Engine) {
	l.mu.Lock()
	rev, dead := l.rev, l.dead
	l.mu.Unlock()
	l.lose()
	if dead || e.nodes == nil {
		return
	}
	actx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	_ = e.nodes.Delete(actx, e.cfg.NodeID, jetstream.LastRevision(rev))
}

func (e *Engine) epoch() string {
	e.lease.mu.Lock()
	defer e.lease.mu.Unlock()
	return e.lease.epoch
}

// Self is this node's OwnerID under its current lease epoch: what
// OwnerID answers for a session this node owns now, and Keep takes.
func (e *Engine) Self() string { return ownerRec{e.cfg.NodeID, e.epoch()}.String() }

// LeaseValid reports whether this node's lease is valid by the local
// monotonic deadline (renewed recently enough that the server cannot have
// expired it yet).
func (e *Engine) LeaseValid() bool { return e.lease.valid() }

// LeaseLost returns a channel that is closed when the node's current lease
// is lost (not renewed before LeaseTTL minus a margin, or Close): the
// caller closes the upstream sockets of the sessions it owns, which are
// fenced from then on. The engine then takes a new lease by itself; the
// caller calls Own again (and LeaseLost again) before it serves sessions.
func (e *Engine) LeaseLost() <-chan struct{} {
	e.lease.mu.Lock()
	defer e.lease.mu.Unlock()
	return e.lease.lost
}

// Ownership is a session owner record held by this node.
type Ownership struct {
	SID   SID
	Node  string
	Epoch string
	// Revision is the record's revision in cgw_owners.
	Revision uint64
	// LastSeq is the customer's last sequence after the owner marker that
	// fenced the log: the expectedLastSeq of the owner's first Append.
	LastSeq uint64
	// Empty: the log held nothing of the customer's before the owner
	// marker (its first owner): there is nothing earlier to read.
	Empty bool
}

type ownerRec struct{ node, epoch string }

func parseOwner(v []byte) ownerRec {
	node, epoch, _ := strings.Cut(string(v), " ")
	return ownerRec{node, epoch}
}

func (r ownerRec) String() string { return r.node + " " + r.epoch }

// maxOwnAttempts bounds Own's compare-and-set races.
const maxOwnAttempts = 8

// Own makes this node the session's owner: it creates the owner record, or
// replaces by CAS one whose node lease is gone (the previous owner crashed
// or was partitioned), then fences the log: it appends an owner marker
// after the customer's last event, so that any append of a previous owner
// still in flight is refused (ErrFenced) from then on. When this node
// already owns the session, Own returns the record (refreshed when older
// than MaxAge/2: the owner calls Own at least that often). Another live
// owner: an *OwnedError (errors.Is ErrOwned), which names it.
func (e *Engine) Own(ctx context.Context, sid SID) (Ownership, error) {
	if !sid.Valid() {
		return Ownership{}, fmt.Errorf("engine: invalid sid %q", sid)
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	e.lease.mu.Lock()
	mine := ownerRec{e.cfg.NodeID, e.lease.epoch}
	e.lease.mu.Unlock()
	if !e.LeaseValid() {
		return Ownership{}, fmt.Errorf("%w (node lease not valid)", ErrFenced)
	}
	back := 20 * time.Millisecond
	for attempt := 0; attempt < maxOwnAttempts; attempt++ {
		var rev uint64
		// fresh: the session never had an owner record (not even one
		// released since): its log is most likely empty, and the marker
		// is appended expecting that first (fence).
		fresh := false
		ent, err := e.owner.Get(ctx, string(sid))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			fresh = errors.Is(err, jetstream.ErrKeyNotFound)
			rev, err = e.owner.Create(ctx, string(sid), []byte(mine.String()))
			if errors.Is(err, jetstream.ErrKeyExists) || isWrongLast(err) {
				continue
			}
		case err != nil:
			if transient(err) {
				if werr := backoff(ctx, &back); werr != nil {
					return Ownership{}, fmt.Errorf("engine: owner record: %w", err)
				}
				attempt-- // waits for the engine count against ctx, not attempts
				continue
			}
			return Ownership{}, fmt.Errorf("engine: owner record: %w", err)
		default:
			rec := parseOwner(ent.Value())
			if rec == mine {
				rev := ent.Revision()
				if time.Since(ent.Created()) > e.cfg.MaxAge/2 {
					// Refresh the record before the bucket's MaxAge drops it.
					if nrev, err := e.owner.Update(ctx, string(sid), ent.Value(), rev); err == nil {
						rev = nrev
					} else if isWrongLast(err) {
						continue
					}
				}
				seq, err := e.LastSeq(ctx, sid)
				return Ownership{SID: sid, Node: mine.node, Epoch: mine.epoch, Revision: rev, LastSeq: seq}, err
			}
			alive, aerr := e.nodeAlive(ctx, rec)
			if aerr != nil {
				return Ownership{}, aerr
			}
			if alive {
				return Ownership{}, &OwnedError{Owner: rec.String()}
			}
			rev, err = e.owner.Update(ctx, string(sid), []byte(mine.String()), ent.Revision())
			if isWrongLast(err) || errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		}
		if err != nil {
			if transient(err) {
				if werr := backoff(ctx, &back); werr != nil {
					return Ownership{}, fmt.Errorf("engine: owner record: %w", err)
				}
				attempt--
				continue
			}
			return Ownership{}, fmt.Errorf("engine: owner record: %w", err)
		}
		seq, prev, err := e.fence(ctx, sid, mine, rev, fresh)
		if err != nil {
			// Unfenced, the record must not stand (a later Own would take
			// it as fenced already): give it back, best effort.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.OpTimeout)
			_ = e.owner.Delete(dctx, string(sid), jetstream.LastRevision(rev))
			cancel()
			return Ownership{}, err
		}
		return Ownership{SID: sid, Node: mine.node, Epoch: mine.epoch, Revision: rev, LastSeq: seq, Empty: prev == 0}, nil
	}
	return Ownership{}, errors.New("engine: owner record: too many concurrent changes")
}

// backoff waits *back (then doubles it, up to 500ms), or returns ctx's
// error.
func backoff(ctx context.Context, back *time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*back):
	}
	*back = min(*back*2, 500*time.Millisecond)
	return nil
}

// fence appends the owner marker after the customer's last event, reading
// the last sequence again when a previous owner's append got in between;
// it returns the marker's sequence and the one before it (0: the log was
// empty). fresh: the marker is first appended expecting an empty log,
// without reading the last sequence (a log that is not empty refuses it,
// and the last sequence is read then).
func (e *Engine) fence(ctx context.Context, sid SID, mine ownerRec, rev uint64, fresh bool) (seq, last uint64, err error) {
	for attempt := 0; attempt < maxOwnAttempts; attempt++ {
		last = 0
		if !fresh || attempt > 0 {
			if last, err = e.LastSeq(ctx, sid); err != nil {
				return 0, 0, err
			}
		}
		seq, err = e.append(ctx, sid, last, fmt.Sprintf("own.%s.%d", mine.epoch, rev), nil, mine.node, "")
		if err == nil {
			return seq, last, nil
		}
		if !errors.Is(err, ErrFenced) || !e.LeaseValid() {
			return 0, 0, err
		}
	}
	return 0, 0, fmt.Errorf("engine: fencing the log: %w", err)
}

// nodeAlive reports whether rec's node still holds the lease of rec's
// epoch; a lease whose node's own deadline has passed without a renewal
// is reaped here (reap.go), and is not alive.
func (e *Engine) nodeAlive(ctx context.Context, rec ownerRec) (bool, error) {
	if rec.node == "" {
		return false, nil
	}
	ent, err := e.nodes.Get(ctx, rec.node)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("engine: node lease: %w", err)
	}
	if string(ent.Value()) != rec.epoch {
		return false, nil
	}
	return !e.reap(ctx, rec, ent.Revision()), nil
}

// Alive reports whether owner (an OwnerID) still holds its node lease:
// false once the lease lapsed (or was reaped: reap.go) or the node took a
// new epoch, when the sessions it owned may be taken over.
func (e *Engine) Alive(ctx context.Context, owner string) (bool, error) {
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	return e.nodeAlive(ctx, parseOwner([]byte(owner)))
}

// Owner names the session's recorded owner node and whether its node lease
// (of the recorded epoch) is alive; "" when there is no record.
func (e *Engine) Owner(ctx context.Context, sid SID) (string, bool, error) {
	rec, alive, err := e.ownerRecord(ctx, sid)
	return rec.node, alive, err
}

// OwnerID is Owner with the owner's incarnation: its node and the epoch of
// that node's lease, which differ after every change of owner (another
// node, or the same node restarted); "" when there is no record.
func (e *Engine) OwnerID(ctx context.Context, sid SID) (string, bool, error) {
	rec, alive, err := e.ownerRecord(ctx, sid)
	if rec.node == "" {
		return "", alive, err
	}
	return rec.String(), alive, err
}

// ownerRecord is the session's owner record (zero without one) and whether
// the lease it names is alive.
func (e *Engine) ownerRecord(ctx context.Context, sid SID) (ownerRec, bool, error) {
	if !sid.Valid() {
		return ownerRec{}, false, fmt.Errorf("engine: invalid sid %q", sid)
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	ent, err := e.owner.Get(ctx, string(sid))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return ownerRec{}, false, nil
	}
	if err != nil {
		return ownerRec{}, false, fmt.Errorf("engine: owner record: %w", err)
	}
	rec := parseOwner(ent.Value())
	alive, err := e.nodeAlive(ctx, rec)
	return rec, alive, err
}

// Release deletes the session's owner record if this node holds it (of
// any epoch); otherwise it does nothing.
func (e *Engine) Release(ctx context.Context, sid SID) error {
	if !sid.Valid() {
		return fmt.Errorf("engine: invalid sid %q", sid)
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	ent, err := e.owner.Get(ctx, string(sid))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: owner record: %w", err)
	}
	rec := parseOwner(ent.Value())
	if rec.node != e.cfg.NodeID {
		return nil
	}
	err = e.owner.Delete(ctx, string(sid), jetstream.LastRevision(ent.Revision()))
	if err != nil && !isWrongLast(err) {
		return fmt.Errorf("engine: release: %w", err)
	}
	return nil
}
