package loadgen

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

// Run executes a load run: for each mode, a fresh simulator in this process,
// the customers (through a gateway child process, or straight to the
// simulator), the ramp, the measured phase, the optional throughput phase,
// and teardown. It returns the report of every mode; an error only when a
// mode could not run at all (errors of individual requests are counted in
// the report).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	nofile := raiseNoFile()
	rep := &Report{
		Started: time.Now().UTC(),
		Machine: machine(nofile),
		Config:  reportConfig(cfg),
	}
	var modes []string
	switch cfg.Mode {
	case ModeBoth:
		modes = []string{ModeGateway, ModeDirect}
	case ModeRelay:
		modes = []string{ModeRelay, ModeDirect}
	default:
		modes = []string{cfg.Mode}
	}
	for _, m := range modes {
		if m == ModeGateway && cfg.GatewayBin == "" {
			dir, err := os.MkdirTemp("", "loadgen-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			fmt.Fprintln(cfg.Log, "building the gateway")
			bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			bin, err := buildGateway(bctx, dir)
			cancel()
			if err != nil {
				return nil, err
			}
			cfg.GatewayBin = bin
		}
	}
	for _, m := range modes {
		mr, err := runMode(ctx, cfg, m, nofile)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", m, err)
		}
		rep.Modes = append(rep.Modes, mr)
	}
	return rep, nil
}

// raiseNoFile lifts the soft open-files limit to the hard one (children
// inherit it) and returns it.
func raiseNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// sim is the chat.io simulator served on 127.0.0.1 in this process.
type sim struct {
	s   *chatiosim.Server
	srv *http.Server
	url string
}

func startSim() (*sim, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := chatiosim.New(chatiosim.Config{})
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &sim{s: s, srv: srv, url: "ws://" + ln.Addr().String() + "/customer/v0.5"}, nil
}

func (s *sim) close() {
	s.s.Close()
	_ = s.srv.Close()
}

