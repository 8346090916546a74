package loadgen

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Modes of a run.
const (
	ModeBoth    = "both"    // the gateway, then the direct baseline
	ModeGateway = "gateway" // customers through the gateway only
	ModeDirect  = "direct"  // customers on websockets straight to the simulator only
	// ModeRelay runs the direct clients through a byte relay child process
	// (ServeRelay), then the direct baseline: the floor of any process
	// between customers and chat.io, beside which the gateway's cost can be
	// read.
	ModeRelay = "relay"
)

// Protocols between the load generator and the gateway.
const (
	ProtoH1 = "h1" // HTTP/1.1: one socket per stream, REST over a keep-alive pool
	ProtoH2 = "h2" // HTTP/2 without TLS (h2c, prior knowledge): streams and REST multiplexed over H2Conns connections
)

// Config is one load run. The zero value of a field means the default beside
// it (withDefaults); Validate rejects what cannot run.
type Config struct {
	K        int           // customer sessions, each with one open event stream. 0 → 100
	Ramp     float64       // sessions opened per second. 0 → 200
	R        float64       // agent messages per second in total, spread round-robin over the sessions. 0 → none
	S        float64       // customer sendMessage calls per second in total (REST through the gateway, send_event direct). 0 → none
	Duration time.Duration // the measured phase (agent and customer traffic). 0 → 10s
	Proto    string        // ProtoH1 or ProtoH2. "" → h2
	H2Conns  int           // HTTP/2 connections the streams and calls are spread over. 0 → 8
	Mode     string        // ModeBoth, ModeGateway, ModeDirect or ModeRelay. "" → both

	// Callers > 0 adds a throughput phase after the measured one: that many
	// callers, each on its own session, send messages back to back for
	// CallersDuration (0 → 10s). Needs K ≥ Callers.
	Callers         int
	CallersDuration time.Duration

	// GatewayBin is the gateway binary. "" → built with `go build` from
	// the module's ./cmd/gateway into a temporary directory (the working
	// directory must be inside the module).
	GatewayBin string
	// GatewayEnv is added to the gateway's environment (KEY=VALUE), after
	// the load generator's own settings, so it may override them.
	GatewayEnv []string
	// GatewayStderr receives the gateway's log (nil → discarded).
	GatewayStderr io.Writer

	// ProfileDir, when set, turns the gateway's pprof endpoint on and saves
	// a heap profile once the sessions are open and a CPU profile of the
	// measured phase there.
	ProfileDir string

	// Worker is the command that runs a mode's customer clients in a child
	// process (the load generator re-executing itself with a worker
	// argument; see ServeWorker). Both modes' clients run there, so that
	// their pushes are read in a process of their own, away from the
	// simulator's work, and the two modes compare alike; and the direct
	// clients need one socket each, the simulator one more per socket,
	// which at large K does not fit one process (a process may hold only
	// RLIMIT_NOFILE files). nil → in this process, which is refused for the
	// direct clients when 2K sockets do not fit.
	Worker []string
	// Relay is the command that runs the byte relay of ModeRelay (the load
	// generator re-executing itself with a relay argument; see ServeRelay).
	Relay []string
	// ClientsInProcess forces the clients into this process even when a
	// worker is configured.
	ClientsInProcess bool
	// DirectReadLoops is how the direct clients' sockets are read, as
	// GATEWAY_UPSTREAM_READ_LOOPS is for the gateway's upstream sockets: by
	// that many event loops (internal/netpoll; 0 → one per GOMAXPROCS), or
	// with -1 by a goroutine per socket.
	DirectReadLoops int

	// Replicas > 1 runs the gateway mode as a cluster (see cluster.go):
	// that many gateway processes on one nats-server with JetStream,
	// customers' calls spread over them at random. 0 or 1: one gateway on
	// its embedded engine, as before.
	Replicas int
	// LeaseTTL is the replicas' GATEWAY_LEASE_TTL (0: the gateway's
	// default).
	LeaseTTL time.Duration
	// KillOwnerAt > 0 (cluster runs only) SIGKILLs the replica owning the
	// most sessions that long into the measured phase, and measures the
	// takeover of its sessions (KillReport). It must fall inside Duration.
	KillOwnerAt time.Duration
	// NATS is the command that runs the cluster's nats-server as a child
	// process (the load generator re-executing itself; see ServeNATS), so
	// that its memory and CPU are read apart. nil → in this process.
	NATS []string

	// DrainTimeout bounds the wait for in-flight pushes after the measured
	// phase. 0 → 5s.
	DrainTimeout time.Duration
	// Settle is the pause after the ramp before memory is read and traffic
	// starts. 0 → 2s.
	Settle time.Duration

	// Log receives progress lines (nil → discarded).
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.K <= 0 {
		c.K = 100
	}
	if c.Ramp <= 0 {
		c.Ramp = 200
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Proto == "" {
		c.Proto = ProtoH2
	}
	if c.H2Conns <= 0 {
		c.H2Conns = 8
	}
	if c.Mode == "" {
		c.Mode = ModeBoth
	}
	if c.CallersDuration <= 0 {
		c.CallersDuration = 10 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	var errs []error
	if c.K < 0 || c.Ramp < 0 || c.R < 0 || c.S < 0 || c.H2Conns < 0 || c.Callers < 0 {
		errs = append(errs, errors.New("loadgen: counts and rates must not be negative"))
	}
	if c.Duration < 0 || c.CallersDuration < 0 || c.DrainTimeout < 0 || c.Settle < 0 {
		errs = append(errs, errors.New("loadgen: durations must not be negative"))
	}
	if c.Duration > 10*time.Minute || c.CallersDuration > 10*time.Minute {
		errs = append(errs, errors.New("loadgen: a phase may last at most 10 minutes"))
	}
	if c.K > 50000 {
		errs = append(errs, errors.New("loadgen: at most 50000 sessions"))
	}
	switch c.Proto {
	case "", ProtoH1, ProtoH2:
	default:
		errs = append(errs, fmt.Errorf("loadgen: proto %q: want h1 or h2", c.Proto))
	}
	switch c.Mode {
	case "", ModeBoth, ModeGateway, ModeDirect:
	case ModeRelay:
		if len(c.Relay) == 0 {
			errs = append(errs, errors.New("loadgen: mode relay needs a relay command"))
		}
	default:
		errs = append(errs, fmt.Errorf("loadgen: mode %q: want both, gateway, direct or relay", c.Mode))
	}
	switch {
	case c.Replicas < 0 || c.Replicas > 9:
		errs = append(errs, errors.New("loadgen: 0 to 9 replicas"))
	case c.Replicas > 1 && c.Mode != "" && c.Mode != ModeGateway && c.Mode != ModeBoth:
		errs = append(errs, errors.New("loadgen: replicas need mode gateway or both"))
	case c.KillOwnerAt < 0 || c.LeaseTTL < 0:
		errs = append(errs, errors.New("loadgen: durations must not be negative"))
	case c.KillOwnerAt > 0 && c.Replicas < 2:
		errs = append(errs, errors.New("loadgen: kill-owner-at needs at least 2 replicas"))
	case c.KillOwnerAt > 0 && c.KillOwnerAt >= c.Duration && c.Duration > 0:
		errs = append(errs, errors.New("loadgen: kill-owner-at must fall inside the measured phase"))
	}
	k := c.K
	if k == 0 {
		k = 100
	}
	if c.Callers > k {
		errs = append(errs, fmt.Errorf("loadgen: %d callers need at least as many sessions (K=%d)", c.Callers, k))
	}
	return errors.Join(errs...)
}
