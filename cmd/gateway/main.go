package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/engine"
	"github.com/chatio-gateway/chatio-gateway/internal/httpapi"
	"github.com/chatio-gateway/chatio-gateway/internal/reclaim"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run is the whole command: args without the program name; the
// configuration comes from the environment. onListen, when set, is told the
// gateway's listen address once it accepts connections. run returns when ctx
// ends (after a graceful shutdown) or the server fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, onListen func(net.Addr)) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { _ = printUsage(stdout) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch fs.Arg(0) {
	case "":
	case "healthcheck":
		return healthcheck(ctx)
	case "version":
		return printVersion(stdout, readBuildInfo())
	default:
		_ = printUsage(stderr)
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}

	cfg, err := loadConfig()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	setGCPercent()
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("gateway starting", readBuildInfo().logFields()...)
	return serve(ctx, cfg, log, stdout, onListen)
}

func newLogger(cfg config, out io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(out)))), nil
}

// serve starts the engine (embedded before listening; an external one
// retried while the gateway listens and answers 503), runs the service
// until ctx ends, then shuts it down in order: readiness off and streams
// told to end → stop accepting and let REST calls finish (those still
// running halfway, uploads included, are ended with a 503) → close the
// upstream sockets → close the engine → stop the embedded simulator; all
// within ShutdownGrace.
func serve(ctx context.Context, cfg config, log *zap.Logger, stdout io.Writer, onListen func(net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(buildInfoGauge(readBuildInfo()))

	em := newEngineMetrics(reg)
	es, err := prepareEngine(cfg)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	es.cfg.OnState = em.onState
	if es.newKey {
		log.Info("generated the cluster key (GATEWAY_CLUSTER_KEY unset) and kept it in the data dir",
			zap.String("file", filepath.Join(es.dir, keyFile)))
	}
	// The engine goes last: after the upstream sockets are closed (the
	// session pool), on every return.
	var eng *engine.Engine
	defer func() {
		if eng != nil {
			closeEngine(eng, 5*time.Second, log)
		}
	}()
	if es.cfg.URL == "" {
		// Embedded: started before the gateway listens, so that it is ready
		// with the first request; a failure here is this process's own.
		if eng, err = startEngine(ctx, es.cfg, cfg.EngineStartTimeout, log); err != nil {
			return err
		}
		em.connected.Set(1)
		log.Info("embedded engine", zap.String("data_dir", es.dir), zap.String("node", es.cfg.NodeID))
	}

	upstreamURL := cfg.ChatioURL
	var sim *embeddedSim
	if cfg.Embedded() {
		sim, err = startSim(log.Named("sim"))
		if err != nil {
			return err
		}
		defer sim.close()
		upstreamURL = sim.url
		log.Info("embedded chat.io simulator with demo agent at " + sim.url +
			" (set CHATIO_URL and CHATIO_LICENSE to use a real chat.io)")
	}

	// The listener comes up before an external engine: until the engine is
	// reached, /healthz is 200 and the rest 503 (httpapi.Starting).
	handler := &swapHandler{}
	handler.set(httpapi.Starting(httpapi.Config{RetryHint: cfg.RetryHint, AllowedOrigins: cfg.CORSOrigins}))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge, same port
	srv := &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: cfg.H2MaxStreams},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http.server").WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		// No WriteTimeout: it would cut event streams; stream writes carry
		// their own deadlines.
	}
	if err := configureHTTP2(srv, cfg.H2MaxStreams); err != nil { // see h2.go
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	serveErr := make(chan error, 1)
	// With the embedded engine the gateway serves once the API is in place;
	// with an external one, at once (the API replaces httpapi.Starting once
	// the engine is reached).
	startServing := sync.OnceFunc(func() {
		go func() { serveErr <- srv.Serve(ln) }()
		log.Info("gateway listening", zap.String("addr", ln.Addr().String()))
		if sim != nil {
			fmt.Fprintf(stdout, "chatio-gateway on %s with the embedded chat.io simulator and its demo agent.\n"+
				"Watch the event stream:  curl -N -H 'Authorization: Bearer demo-token' %s/v1/events\n"+
				"Start a chat:            curl -H 'Authorization: Bearer demo-token' -X POST %s/v1/chats -d '{}'\n",
				localURL(ln.Addr()), localURL(ln.Addr()), localURL(ln.Addr()))
		}
		if onListen != nil {
			onListen(ln.Addr())
		}
	})
	defer func() { _ = ln.Close() }() // an early return before Serve
	if eng == nil {
		startServing()
		if eng, err = startEngine(ctx, es.cfg, cfg.EngineStartTimeout, log); err != nil {
			_ = srv.Close()
			if ctx.Err() != nil { // stopped while starting
				log.Info("stopped before the engine was reached")
				return nil
			}
			return err
		}
		em.connected.Set(1)
		log.Info("engine connected", zap.String("url", cfg.NATSURL), zap.String("node", es.cfg.NodeID),
			zap.Int("replicas", eng.Replicas()))
	}
	stopProbe := probeEngine(eng, em, log.Named("engine"))
	defer stopProbe()

	pool := session.NewPool(session.Config{
		Upstream: chatio.Config{
			URL:            upstreamURL,
			License:        cfg.ChatioLicense,
			RequestTimeout: cfg.UpstreamRequestTimeout,
			PingInterval:   cfg.UpstreamPingInterval,
			PongTimeout:    cfg.UpstreamPongTimeout,
		},
		MaxSessions:        cfg.MaxSessions,
		MaxSubscribers:     cfg.MaxSubscribers,
		MaxInFlight:        cfg.MaxInFlight,
		MaxConcurrentDials: cfg.MaxConcurrentDials,
		ReconnectMin:       cfg.ReconnectMin,
		ReconnectMax:       cfg.ReconnectMax,
		IdleTimeout:        cfg.IdleTimeout,
		ReplayBuffer:       cfg.ReplayBuffer,
		SubscriberBuffer:   cfg.SubscriberBuffer,
		ReconnectWait:      cfg.ReconnectWait,
		DialTimeout:        cfg.UpstreamDialTimeout,
		ReadLoops:          cfg.UpstreamReadLoops,
		CursorKey:          es.keys.cursor,
		// Cluster mode, embedded engine included: the log in the engine,
		// one upstream socket per token across the replicas.
		Engine: eng,

		ReplayBufferBytes:     cfg.ReplayBufferBytes,
		ReplayBudgetBytes:     cfg.ReplayBudgetBytes,
		SubscriberBufferBytes: cfg.SubscriberBufferBytes,
	}, log.Named("session"), reg)
	poolDone := false
	defer func() {
		if !poolDone { // an early return: still close every upstream socket
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
			_ = pool.Shutdown(sctx)
			cancel()
		}
	}()

	hcfg := httpapi.Config{
		AllowedOrigins:    cfg.CORSOrigins,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		HeartbeatInterval: cfg.Heartbeat,
		TicketTTL:         cfg.TicketTTL,
		TicketKey:         es.keys.ticket,
		Engine:            eng,
		MaxStreams:        cfg.MaxStreams,
		WriteTimeout:      cfg.StreamWriteTO,
		RetryHint:         cfg.RetryHint,
		RequestTimeout:    cfg.RequestTimeout,
		BodyTimeout:       cfg.BodyTimeout,
		UploadBodyTimeout: cfg.UploadBodyTO,
		MaxFileBytes:      cfg.MaxFileBytes,
		RateLimit:         cfg.RateLimit,
		RateBurst:         cfg.RateBurst,
		Gatherer:          reg,
	}
	if err := hcfg.Validate(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("configuration: %w", err)
	}
	api := httpapi.New(hcfg, pool, log.Named("http"), reg)
	stopReclaim := startReclaimer(api, pool)
	defer stopReclaim()

	handler.set(api.Handler())
	startServing()

	var pprofSrv *http.Server
	if cfg.PProf {
		pprofSrv, err = startPprof(cfg.PProfAddr, log)
		if err != nil {
			_ = srv.Close()
			return err
		}
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("grace", cfg.ShutdownGrace))
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}

	// The whole shutdown fits in ShutdownGrace. The engine keeps the last
	// share of it (giving up its lease, draining its connection), the pool
	// the one before for the upstream close handshakes (each at most a
	// second, all in parallel); HTTP gets the rest.
	engineShare := min(cfg.ShutdownGrace/8, 2*time.Second)
	deadline := time.Now().Add(cfg.ShutdownGrace - engineShare)
	poolShare := min(cfg.ShutdownGrace/4, 3*time.Second)
	httpCtx, cancelHTTP := context.WithDeadline(context.Background(), deadline.Add(-poolShare))
	defer cancelHTTP()
	poolCtx, cancelPool := context.WithDeadline(context.Background(), deadline)
	defer cancelPool()

	stopReclaim()     // what follows frees everything; the process is about to end
	api.SetDraining() // readiness off; open streams get a retry hint and end
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(httpCtx) }() // stop accepting; let REST calls finish
	poolDone = true
	poolErr := make(chan error, 1)
	poolStarted := false
	soft := time.NewTimer((cfg.ShutdownGrace - engineShare - poolShare) / 2)
	defer soft.Stop()
	var herr error
	select {
	case herr = <-httpDone:
	case <-soft.C:
		// Calls still running halfway through (waiting for a reconnect, a
		// slow upstream, an upload that will not finish in time): ending
		// them now makes them answer a clean 503 (CONNECTION_LOST for the
		// calls on the ended sessions, OVERLOADED for the uploads) rather
		// than be cut with their connection. The other half of the HTTP
		// share is their margin to answer.
		log.Info("REST calls still running; ending uploads and upstream sessions")
		api.StopUploads()
		poolStarted = true
		go func() { poolErr <- pool.Shutdown(poolCtx) }()
		herr = <-httpDone
	}
	if herr != nil {
		log.Warn("http shutdown incomplete; closing connections", zap.Error(herr))
		_ = srv.Close()
	}
	if pprofSrv != nil {
		_ = pprofSrv.Shutdown(httpCtx)
	}
	if !poolStarted {
		go func() { poolErr <- pool.Shutdown(poolCtx) }()
	}
	if err := <-poolErr; err != nil {
		log.Warn("session pool shutdown incomplete", zap.Error(err))
	}
	stopProbe()
	closeEngine(eng, time.Until(deadline)+engineShare, log)
	log.Info("stopped")
	return runErr
}