// runMode runs one mode from a fresh simulator to teardown.
func runMode(ctx context.Context, cfg Config, mode string, nofile uint64) (_ *ModeReport, err error) {
	k := cfg.K
	// Every phase is bounded; this bounds the whole mode as well.
	budget := time.Duration(float64(k)/cfg.Ramp*1.5*float64(time.Second)) + 2*time.Minute +
		cfg.Settle + cfg.Duration + cfg.DrainTimeout
	if cfg.Callers > 0 {
		budget += cfg.CallersDuration
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	mr := &ModeReport{Mode: mode, Sessions: k, Calls: map[string]Latency{}}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%s] %s\n", mode, fmt.Sprintf(format, args...))
	}

	sm, err := startSim()
	if err != nil {
		return nil, err
	}
	defer sm.close()

	var (
		gw     *gatewayProc   // the gateway, or a cluster run's first replica
		gws    []*gatewayProc // every replica (one: a single gateway)
		eng    *engineProc    // a cluster run's nats-server
		fl     fleet
		rss    *sampler
		remote *remoteFleet
		mids   []int // the pids of the processes in the middle, gateway replicas or relay; none if none
	)
	prefix := "lg-" + mode + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	spec := fleetSpec{Mode: mode, Prefix: prefix, URL: sm.url, Loops: cfg.DirectReadLoops}
	switch mode {
	case ModeGateway:
		mr.Proto = cfg.Proto
		perConn := k/cfg.H2Conns + 512
		env := []string{
			"GATEWAY_MAX_SESSIONS=" + strconv.Itoa(k+100),
			"GATEWAY_MAX_STREAMS=" + strconv.Itoa(k+100),
			"GATEWAY_H2_MAX_STREAMS=" + strconv.Itoa(max(perConn, 1000)),
		}
		n := max(cfg.Replicas, 1)
		if n > 1 {
			if eng, err = startEngine(cfg.NATS, cfg.GatewayStderr); err != nil {
				return nil, err
			}
			defer eng.stop()
			env = append(env, "GATEWAY_NATS_URL="+eng.url, "GATEWAY_CLUSTER_KEY="+clusterKey())
			if cfg.LeaseTTL > 0 {
				env = append(env, "GATEWAY_LEASE_TTL="+cfg.LeaseTTL.String())
			}
			where := "a child process"
			if eng.pid == 0 {
				where = "in the load generator's process"
			}
			mr.Cluster = &ClusterReport{Replicas: n, LeaseTTL: leaseTTL(cfg).String(), Engine: where}
		}
		env = append(env, cfg.GatewayEnv...)
		for r := range n {
			renv := env
			if n > 1 {
				renv = append(slices.Clip(env), "GATEWAY_NODE_ID="+replicaName(r))
			}
			g, err := startGateway(ctx, cfg.GatewayBin, sm.url, renv, cfg.ProfileDir != "" && r == 0, cfg.GatewayStderr)
			if err != nil {
				return nil, err
			}
			gws = append(gws, g)
			defer func() {
				if killed(g) {
					return
				}
				if serr := g.stop(30 * time.Second); serr != nil && err == nil {
					logf("gateway stop: %v", serr)
				}
			}()
			spec.URLs = append(spec.URLs, g.base)
			mids = append(mids, g.pid())
		}
		gw = gws[0]
		spec.URL, spec.Proto, spec.H2Conns = gw.base, cfg.Proto, cfg.H2Conns
		if n == 1 {
			spec.URLs = nil
		}
	case ModeRelay:
		// The relay holds two sockets per session.
		if need := uint64(2*k + 256); nofile > 0 && need > nofile {
			return nil, fmt.Errorf("the relay's %d sockets need %d files, the limit is %d", 2*k, need, nofile)
		}
		mr.Proto = "websocket"
		target := strings.TrimPrefix(sm.url, "ws://")
		target = target[:strings.IndexByte(target, '/')]
		rl, err := startRelay(ctx, cfg.Relay, target, cfg.DirectReadLoops, cfg.GatewayStderr)
		if err != nil {
			return nil, err
		}
		defer rl.stop(10 * time.Second)
		spec.Mode = ModeDirect
		spec.URL = "ws://" + rl.addr + strings.TrimPrefix(sm.url, "ws://"+target)
		mids = []int{rl.pid()}
	default:
		mr.Proto = "websocket"
	}
	mr.PushReadBy, mr.CallsMadeBy = clientsOf(mode, mr.Proto)
	// The direct clients' sockets and the simulator's ends of them share
	// this process's file limit unless the clients run in the worker.
	need := uint64(2*k + 256)
	if len(mids) > 0 {
		rss = startSampler(mids...)
		defer rss.stop()
	}
	var engRSS *sampler
	if eng != nil && eng.pid != 0 {
		engRSS = startSampler(eng.pid)
		defer engRSS.stop()
	}
	if cfg.Worker != nil && (!cfg.ClientsInProcess || (spec.Mode == ModeDirect && need > nofile)) {
		remote, err = startRemoteFleet(cfg.Worker, spec, cfg.GatewayStderr)
		if err != nil {
			return nil, err
		}
		fl = remote
		mr.ClientProcess = "worker"
	} else {
		if spec.Mode == ModeDirect && nofile > 0 && need > nofile {
			return nil, fmt.Errorf("%d direct sockets and their simulator ends need %d files, the limit is %d: run the direct clients in a worker process", k, need, nofile)
		}
		if fl, err = newFleet(spec); err != nil {
			return nil, err
		}
		mr.ClientProcess = "in-process"
	}
	if spec.Mode == ModeDirect {
		mr.ClientProcess += ", " + readMode(cfg.DirectReadLoops)
	}
	defer func() {
		if cerr := fl.Close(); cerr != nil {
			logf("close: %v", cerr)
		}
	}()

	// Idle: the gateway (or relay) up, no session yet.
	if len(mids) > 0 {
		sleepCtx(ctx, min(cfg.Settle, time.Second))
		if s, err := readProcs(mids); err == nil {
			mr.Gateway = &GatewayUsage{IdleRSSMiB: mib(s.rss)}
		}
		if gw != nil && mr.Gateway != nil {
			mr.Gateway.IdleRuntime, _ = scrapeRuntimeAll(ctx, gws)
		}
		if mr.Cluster != nil && engRSS != nil {
			p, _ := readProc(eng.pid)
			mr.Cluster.EngineRSS.IdleMiB = mib(p.rss)
		}
	}

	// Ramp.
	logf("opening %d sessions at %.0f/s", k, cfg.Ramp)
	t0 := time.Now()
	octx, ocancel := context.WithTimeout(ctx, time.Duration(float64(k)/cfg.Ramp*float64(time.Second))+time.Minute)
	chats, oerr := fl.Open(octx, k, cfg.Ramp)
	ocancel()
	mr.OpenSeconds = time.Since(t0).Seconds()
	var live []int
	for i, ch := range chats {
		if ch != "" {
			live = append(live, i)
		}
	}
	mr.Opened = len(live)
	logf("%d/%d sessions open in %.1fs", len(live), k, mr.OpenSeconds)
	if oerr != nil {
		logf("open: %v", oerr)
	}
	agent := sm.s.Agent("lg-agent", "Load Agent")
	var joinErrs errorCounts
	for _, i := range live {
		if err := agent.Join(chats[i]); err != nil {
			joinErrs.inc("agent join: " + err.Error())
		}
	}
	sleepCtx(ctx, cfg.Settle)
	if len(mids) > 0 && mr.Gateway != nil {
		if s, err := readProcs(mids); err == nil {
			mr.Gateway.OpenRSSMiB = mib(s.rss)
			if mr.Opened > 0 {
				mr.Gateway.PerSessionKiB = (mr.Gateway.OpenRSSMiB - mr.Gateway.IdleRSSMiB) * 1024 / float64(mr.Opened)
			}
		}
	}
	var clusterOpen []map[string]float64 // each replica's metrics with the sessions open
	if mr.Cluster != nil {
		clusterOpen = openCluster(ctx, mr.Cluster, gws, prefix, live)
		if engRSS != nil {
			p, _ := readProc(eng.pid)
			mr.Cluster.EngineRSS.OpenMiB = mib(p.rss)
		}
	}
	if gw != nil && mr.Gateway != nil {
		mr.Gateway.OpenRuntime, _ = scrapeRuntimeAll(ctx, gws)
		if n := float64(mr.Opened); n > 0 {
			a, b := mr.Gateway.IdleRuntime, mr.Gateway.OpenRuntime
			mr.Gateway.PerSessionHeapKiB = (b.HeapInuse - a.HeapInuse) / 1024 / n
			mr.Gateway.PerSessionStackKiB = (b.StackInuse - a.StackInuse) / 1024 / n
			mr.Gateway.GoroutinesPerSession = (b.Goroutines - a.Goroutines) / n
		}
		if cfg.ProfileDir != "" {
			p := filepath.Join(cfg.ProfileDir, fmt.Sprintf("heap-%s-%d.pprof", cfg.Proto, k))
			if err := gw.fetchProfile(ctx, "heap", "?gc=1", p); err != nil {
				logf("heap profile: %v", err)
			}
		}
	}

	// cpuProfile saves a CPU profile of the gateway, taken while the
	// returned wait func has not been called.
	cpuProfile := func(name string, d time.Duration) (wait func()) {
		if gw == nil || cfg.ProfileDir == "" {
			return func() {}
		}
		secs := max(1, min(int(d/time.Second)-1, 30))
		p := filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%s-%d.pprof", name, cfg.Proto, k))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := gw.fetchProfile(ctx, "profile", "?seconds="+strconv.Itoa(secs), p); err != nil {
				logf("cpu profile: %v", err)
			}
		}()
		return func() { <-done }
	}

	// The measured phase: agents push at R, customers call at S.
	sent := make([]int64, k)
	var agentErrs errorCounts
	if len(live) > 0 && ctx.Err() == nil {
		logf("measured phase: %.0f agent msgs/s, %.0f customer msgs/s for %v", cfg.R, cfg.S, cfg.Duration)
		var selfA, wA, engA procSample
		var gwA procSet
		if len(mids) > 0 {
			gwA = readSet(mids)
			rss.mark()
		}
		if engRSS != nil {
			engA, _ = readProc(eng.pid)
			engRSS.mark()
		}
		if remote != nil {
			wA, _ = readProc(remote.pid())
		}
		selfA, _ = readProc(os.Getpid())
		machA, _ := readMachine()
		pids := append([]int{os.Getpid()}, mids...)
		if engRSS != nil {
			pids = append(pids, eng.pid)
		}
		if remote != nil {
			pids = append(pids, remote.pid())
		}
		others := startOtherLoad(pids...)
		profiled := cpuProfile("cpu", cfg.Duration)
		var agentTotal int64
		var wg sync.WaitGroup
		wg.Add(1)
		start := time.Now()
		var kill *killer
		if cfg.KillOwnerAt > 0 && mr.Cluster != nil {
			kill = &killer{at: cfg.KillOwnerAt, gws: gws, prefix: prefix, chats: chats, live: live, cfg: cfg, mr: mr, logf: logf}
		}
		go func() {
			defer wg.Done()
			agentTotal = agentLoad(ctx, agent, chats, live, cfg.R, cfg.Duration, sent, &agentErrs, kill)
		}()
		n, lerr := fl.Load(ctx, cfg.S, cfg.Duration)
		wg.Wait()
		elapsed := time.Since(start).Seconds()
		if lerr != nil {
			logf("load: %v", lerr)
		}
		if mr.Cluster != nil {
			mr.Cluster.Kill.endPhase()
		}
		mr.CustomerSent = n
		mr.CustomerRate = float64(n) / elapsed
		mr.AgentSent = agentTotal
		mr.AgentRate = float64(agentTotal) / elapsed
		if len(mids) > 0 && mr.Gateway != nil {
			gwB := readSet(mids)
			mr.Gateway.CPULoad = shareSet(gwA, gwB)
			mr.Gateway.PeakRSSMiB = mib(rss.peakSinceMark())
			if mr.Cluster != nil {
				for r, g := range gws {
					if a, ok := gwA[g.pid()]; ok {
						mr.Cluster.PerReplica[r].CPULoad = shareSet(procSet{g.pid(): a}, gwB)
					}
				}
			}
		}
		if engRSS != nil {
			engB, _ := readProc(eng.pid)
			mr.Cluster.EngineCPU = cpuShare(engA, engB)
			mr.Cluster.EngineRSS.PeakMiB = mib(engRSS.peakSinceMark())
		}
		selfB, _ := readProc(os.Getpid())
		mr.LoadgenCPU = cpuShare(selfA, selfB)
		if machB, err := readMachine(); err == nil {
			mr.MachineCPU, mr.StealCPU = machineShare(machA, machB)
		}
		mr.OtherCPUPeak = others.stop()
		if remote != nil {
			wB, _ := readProc(remote.pid())
			mr.WorkerCPU = cpuShare(wA, wB)
		}
		profiled()
		if err := fl.Drain(ctx, sent, cfg.DrainTimeout); err != nil {
			logf("drain: %v", err)
		}
	}

	// Throughput: callers back to back.
	if cfg.Callers > 0 && len(live) >= cfg.Callers && ctx.Err() == nil {
		logf("throughput: %d callers for %v", cfg.Callers, cfg.CallersDuration)
		var gwA procSet
		if len(mids) > 0 {
			gwA = readSet(mids)
		}
		profiled := cpuProfile("cpu-throughput", cfg.CallersDuration)
		selfA, _ := readProc(os.Getpid())
		t, terr := fl.Throughput(ctx, cfg.Callers, cfg.CallersDuration)
		selfB, _ := readProc(os.Getpid())
		profiled()
		if terr != nil {
			logf("throughput: %v", terr)
		} else {
			mr.Throughput = &Throughput{
				Callers: cfg.Callers, Calls: t.Calls, Errors: t.Errors, Seconds: t.Seconds,
				CallsPerSec: float64(t.Calls) / t.Seconds, Latency: summarize(t.Lat),
				LoadgenCPU: cpuShare(selfA, selfB),
			}
			if len(mids) > 0 {
				mr.Throughput.GatewayCPU = shareSet(gwA, readSet(mids))
			}
			logf("throughput: %.0f calls/s, %d errors", mr.Throughput.CallsPerSec, t.Errors)
		}
	}

	// Everything the fleet measured.
	res, rerr := fl.Result(ctx)
	if rerr != nil {
		return nil, rerr
	}
	var recv, lost, dup int64
	for i, want := range sent {
		var got int64
		if i < len(res.Received) {
			got = res.Received[i]
		}
		recv += got
		switch {
		case got < want:
			lost += want - got
		case got > want:
			dup += got - want
		}
	}
	mr.AgentReceived, mr.Lost, mr.Duplicates = recv, lost, dup
	mr.Push = summarize(res.Push)
	mr.PushNetHTTP = summarize(res.PushNetHTTP)
	mr.Connections = res.Connections
	for name, v := range res.Calls {
		mr.Calls[name] = summarize(v)
	}
	mr.Errors = res.Errors
	if mr.Errors == nil {
		mr.Errors = map[string]int64{}
	}
	for _, e := range []*errorCounts{&agentErrs, &joinErrs} {
		for kind, v := range e.snapshot() {
			mr.Errors[kind] += v
		}
	}
	if lost > 0 {
		mr.Errors["push lost"] += lost
	}
	if dup > 0 {
		mr.Errors["push duplicated"] += dup
	}
	// A healthy simulator never drops a socket: a gateway session that had
	// to reconnect is an error, although its stream saw none (the session
	// restored what was missed).
	if mr.Cluster != nil {
		closeCluster(ctx, mr.Cluster, gws, clusterOpen, res, prefix)
	}
	if gw != nil && mr.Gateway != nil {
		if end, err := scrapeRuntimeAll(ctx, gws); err == nil {
			if n := int64(end.Reconnects - mr.Gateway.IdleRuntime.Reconnects); n > 0 {
				mr.Errors["gateway: upstream reconnects"] += n
			}
		}
	}
	if mr.AgentSent > 0 {
		logf("push p50 %.2f ms p99 %.2f ms; %d/%d received", mr.Push.P50, mr.Push.P99, recv, mr.AgentSent)
	}
	if ctx.Err() != nil {
		return mr, fmt.Errorf("run cut at its time bound: %w", ctx.Err())
	}
	return mr, nil
}

