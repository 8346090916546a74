package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"
)

// embedded is the CHATIO_URL value that starts the in-process simulator.
const embedded = "embedded"

// config is the whole service configuration, read from the environment. Each
// field says its unit and default; `gateway -h` prints this table.
type config struct {
	ChatioURL     string `envconfig:"CHATIO_URL" default:"embedded" desc:"upstream base URL (wss://…/customer/v0.5), or embedded: an in-process chat.io simulator with a demo agent"`
	ChatioLicense int64  `envconfig:"CHATIO_LICENSE" desc:"chat.io license number; required unless CHATIO_URL is embedded (which uses 1)"`
	Addr          string `envconfig:"GATEWAY_ADDR" default:":8080" desc:"listen address (HTTP/1.1 and h2c)"`
	// H2MaxStreams: a load balancer speaking h2c multiplexes many event
	// streams over few connections (Go's own default is 250).
	H2MaxStreams int `envconfig:"GATEWAY_H2_MAX_STREAMS" default:"2000" desc:"concurrent streams (event streams and calls) per HTTP/2 connection"`

	LogLevel      string        `envconfig:"GATEWAY_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat     string        `envconfig:"GATEWAY_LOG_FORMAT" default:"json" desc:"json or console"`
	CORSOrigins   []string      `envconfig:"GATEWAY_CORS_ORIGINS" desc:"browser origins allowed by CORS, comma-separated (https://shop.example,…) or *; empty: no CORS"`
	ShutdownGrace time.Duration `envconfig:"GATEWAY_SHUTDOWN_GRACE" default:"25s" desc:"how long a SIGTERM/SIGINT shutdown may take"`

	MaxSessions      int           `envconfig:"GATEWAY_MAX_SESSIONS" default:"10000" desc:"customer sessions (upstream sockets) per process; beyond: 503 OVERLOADED"`
	MaxSubscribers   int           `envconfig:"GATEWAY_MAX_SUBSCRIBERS" default:"32" desc:"open event streams per session; beyond: 503 OVERLOADED"`
	MaxInFlight      int           `envconfig:"GATEWAY_MAX_INFLIGHT" default:"64" desc:"concurrent upstream calls per session; beyond: 503 OVERLOADED"`
	RateLimit        float64       `envconfig:"GATEWAY_RATE_LIMIT" default:"50" desc:"requests per second allowed per access token (sustained); beyond: 429 REQUEST_FAILED too_many_requests with Retry-After"`
	RateBurst        int           `envconfig:"GATEWAY_RATE_BURST" default:"100" desc:"requests per access token allowed at once above GATEWAY_RATE_LIMIT"`
	MaxFileBytes     int64         `envconfig:"GATEWAY_MAX_FILE_BYTES" default:"10485760" desc:"largest uploaded file, bytes (at most 10 MiB, chat.io's limit); beyond: 413"`
	IdleTimeout      time.Duration `envconfig:"GATEWAY_IDLE_TIMEOUT" default:"2m" desc:"a session without stream and call for this long closes its upstream socket"`
	ReplayBuffer     int           `envconfig:"GATEWAY_REPLAY_BUFFER" default:"512" desc:"events kept per session for Last-Event-ID resumption"`
	SubscriberBuffer int           `envconfig:"GATEWAY_SUBSCRIBER_BUFFER" default:"256" desc:"events queued per stream before a slow client is cut off (it resumes with Last-Event-ID)"`
	Heartbeat        time.Duration `envconfig:"GATEWAY_HEARTBEAT" default:"15s" desc:"comment heartbeat on an idle event stream"`
	TicketTTL        time.Duration `envconfig:"GATEWAY_TICKET_TTL" default:"60s" desc:"lifetime of a stream ticket (POST /v1/tickets)"`
	MaxStreams       int           `envconfig:"GATEWAY_MAX_STREAMS" default:"10000" desc:"open event streams per process; beyond: 503 OVERLOADED"`
	MaxBodyBytes     int64         `envconfig:"GATEWAY_MAX_BODY_BYTES" default:"1048576" desc:"largest JSON request body, bytes; beyond: 413 (files: 10 MiB, fixed)"`
	StreamWriteTO    time.Duration `envconfig:"GATEWAY_STREAM_WRITE_TIMEOUT" default:"10s" desc:"deadline of each event-stream write; a client that stops reading is cut off"`
	RetryHint        time.Duration `envconfig:"GATEWAY_RETRY_HINT" default:"3s" desc:"reconnect delay sent on streams (retry:) and as Retry-After on 503s"`
	RequestTimeout   time.Duration `envconfig:"GATEWAY_REQUEST_TIMEOUT" default:"30s" desc:"deadline of a REST call, waiting for the session included (file uploads: 5m)"`
	BodyTimeout      time.Duration `envconfig:"GATEWAY_BODY_TIMEOUT" default:"10s" desc:"time a JSON request body may take to arrive after its headers; beyond: 408 TIMEOUT"`
	UploadBodyTO     time.Duration `envconfig:"GATEWAY_UPLOAD_BODY_TIMEOUT" default:"2m" desc:"time a file upload's body (POST /v1/chats/{chat}/files) may take to arrive after its headers; beyond: 408 TIMEOUT"`
	CursorKey        string        `envconfig:"GATEWAY_CURSOR_KEY" desc:"hex HMAC key (≥16 bytes) signing history cursors; replicas behind one balancer must share it; empty: random per process"`

	// The byte bounds of the event buffers (their events' data, as JSON).
	ReplayBufferBytes     int   `envconfig:"GATEWAY_REPLAY_BUFFER_BYTES" default:"1048576" desc:"bytes of events kept per session for Last-Event-ID resumption, besides GATEWAY_REPLAY_BUFFER (oldest dropped first); a larger event is delivered but not kept"`
	ReplayBudgetBytes     int64 `envconfig:"GATEWAY_REPLAY_BUDGET_BYTES" default:"268435456" desc:"bytes of events kept for resumption by all sessions together; each may keep budget / (2 × GATEWAY_MAX_SESSIONS) whatever the others hold, beyond that a session drops its own oldest"`
	SubscriberBufferBytes int   `envconfig:"GATEWAY_SUBSCRIBER_BUFFER_BYTES" default:"2097152" desc:"bytes of events queued per stream, besides GATEWAY_SUBSCRIBER_BUFFER, before a slow client is cut off (a larger event still reaches an empty queue)"`

	UpstreamRequestTimeout time.Duration `envconfig:"GATEWAY_UPSTREAM_REQUEST_TIMEOUT" default:"15s" desc:"deadline of one upstream request"`
	UpstreamDialTimeout    time.Duration `envconfig:"GATEWAY_UPSTREAM_DIAL_TIMEOUT" default:"30s" desc:"deadline of opening a session: dial, login, first summary"`
	UpstreamPingInterval   time.Duration `envconfig:"GATEWAY_UPSTREAM_PING_INTERVAL" default:"15s" desc:"websocket ping interval on upstream sockets"`
	UpstreamPongTimeout    time.Duration `envconfig:"GATEWAY_UPSTREAM_PONG_TIMEOUT" default:"10s" desc:"an upstream socket without pong for this long is dropped and redialed"`
	ReconnectWait          time.Duration `envconfig:"GATEWAY_RECONNECT_WAIT" default:"10s" desc:"how long a call waits for a dropped upstream socket to come back before 503 CONNECTION_LOST"`
	ReconnectMin           time.Duration `envconfig:"GATEWAY_RECONNECT_MIN" default:"250ms" desc:"first upstream reconnect backoff; doubles per failed attempt, full jitter"`
	ReconnectMax           time.Duration `envconfig:"GATEWAY_RECONNECT_MAX" default:"30s" desc:"cap of the upstream reconnect backoff"`
	UpstreamReadLoops      int           `envconfig:"GATEWAY_UPSTREAM_READ_LOOPS" default:"0" desc:"event loops that read the upstream sockets (Linux), so that an idle session holds no goroutine; 0: one per GOMAXPROCS; -1: a goroutine per socket"`
	MaxConcurrentDials     int           `envconfig:"GATEWAY_MAX_CONCURRENT_DIALS" default:"32" desc:"upstream dials (connect + login) in progress at once, process-wide, so that a mass reconnect does not stampede chat.io"`

	PProf     bool   `envconfig:"GATEWAY_PPROF" default:"false" desc:"serve net/http/pprof on GATEWAY_PPROF_ADDR"`
	PProfAddr string `envconfig:"GATEWAY_PPROF_ADDR" default:"127.0.0.1:6060" desc:"pprof listen address (keep it private)"`
}

// loadConfig reads the configuration from the environment and checks it.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, err
	}
	if c.Embedded() && c.ChatioLicense == 0 {
		c.ChatioLicense = 1
	}
	return c, c.validate()
}

// Embedded reports whether the in-process simulator is the upstream.
func (c config) Embedded() bool {
	return c.ChatioURL == "" || strings.EqualFold(c.ChatioURL, embedded)
}

func (c config) validate() error {
	var errs []error
	if !c.Embedded() {
		u, err := url.Parse(c.ChatioURL)
		if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("CHATIO_URL %q: want ws://, wss://, http:// or https://host/path, or embedded", c.ChatioURL))
		}
		if c.ChatioLicense <= 0 {
			errs = append(errs, errors.New("CHATIO_LICENSE is required (a positive number) unless CHATIO_URL is embedded"))
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_ADDR %q: %w", c.Addr, err))
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("GATEWAY_LOG_FORMAT %q: want json or console", c.LogFormat))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("GATEWAY_SHUTDOWN_GRACE must be positive"))
	}
	for name, v := range map[string]int64{
		"GATEWAY_MAX_SESSIONS": int64(c.MaxSessions), "GATEWAY_MAX_SUBSCRIBERS": int64(c.MaxSubscribers),
		"GATEWAY_REPLAY_BUFFER": int64(c.ReplayBuffer), "GATEWAY_SUBSCRIBER_BUFFER": int64(c.SubscriberBuffer),
		"GATEWAY_MAX_STREAMS": int64(c.MaxStreams), "GATEWAY_MAX_BODY_BYTES": c.MaxBodyBytes,
		"GATEWAY_H2_MAX_STREAMS": int64(c.H2MaxStreams), "GATEWAY_MAX_INFLIGHT": int64(c.MaxInFlight),
		"GATEWAY_RATE_BURST": int64(c.RateBurst), "GATEWAY_MAX_FILE_BYTES": c.MaxFileBytes,
		"GATEWAY_MAX_CONCURRENT_DIALS": int64(c.MaxConcurrentDials),

		"GATEWAY_REPLAY_BUFFER_BYTES": int64(c.ReplayBufferBytes), "GATEWAY_REPLAY_BUDGET_BYTES": c.ReplayBudgetBytes,
		"GATEWAY_SUBSCRIBER_BUFFER_BYTES": int64(c.SubscriberBufferBytes),
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	for name, d := range map[string]time.Duration{
		"GATEWAY_IDLE_TIMEOUT": c.IdleTimeout, "GATEWAY_HEARTBEAT": c.Heartbeat, "GATEWAY_TICKET_TTL": c.TicketTTL,
		"GATEWAY_STREAM_WRITE_TIMEOUT": c.StreamWriteTO, "GATEWAY_REQUEST_TIMEOUT": c.RequestTimeout, "GATEWAY_RETRY_HINT": c.RetryHint,
		"GATEWAY_BODY_TIMEOUT": c.BodyTimeout, "GATEWAY_UPLOAD_BODY_TIMEOUT": c.UploadBodyTO,
		"GATEWAY_UPSTREAM_REQUEST_TIMEOUT": c.UpstreamRequestTimeout, "GATEWAY_UPSTREAM_DIAL_TIMEOUT": c.UpstreamDialTimeout,
		"GATEWAY_UPSTREAM_PING_INTERVAL": c.UpstreamPingInterval, "GATEWAY_UPSTREAM_PONG_TIMEOUT": c.UpstreamPongTimeout,
		"GATEWAY_RECONNECT_WAIT": c.ReconnectWait, "GATEWAY_RECONNECT_MIN": c.ReconnectMin, "GATEWAY_RECONNECT_MAX": c.ReconnectMax,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if c.RateLimit < 0 || c.RateLimit != c.RateLimit {
		errs = append(errs, errors.New("GATEWAY_RATE_LIMIT must not be negative"))
	}
	if c.MaxFileBytes > 10<<20 {
		errs = append(errs, errors.New("GATEWAY_MAX_FILE_BYTES must be at most 10485760 (chat.io's limit)"))
	}
	if c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax {
		errs = append(errs, errors.New("GATEWAY_RECONNECT_MIN must not be above GATEWAY_RECONNECT_MAX"))
	}
	if c.CursorKey != "" {
		if k, err := hex.DecodeString(c.CursorKey); err != nil || len(k) < 16 {
			errs = append(errs, errors.New("GATEWAY_CURSOR_KEY must be hex, at least 16 bytes (32 hex digits)"))
		}
	}
	if c.PProf {
		if _, _, err := net.SplitHostPort(c.PProfAddr); err != nil {
			errs = append(errs, fmt.Errorf("GATEWAY_PPROF_ADDR %q: %w", c.PProfAddr, err))
		}
	}
	return errors.Join(errs...)
}

// cursorKey is the decoded GATEWAY_CURSOR_KEY (nil: random).
func (c config) cursorKey() []byte {
	k, _ := hex.DecodeString(c.CursorKey)
	return k
}

// usageFormat is envconfig's table without its header and REQUIRED column.
const usageFormat = "KEY\tTYPE\tDEFAULT\tDESCRIPTION\n" +
	"{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"

// printUsage writes the command's usage and the configuration table.
func printUsage(w io.Writer) error {
	fmt.Fprint(w, `gateway: the chat.io customer chat protocol behind REST and Server-Sent Events.

Usage:
  gateway              run the service (configured by the environment below)
  gateway healthcheck  GET /healthz on the local port of GATEWAY_ADDR; exit 0 when healthy
  gateway version      the version, VCS revision and Go release of this binary
  gateway -h           this help

Environment:
`)
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw, usageFormat); err != nil {
		return err
	}
	return tw.Flush()
}
