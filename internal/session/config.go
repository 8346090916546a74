package session

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// Config configures a Pool. The zero value of every field means its default,
// filled in by NewPool (see withDefaults); Validate rejects negative values.
type Config struct {
	// Upstream is the template for every session's client: URL, License,
	// timeouts, HTTPClient. Token, Customer, Logger, OnItem, OnDone and
	// Poller are set per session.
	Upstream chatio.Config

	// MaxSessions caps the sessions (one per token) of the pool, counting
	// those being created. 0 → 10000. Beyond → ErrOverloaded.
	MaxSessions int
	// MaxSubscribers caps the open streams of one session. 0 → 32.
	MaxSubscribers int
	// MaxInFlight caps the concurrent Do calls of one session. 0 → 64.
	MaxInFlight int
	// IdleTimeout: a session without subscriber and without call for this
	// long closes its socket and leaves the pool. 0 → 2m.
	IdleTimeout time.Duration
	// ReplayBuffer is the number of events a session keeps for Last-Event-ID
	// resumption. 0 → 512.
	ReplayBuffer int
	// ReplayBufferBytes bounds the bytes (of the events' JSON data) a
	// session's ring keeps, besides ReplayBuffer: the oldest events are
	// dropped until both bounds hold. An event larger than this is still
	// delivered live, but not kept: the ring is emptied before it. 0 → 1 MiB.
	ReplayBufferBytes int
	// ReplayBudgetBytes bounds the bytes (of the events' JSON data) the
	// rings of all the pool's sessions keep together. Half of it is shared
	// out evenly: each session may keep ReplayBudgetBytes/(2·MaxSessions)
	// (13 KiB at the defaults) whatever the others hold. What sessions keep
	// beyond their share comes out of the other half; a session that would
	// overdraw it drops its own oldest events (never another session's)
	// until it fits or is back within its share. 0 → 256 MiB.
	ReplayBudgetBytes int64
	// SubscriberBuffer is the number of events queued for one subscriber
	// before it is cut off with ErrSlowSubscriber. 0 → 256.
	SubscriberBuffer int
	// SubscriberBufferBytes bounds the bytes (of the events' JSON data)
	// queued for one subscriber: a subscriber whose queue would exceed it
	// is cut off with ErrSlowSubscriber. An event larger than this is still
	// queued to a subscriber whose queue is empty. 0 → 2 MiB.
	SubscriberBufferBytes int
	// ReconnectMin and ReconnectMax bound the exponential reconnect backoff
	// (full jitter: each sleep is uniform in [0, min(Max, Min·2^attempt))).
	// 0 → 250ms and 30s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// ReconnectWait is how long a call (Do, a new subscriber's snapshot)
	// waits for a live upstream connection before failing with
	// chatio.ErrConnectionLost. 0 → 10s.
	ReconnectWait time.Duration
	// DialTimeout bounds one dial + login + first summary. 0 → 30s.
	DialTimeout time.Duration
	// MaxConcurrentDials caps the dials in progress pool-wide, so that a mass
	// reconnect does not stampede the upstream. 0 → 32.
	MaxConcurrentDials int
	// SneakPeekInterval: at most one send_sneak_peek per chat per interval.
	// 0 → 2s (the SDK's throttle).
	SneakPeekInterval time.Duration
	// CursorKey is the HMAC-SHA256 key of history cursors. Replicas that
	// share it accept each other's cursors. nil → 32 random bytes.
	CursorKey []byte
	// ReadLoops is how many event loops read the pool's upstream sockets
	// (internal/netpoll; Linux), so that an idle session holds
	// no goroutine for its socket. 0 → one per GOMAXPROCS; negative → none:
	// each socket is read by a goroutine of its own. Ignored when
	// Upstream.Poller is set (the caller's poller is used, and not closed).
	ReadLoops int
	// Engine, when set, turns cluster mode on (see the package doc,
	// "Cluster mode"): a session is owned by one replica of the cluster
	// (engine.Own), the others forward its calls to it (Pool.Exec). nil:
	// this process alone, as before. The Pool does not close it: close it
	// after Pool.Shutdown, which releases the sessions this replica owns.
	Engine *engine.Engine
	// Dial opens an upstream client. nil → chatio.Dial. Tests may wrap it.
	Dial func(ctx context.Context, cfg chatio.Config) (*chatio.Client, chatio.LoginResult, error)
}

// Byte bounds of the event buffers (see Config).
const (
	DefaultReplayBufferBytes     = 1 << 20
	DefaultReplayBudgetBytes     = 256 << 20
	DefaultSubscriberBufferBytes = 2 << 20
)

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSessions < 0 || c.MaxSubscribers < 0 || c.MaxInFlight < 0 ||
		c.ReplayBuffer < 0 || c.SubscriberBuffer < 0 || c.MaxConcurrentDials < 0 ||
		c.ReplayBufferBytes < 0 || c.ReplayBudgetBytes < 0 || c.SubscriberBufferBytes < 0 {
		errs = append(errs, errors.New("session: limits must not be negative"))
	}
	if c.IdleTimeout < 0 || c.ReconnectMin < 0 || c.ReconnectMax < 0 ||
		c.ReconnectWait < 0 || c.DialTimeout < 0 || c.SneakPeekInterval < 0 {
		errs = append(errs, errors.New("session: durations must not be negative"))
	}
	if c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax {
		errs = append(errs, errors.New("session: ReconnectMin above ReconnectMax"))
	}
	if c.Upstream.URL == "" {
		errs = append(errs, errors.New("session: Upstream.URL is required"))
	}
	return errors.Join(errs...)
}

// replayShare is the bytes each session's ring may keep whatever the
// others hold: half of ReplayBudgetBytes, shared out evenly. c has its
// defaults.
func (c Config) replayShare() int64 {
	return c.ReplayBudgetBytes / (2 * int64(c.MaxSessions))
}

// withDefaults fills every zero field with its default.
func (c Config) withDefaults() Config {
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&c.MaxSessions, 10000)
	setInt(&c.MaxSubscribers, 32)
	setInt(&c.MaxInFlight, 64)
	setInt(&c.ReplayBuffer, 512)
	setInt(&c.SubscriberBuffer, 256)
	setInt(&c.ReplayBufferBytes, DefaultReplayBufferBytes)
	setInt(&c.SubscriberBufferBytes, DefaultSubscriberBufferBytes)
	if c.ReplayBudgetBytes <= 0 {
		c.ReplayBudgetBytes = DefaultReplayBudgetBytes
	}
	setInt(&c.MaxConcurrentDials, 32)
	setDur(&c.IdleTimeout, 2*time.Minute)
	setDur(&c.ReconnectMin, 250*time.Millisecond)
	setDur(&c.ReconnectMax, 30*time.Second)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	setDur(&c.ReconnectWait, 10*time.Second)
	setDur(&c.DialTimeout, 30*time.Second)
	setDur(&c.SneakPeekInterval, 2*time.Second)
	if len(c.CursorKey) == 0 {
		c.CursorKey = make([]byte, 32)
		_, _ = rand.Read(c.CursorKey) // crypto/rand.Read never fails (Go ≥1.24)
	}
	if c.Dial == nil {
		c.Dial = chatio.Dial
	}
	return c
}