// agentLoad has one agent send rate messages per second for d, round-robin
// over the live sessions' chats; each text carries its send time. It counts
// what was sent to each session and returns the total.
//
// kill, when set, is run once its time has come, on this goroutine: the
// sessions it returns each get a takeover probe at once (probeText).
func agentLoad(ctx context.Context, agent *chatiosim.Agent, chats []string, live []int, rate float64, d time.Duration, sent []int64, errs *errorCounts, kill *killer) int64 {
	if rate <= 0 || len(live) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	p := newPacer(rate)
	var total int64
	for n := 0; ; n++ {
		if w := p.wait(n); w > 0 && !sleepCtx(ctx, w) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		if kill != nil && time.Since(p.start) >= kill.at {
			probes := kill.run(ctx)
			t0 := time.Now()
			for _, i := range probes {
				if _, err := agent.SendMessage(chats[i], probeText(time.Now())); err != nil {
					errs.inc("agent probe: " + err.Error())
					continue
				}
				sent[i]++
				total++
			}
			kill.mr.Cluster.Kill.ProbeSendMs = ms(int64(time.Since(t0)))
			kill = nil
		}
		i := live[n%len(live)]
		if _, err := agent.SendMessage(chats[i], agentText(time.Now())); err != nil {
			errs.inc("agent send: " + err.Error())
			continue
		}
		sent[i]++
		total++
	}
	return total
}

// sampler reads processes' RSS every 200 ms and keeps the peak of their
// sum.
type sampler struct {
	pids []int
	stop func()
	mu   sync.Mutex
	peak int64 // guarded by mu; since the last mark
}

func startSampler(pids ...int) *sampler {
	s := &sampler{pids: pids}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p, err := readProcs(pids); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, p.rss)
				s.mu.Unlock()
			}
		}
	}()
	s.stop = func() { cancel(); <-done }
	return s
}

func (s *sampler) mark() {
	p, _ := readProcs(s.pids)
	s.mu.Lock()
	s.peak = p.rss
	s.mu.Unlock()
}

func (s *sampler) peakSinceMark() int64 {
	p, _ := readProcs(s.pids)
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.peak, p.rss)
}

func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// machine describes where the run happened.
func machine(nofile uint64) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, NoFile: nofile}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemMiB = kb >> 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
