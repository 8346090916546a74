package main

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"

	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
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
	TicketTTL        time.Duration `envconfig:"GATEWAY_TICKET_TTL" default:"60s" desc:"lifetime of a stream ticket (POST /v1/tickets), at most 1h"`
	MaxStreams       int           `envconfig:"GATEWAY_MAX_STREAMS" default:"10000" desc:"open event streams per process; beyond: 503 OVERLOADED"`
	MaxBodyBytes     int64         `envconfig:"GATEWAY_MAX_BODY_BYTES" default:"1048576" desc:"largest JSON request body, bytes; beyond: 413 (files: 10 MiB, fixed)"`
	StreamWriteTO    time.Duration `envconfig:"GATEWAY_STREAM_WRITE_TIMEOUT" default:"10s" desc:"deadline of each event-stream write; a client that stops reading is cut off"`
	RetryHint        time.Duration `envconfig:"GATEWAY_RETRY_HINT" default:"3s" desc:"reconnect delay sent on streams (retry:) and as Retry-After on 503s"`
	RequestTimeout   time.Duration `envconfig:"GATEWAY_REQUEST_TIMEOUT" default:"30s" desc:"deadline of a REST call, waiting for the session included (file uploads: 5m)"`
	BodyTimeout      time.Duration `envconfig:"GATEWAY_BODY_TIMEOUT" default:"10s" desc:"time a JSON request body may take to arrive after its headers; beyond: 408 TIMEOUT"`
	UploadBodyTO     time.Duration `envconfig:"GATEWAY_UPLOAD_BODY_TIMEOUT" default:"2m" desc:"time a file upload's body (POST /v1/chats/{chat}/files) may take to arrive after its headers; beyond: 408 TIMEOUT"`

	// The cluster engine (internal/engine: NATS JetStream).
	NATSURL            string        `envconfig:"GATEWAY_NATS_URL" desc:"NATS servers of the cluster engine (JetStream), comma-separated (nats://nats-0.nats:4222,…); empty: an embedded engine inside this process, stored in GATEWAY_DATA_DIR"`
	DataDir            string        `envconfig:"GATEWAY_DATA_DIR" desc:"the embedded engine's store, kept across restarts (unused with GATEWAY_NATS_URL); empty: $XDG_STATE_HOME/chatio-gateway, else $HOME/.local/state/chatio-gateway"`
	NodeID             string        `envconfig:"GATEWAY_NODE_ID" desc:"this replica's name in the engine, unique per replica (letters, digits, - and _); empty: the host name (a pod's name), its other characters turned into -"`
	ClusterKey         string        `envconfig:"GATEWAY_CLUSTER_KEY" desc:"hex key (≥32 bytes), the one secret the replicas share: the keys of stream tickets, history cursors and the engine's customer ids are derived from it; required with GATEWAY_NATS_URL; empty with the embedded engine: generated once and kept in GATEWAY_DATA_DIR"`
	LeaseTTL           time.Duration `envconfig:"GATEWAY_LEASE_TTL" default:"10s" desc:"how long a replica's lease in the engine outlives its last renewal (renewed every quarter of it); the same on every replica"`
	StreamReplicas     int           `envconfig:"GATEWAY_STREAM_REPLICAS" default:"0" desc:"copies the engine keeps of each stream and bucket (1 to 5; 3 survives one lost server); 0: 3 when the engine is a cluster of three or more servers, else 1"`
	LogStreams         int           `envconfig:"GATEWAY_LOG_STREAMS" default:"0" desc:"streams the customers' event logs are spread over, each with its own leader; fixed for the life of a store (the gateway refuses to start on a store made with another number); 0: the store's number, else 1 for the embedded engine (one server: nothing to spread, and each stream has write buffers of its own) and 4 with GATEWAY_NATS_URL"`
	LogMaxAge          time.Duration `envconfig:"GATEWAY_LOG_MAX_AGE" default:"24h" desc:"how long the engine keeps a customer's event"`
	LogMaxBytes        int64         `envconfig:"GATEWAY_LOG_MAX_BYTES" default:"1073741824" desc:"bytes each log stream keeps (the oldest events go first); the engine's disk needs GATEWAY_LOG_STREAMS times this, per stream replica"`
	EngineStartTimeout time.Duration `envconfig:"GATEWAY_ENGINE_START_TIMEOUT" default:"5m" desc:"how long the gateway keeps trying to reach GATEWAY_NATS_URL at start, with backoff (/readyz is 503 meanwhile), before it exits"`

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
	if c.TicketTTL > httpapi.MaxTicketTTL {
		errs = append(errs, errors.New("GATEWAY_TICKET_TTL must be at most 1h"))
	}
	if c.MaxFileBytes > 10<<20 {
		errs = append(errs, errors.New("GATEWAY_MAX_FILE_BYTES must be at most 10485760 (chat.io's limit)"))
	}
	if c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax {
		errs = append(errs, errors.New("GATEWAY_RECONNECT_MIN must not be above GATEWAY_RECONNECT_MAX"))
	}
	errs = append(errs, c.validateEngine()...)
	if c.PProf {
		if _, _, err := net.SplitHostPort(c.PProfAddr); err != nil {
			errs = append(errs, fmt.Errorf("GATEWAY_PPROF_ADDR %q: %w", c.PProfAddr, err))
		}
	}
	return errors.Join(errs...)
}