// closeEngine closes the engine within d: it gives up this replica's
// lease, so that others may take its sessions over at once, and drains
// its connection (cut when d is over).
func closeEngine(e *engine.Engine, d time.Duration, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), max(d, 100*time.Millisecond))
	defer cancel()
	if err := e.Close(ctx); err != nil {
		log.Warn("engine close incomplete", zap.Error(err))
	}
}

// startReclaimer runs reclaim.Run on the open streams and sessions: after
// a burst, when they have halved, the memory they held goes back to the
// operating system within seconds instead of at Go's two-minute forced
// collection. stop ends it and waits for it; it may be called again.
func startReclaimer(api *httpapi.Server, pool *session.Pool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reclaim.Run(ctx, reclaim.Config{Count: func() int { return api.OpenStreams() + pool.Len() }})
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
	})
}

// localURL is the http URL a local user can open for addr.
func localURL(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		return fmt.Sprintf("http://localhost:%d", ta.Port)
	}
	return "http://" + addr.String()
}

// embeddedSim is the in-process chat.io simulator.
type embeddedSim struct {
	sim *chatiosim.Server
	srv *http.Server
	url string
}

func startSim(log *zap.Logger) (*embeddedSim, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded simulator: %w", err)
	}
	sim := chatiosim.New(chatiosim.Config{Bot: true, Logger: log})
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &embeddedSim{sim: sim, srv: srv, url: "ws://" + ln.Addr().String() + "/customer/v0.5"}, nil
}

