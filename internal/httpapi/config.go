package httpapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
)

// Config configures a Server. The zero value of every field means the
// default given beside it, filled in by New (withDefaults, the one place
// defaults live); Validate rejects values that cannot work.
type Config struct {
	// AllowedOrigins are the browser origins allowed by CORS, exact
	// ("https://shop.example") or "*" for any. Empty → no CORS headers at all
	// (same-origin and non-browser clients only).
	AllowedOrigins []string
	// MaxBodyBytes bounds a JSON request body. 0 → 1 MiB. Larger → 413.
	MaxBodyBytes int64
	// HeartbeatInterval: a comment line is written to an idle stream this
	// long after its last write. 0 → 15s.
	HeartbeatInterval time.Duration
	// TicketTTL is the lifetime of a stream ticket. 0 → 60s; at most
	// MaxTicketTTL (the engine remembers a used ticket for a day at most).
	TicketTTL time.Duration
	// TicketKey is the AES-256-GCM key sealing stream tickets
	// (TicketKeyLen bytes), the same on every replica so that any replica
	// redeems any ticket (tickets.go). Empty → random per process.
	TicketKey []byte
	// Engine is the cluster engine: a ticket is accepted once on any
	// replica (engine.Once), and /readyz answers 503 while the engine is
	// unreachable. nil → no engine: tickets are single-use within this
	// process only (for tests and tools without a cluster; the gateway
	// command always sets it).
	Engine *engine.Engine
	// MaxStreams caps the event streams open in this process. 0 → 10000.
	// Beyond → 503 OVERLOADED.
	MaxStreams int
	// WriteTimeout bounds each write (and flush) of a stream: a client that
	// does not take a heartbeat in this time is cut off. 0 → 10s.
	WriteTimeout time.Duration
	// RetryHint is the reconnection delay sent as the stream's "retry:" field
	// and, rounded up to seconds, as Retry-After on 503s. 0 → 3s.
	RetryHint time.Duration
	// RequestTimeout bounds a REST call (the wait for a session included).
	// 0 → 30s. Not applied to the event stream.
	RequestTimeout time.Duration
	// UploadTimeout bounds a file upload. 0 → 5m.
	UploadTimeout time.Duration
	// BodyTimeout bounds the time a JSON request body (every /v1 call but
	// the upload) takes to arrive, from the end of its headers. 0 → 10s.
	// Beyond → 408 TIMEOUT, and the connection is closed.
	BodyTimeout time.Duration
	// UploadBodyTimeout is BodyTimeout for a file upload's body, which is
	// streamed upstream as it arrives. 0 → 2m (10 MiB at 88 KiB/s).
	UploadBodyTimeout time.Duration
	// MaxFileBytes bounds an uploaded file. 0 → 10 MiB, the most chat.io
	// takes (chatio.MaxFileSize); above it is refused by Validate. Larger
	// → 413 with the SDK's reason.
	MaxFileBytes int64
	// RateLimit is the sustained request rate allowed per access token, in
	// requests per second; RateBurst the requests allowed at once. Beyond →
	// 429 REQUEST_FAILED too_many_requests with Retry-After (ratelimit.go).
	// 0 → 50/s and a burst of 100.
	RateLimit float64
	RateBurst int
	// Gatherer serves /metrics. nil → the Registerer given to New when it is
	// also a Gatherer (a *prometheus.Registry is), else
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultTicketTTL         = 60 * time.Second
	MaxTicketTTL             = time.Hour
	DefaultMaxStreams        = 10000
	DefaultWriteTimeout      = 10 * time.Second
	DefaultRetryHint         = 3 * time.Second
	DefaultRequestTimeout    = 30 * time.Second
	DefaultUploadTimeout     = 5 * time.Minute
	DefaultBodyTimeout       = 10 * time.Second
	DefaultUploadBodyTimeout = 2 * time.Minute
	DefaultRateLimit         = 50
	DefaultRateBurst         = 100
)

// withDefaults fills in every zero field.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.TicketTTL <= 0 {
		c.TicketTTL = DefaultTicketTTL
	}
	if len(c.TicketKey) == 0 {
		c.TicketKey = make([]byte, TicketKeyLen)
		_, _ = rand.Read(c.TicketKey) // never fails (Go ≥ 1.24)
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.RetryHint <= 0 {
		c.RetryHint = DefaultRetryHint
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = DefaultUploadTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.UploadBodyTimeout <= 0 {
		c.UploadBodyTimeout = DefaultUploadBodyTimeout
	}
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = chatio.MaxFileSize
	}
	if c.RateLimit <= 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = DefaultRateBurst
	}
	return c
}

// Validate reports a configuration that cannot work: negative values, and
// origins that are neither "*" nor a scheme://host[:port] origin.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 || c.MaxStreams < 0 || c.MaxFileBytes < 0 ||
		c.RateLimit < 0 || c.RateBurst < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, errors.New("httpapi: limits must not be negative"))
	}
	if c.MaxFileBytes > chatio.MaxFileSize {
		errs = append(errs, fmt.Errorf("httpapi: MaxFileBytes above %d, the most chat.io takes", chatio.MaxFileSize))
	}
	if c.HeartbeatInterval < 0 || c.TicketTTL < 0 || c.WriteTimeout < 0 ||
		c.RetryHint < 0 || c.RequestTimeout < 0 || c.UploadTimeout < 0 ||
		c.BodyTimeout < 0 || c.UploadBodyTimeout < 0 {
		errs = append(errs, errors.New("httpapi: durations must not be negative"))
	}
	if c.TicketTTL > MaxTicketTTL {
		errs = append(errs, fmt.Errorf("httpapi: TicketTTL above %v", MaxTicketTTL))
	}
	if len(c.TicketKey) != 0 && len(c.TicketKey) != TicketKeyLen {
		errs = append(errs, fmt.Errorf("httpapi: TicketKey must be %d bytes", TicketKeyLen))
	}
	for _, o := range c.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		strings.TrimRight(o, "/") != u.Scheme+"://"+u.Host {
		return fmt.Errorf("httpapi: bad CORS origin %q (want scheme://host[:port] or *)", o)
	}
	return nil
}