// minClusterKeyLen is the shortest GATEWAY_CLUSTER_KEY, in bytes.
const minClusterKeyLen = 32

// validateEngine checks the cluster engine's settings.
func (c config) validateEngine() []error {
	var errs []error
	for _, u := range c.natsURLs() {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") {
			errs = append(errs, fmt.Errorf("GATEWAY_NATS_URL: %q: want nats://, tls://, ws:// or wss://host:port", u))
		}
	}
	if c.NATSURL != "" && len(c.natsURLs()) == 0 {
		errs = append(errs, errors.New("GATEWAY_NATS_URL names no server"))
	}
	if c.ClusterKey != "" {
		if k, err := hex.DecodeString(c.ClusterKey); err != nil || len(k) < minClusterKeyLen {
			errs = append(errs, fmt.Errorf("GATEWAY_CLUSTER_KEY must be hex, at least %d bytes (%d hex digits)", minClusterKeyLen, 2*minClusterKeyLen))
		}
	} else if c.NATSURL != "" {
		// A key of its own per process would give each replica other
		// customer ids, tickets and cursors, and a restarted one would no
		// longer find its customers' logs.
		errs = append(errs, errors.New("GATEWAY_CLUSTER_KEY is required with GATEWAY_NATS_URL (the replicas share it; `openssl rand -hex 32` makes one)"))
	}
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		errs = append(errs, fmt.Errorf("GATEWAY_NODE_ID %q: 1 to 128 letters, digits, - and _", c.NodeID))
	}
	if c.LeaseTTL < 300*time.Millisecond {
		errs = append(errs, errors.New("GATEWAY_LEASE_TTL must be at least 300ms"))
	}
	if c.StreamReplicas < 0 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("GATEWAY_STREAM_REPLICAS must be 0 (automatic) to 5"))
	}
	if c.LogStreams < 0 || c.LogStreams > 1024 {
		errs = append(errs, errors.New("GATEWAY_LOG_STREAMS must be 0 to 1024"))
	}
	if c.LogMaxAge <= 0 || c.LogMaxBytes <= 0 || c.EngineStartTimeout <= 0 {
		errs = append(errs, errors.New("GATEWAY_LOG_MAX_AGE, GATEWAY_LOG_MAX_BYTES and GATEWAY_ENGINE_START_TIMEOUT must be positive"))
	}
	return errs
}

// natsURLs are the servers of GATEWAY_NATS_URL (none: embedded).
func (c config) natsURLs() []string {
	var out []string
	for u := range strings.SplitSeq(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// validNodeID: what the engine takes as a node id (one subject token).
func validNodeID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// nodeID is GATEWAY_NODE_ID, else the host name with every character the
// engine does not take turned into '-'.
func (c config) nodeID() (string, error) {
	if c.NodeID != "" {
		return c.NodeID, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("GATEWAY_NODE_ID is empty and the host name unknown (%v): set it", err)
	}
	b := []byte(h)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 128)]), nil
}

// dataDir is GATEWAY_DATA_DIR, else the user's state directory
// ($XDG_STATE_HOME/chatio-gateway, else $HOME/.local/state/chatio-gateway).
func (c config) dataDir() (string, error) {
	if c.DataDir != "" {
		return c.DataDir, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "chatio-gateway"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("GATEWAY_DATA_DIR is empty and there is no home directory (%v): set it", err)
	}
	return filepath.Join(home, ".local", "state", "chatio-gateway"), nil
}

// keyFile is where the embedded engine's generated cluster key is kept.
const keyFile = "cluster.key"

// clusterKey is GATEWAY_CLUSTER_KEY, or, with the embedded engine and no
// key set, the key generated at the first start and kept in dataDir (so
// that a restarted gateway finds its customers' logs and honours the
// tickets and cursors it gave out).
func (c config) clusterKey(dataDir string) (key []byte, generated bool, err error) {
	if c.ClusterKey != "" {
		k, err := hex.DecodeString(c.ClusterKey)
		return k, false, err
	}
	if c.NATSURL != "" {
		return nil, false, errors.New("GATEWAY_CLUSTER_KEY is required with GATEWAY_NATS_URL")
	}
	path := filepath.Join(dataDir, keyFile)
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < minClusterKeyLen {
			return nil, false, fmt.Errorf("%s: not a hex key of at least %d bytes", path, minClusterKeyLen)
		}
		return k, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("data dir: %w", err)
	}
	k := make([]byte, minClusterKeyLen)
	_, _ = rand.Read(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("cluster key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(k) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("cluster key: %w", err)
	}
	return k, true, nil
}

// subkey derives the key of one purpose from the cluster key
// (HKDF-SHA256, info "chatio-gateway <purpose>"), so that no key serves
// two purposes: "engine" (customer ids and one-time ids in the engine),
// "ticket" (sealing stream tickets), "cursor" (signing history cursors).
func subkey(clusterKey []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, clusterKey, nil, "chatio-gateway "+purpose, 32)
	if err != nil {
		panic(err) // only for a key length beyond 255 hashes
	}
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