func (e *embeddedSim) close() {
	e.sim.Close()
	_ = e.srv.Close()
}

func startPprof(addr string, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", zap.String("addr", ln.Addr().String()))
	return srv, nil
}

// healthcheck GETs /healthz on the local port of GATEWAY_ADDR (for Docker's
// HEALTHCHECK); nil when it answers 200.
func healthcheck(ctx context.Context) error {
	addr := os.Getenv("GATEWAY_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("GATEWAY_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}

// defaultGOGC is the gateway's GC target when the environment sets no
// GOGC. The heap is mostly long-lived session state (thousands of idle
// sessions and streams) that changes slowly: Go's default of 100 lets the
// heap grow to twice that state between collections, 50 to one and a
// half. At 10,000 sessions and 2,000 pushes/s that is ≈ 3 KiB less per
// session, for a collection every ≈ 6 s instead of every 12–17 s: ≈ 2.5 %
// of a core instead of ≈ 1.2 %, two thirds of it on otherwise idle CPU
// (GODEBUG=gctrace=1; bench/RESULTS.md).
const defaultGOGC = 50

// setGCPercent applies defaultGOGC unless GOGC is set: an operator's GOGC
// (and GOMEMLIMIT, which the deployment sets) wins.
func setGCPercent() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGOGC)
	}
}
