package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/freeport"
	"github.com/nats-io/nats-server/v2/server"
)

// A cluster run (Config.Replicas > 1) puts Replicas gateway processes in
// front of the simulator, on one nats-server with JetStream (a child
// process, ServeNATS, or a server in this process), each with
// GATEWAY_NATS_URL, the run's GATEWAY_CLUSTER_KEY and a GATEWAY_NODE_ID
// of its own. Session i is opened on the replica placement chooses as its
// owner (GET /v1/session there: nobody owns it yet, so that replica takes
// it), its stream on the replica placement chooses for the stream, and
// every other call goes to a random replica. The replica that answered
// and the owner tell whether a call ran on the owner or was forwarded to
// it; the gateway_sessions gauge of each replica checks the owner guess,
// and gateway_cluster_forwarded_calls_total the forwarded count.
//
// With KillOwnerAt the replica owning the most sessions is SIGKILLed that
// long into the measured phase, and the agent at once sends one takeover
// probe (probeText) into the chat of every session it owned or whose
// stream was on it. A session's takeover time is the time from the kill
// to its stream's receipt of that probe: a stream delivers its events in
// the log's order, so by then it has resumed (on another replica, with
// Last-Event-ID, when its own was the one killed) and received every event
// sent before the probe; the run's lost and duplicated counts check that
// it did so once each.

// placement chooses, for session i of a run with the given token prefix
// and n replicas, the replica that opens the session (its owner) and the
// one that serves its stream: both pseudo-random, independent, and the
// same in the load generator and its client worker.
func placement(prefix string, i, n int) (owner, stream int) {
	if n <= 1 {
		return 0, 0
	}
	h := fnv.New64a()
	_, _ = io.WriteString(h, prefix)
	_, _ = io.WriteString(h, strconv.Itoa(i))
	v := h.Sum64()
	v ^= v >> 29 // FNV's low bits vary little with the last digit
	v *= 0xbf58476d1ce4e5b9
	v ^= v >> 32
	return int(v % uint64(n)), int((v / uint64(n)) % uint64(n))
}

// engineProc is the nats-server of a cluster run.
type engineProc struct {
	url  string
	pid  int // 0: in this process
	stop func()
}

// startEngine runs nats-server with JetStream on 127.0.0.1: as a child
// process running argv (ServeNATS) when argv is set, else in this process.
func startEngine(argv []string, stderr io.Writer) (*engineProc, error) {
	if len(argv) == 0 {
		dir, err := os.MkdirTemp("", "loadgen-nats-")
		if err != nil {
			return nil, err
		}
		s, url, err := runNATS(dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		return &engineProc{url: url, stop: func() {
			s.Shutdown()
			s.WaitForShutdown()
			_ = os.RemoveAll(dir)
		}}, nil
	}
	cmd, in, out, err := startChild(argv, stderr)
	if err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = in.Close() // ServeNATS shuts down at the end of its input
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	line, err := readLine(out, 30*time.Second)
	if err != nil || !strings.HasPrefix(line, "nats://") {
		stop()
		return nil, fmt.Errorf("nats-server child: no URL (%q, %v)", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return &engineProc{url: line, pid: cmd.Process.Pid, stop: stop}, nil
}

// readLine reads one line from r within timeout.
func readLine(r io.Reader, timeout time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{strings.TrimSpace(s), err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.s, res.err
	case <-t.C:
		return "", errors.New("timed out")
	}
}

// runNATS starts a nats-server with JetStream, its file store in dir, on a
// free port of 127.0.0.1.
func runNATS(dir string) (*server.Server, string, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, "", err
	}
	o := &server.Options{
		ServerName: "loadgen", Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, "", err
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return nil, "", errors.New("nats-server not ready in 20s")
	}
	return s, fmt.Sprintf("nats://127.0.0.1:%d", port), nil
}

// ServeNATS runs the nats-server of a cluster run as a child of the load
// generator (so that its memory and CPU are read apart): JetStream with a
// file store in a temporary directory, on 127.0.0.1; it writes its URL as
// one line to w and shuts down at the end of r (the parent closed it, or
// is gone).
func ServeNATS(r io.Reader, w io.Writer) error {
	dir, err := os.MkdirTemp("", "loadgen-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, url, err := runNATS(dir)
	if err != nil {
		return err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if _, err := fmt.Fprintln(w, url); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r)
	return err
}

// clusterKey is a fresh GATEWAY_CLUSTER_KEY for a run's replicas.
func clusterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// replicaName is GATEWAY_NODE_ID of replica n.
func replicaName(n int) string { return "lg-gw" + strconv.Itoa(n+1) }

// scrapeSums reads base's /metrics and returns every metric's value, the
// series of one name (its labels) added together.
func scrapeSums(ctx context.Context, base string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	return parseMetricSums(string(b)), nil
}

// parseMetricSums parses the Prometheus text format as scrapeSums does.
func parseMetricSums(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		out[strings.TrimSpace(name)] += v
	}
	return out
}

// The cluster metrics a run reads from each replica.
const (
	mSessions   = "gateway_sessions"
	mForwarded  = "gateway_cluster_forwarded_calls_total"
	mForwardSum = "gateway_cluster_forward_duration_seconds_sum"
	mForwardN   = "gateway_cluster_forward_duration_seconds_count"
	mTakeovers  = "gateway_cluster_takeovers_total"
	mFenced     = "gateway_cluster_fenced_sessions_total"
)

// killOwner SIGKILLs the replica with the most sessions (gateway_sessions;
// the owner guess when the metrics cannot be read) and returns it, with
// the time of the kill.
func killOwner(ctx context.Context, gws []*gatewayProc, guess []int) (int, float64, time.Time) {
	victim, most := -1, -1.0
	for n, g := range gws {
		v := float64(guess[n])
		if m, err := scrapeSums(ctx, g.base); err == nil {
			v = m[mSessions]
		}
		if v > most {
			victim, most = n, v
		}
	}
	_ = gws[victim].cmd.Process.Signal(syscall.SIGKILL)
	return victim, most, time.Now()
}

// Takeover cases: how a session stood to the killed replica.
const (
	caseOwnerStreamElsewhere = "owner killed, stream on a survivor"
	caseOwnerAndStream       = "owner killed, stream on it too"
	caseStreamOnly           = "stream on the killed replica, owner survived"
)

// takeoverCase says how session i stood to the killed replica ("" when it
// was not touched).
func takeoverCase(prefix string, i, replicas, killed int) string {
	owner, stream := placement(prefix, i, replicas)
	switch {
	case owner == killed && stream == killed:
		return caseOwnerAndStream
	case owner == killed:
		return caseOwnerStreamElsewhere
	case stream == killed:
		return caseStreamOnly
	}
	return ""
}

// ClusterReport is what a cluster run measured beyond the table.
type ClusterReport struct {
	Replicas  int    `json:"replicas"`
	LeaseTTL  string `json:"lease_ttl"`
	Engine    string `json:"engine"` // where nats-server ran
	EngineRSS struct {
		IdleMiB, OpenMiB, PeakMiB float64
	} `json:"engine_rss"`
	EngineCPU float64 `json:"engine_cpu"` // cores, measured phase

	PerReplica []ReplicaReport `json:"per_replica"`

	// Calls of the measured phase as the clients counted them, and as
	// the replicas did (sums of the deltas over the measured phase and
	// the throughput phase; a killed replica's counts are missing).
	ForwardedMetric    float64          `json:"forwarded_metric"`
	ForwardMeanMs      float64          `json:"forward_mean_ms"` // gateway_cluster_forward_duration_seconds: sum/count
	TakeoversMetric    float64          `json:"takeovers_metric"`
	FencedMetric       float64          `json:"fenced_metric"`
	Resumes            int64            `json:"resumes"`
	ResumeFailures     map[string]int64 `json:"resume_failures,omitempty"` // failed resume attempts (tried again), by kind
	RetriedCalls       int64            `json:"retried_calls"`
	OwnerGuessMismatch int              `json:"owner_guess_mismatch"` // Σ |guessed − gateway_sessions| over replicas, after the ramp

	Kill *KillReport `json:"kill,omitempty"`
}

// ReplicaReport is one replica of a cluster run.
type ReplicaReport struct {
	Name          string  `json:"name"`
	OwnerGuess    int     `json:"owner_guess"`    // sessions opened on it
	StreamsGuess  int     `json:"streams_guess"`  // streams opened on it
	SessionsGauge float64 `json:"sessions_gauge"` // its gateway_sessions after the ramp
	OpenRSSMiB    float64 `json:"open_rss_mib"`
	CPULoad       float64 `json:"cpu_cores_loaded"`
	Forwarded     float64 `json:"forwarded"` // its gateway_cluster_forwarded_calls_total, delta
	Killed        bool    `json:"killed,omitempty"`
}

// KillReport is the SIGKILL of an owner and the takeover of its sessions.
type KillReport struct {
	Replica      string             `json:"replica"`
	AfterSeconds float64            `json:"after_s"`               // into the measured phase
	Owned        float64            `json:"owned_at_kill"`         // its gateway_sessions just before
	Probed       int                `json:"probed"`                // sessions it owned or streamed: each got a probe
	ProbeSendMs  float64            `json:"probe_send_ms"`         // time the agent took to send every probe
	Resumed      int                `json:"resumed"`               // probes received
	NotResumed   map[string]int     `json:"not_resumed,omitempty"` // probes not received, by case
	Takeover     Latency            `json:"takeover"`              // kill → probe received, every probed session
	ByCase       map[string]Latency `json:"by_case"`
	TargetMs     float64            `json:"target_ms"` // lease TTL + 3 s
	WithinTarget int                `json:"within_target"`
	DownSeenMs   float64            `json:"down_seen_ms,omitempty"` // kill → a client first refused by it
	// From the kill to the end of the measured phase: the surviving
	// replicas' CPU, and the whole machine's (cores).
	SurvivorsCPU float64 `json:"survivors_cpu"`
	MachineCPU   float64 `json:"machine_cpu_after_kill"`
	AfterKillS   float64 `json:"after_kill_s"`

	killAt time.Time
	victim int   // index of the killed replica
	probed []int // the sessions probed

	survivorsA procSet // the survivors just after the kill
	machineA   machineSample
}

// endPhase records the CPU from the kill to now (the measured phase's end).
func (k *KillReport) endPhase() {
	if k == nil || k.survivorsA == nil {
		return
	}
	var pids []int
	for pid := range k.survivorsA {
		pids = append(pids, pid)
	}
	k.SurvivorsCPU = shareSet(k.survivorsA, readSet(pids))
	if m, err := readMachine(); err == nil {
		k.MachineCPU, _ = machineShare(k.machineA, m)
		k.AfterKillS = m.at.Sub(k.machineA.at).Seconds()
	}
}

// writeCluster writes the cluster sections of a report.
func (m *ModeReport) writeCluster(w io.Writer, md bool) {
	c := m.Cluster
	if c == nil {
		return
	}
	h := func(s string) {
		if md {
			fmt.Fprintf(w, "\n**%s**\n\n", s)
		} else {
			fmt.Fprintf(w, "\n%s\n", s)
		}
	}
	h(fmt.Sprintf("Cluster: %d replicas on one nats-server (%s), lease TTL %s", c.Replicas, c.Engine, c.LeaseTTL))
	table := func(head []string, rows [][]string) {
		if md {
			fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)))
			for _, r := range rows {
				fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			}
			return
		}
		fmt.Fprintln(w, strings.Join(head, "\t"))
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
	}
	var rows [][]string
	for _, r := range c.PerReplica {
		name := r.Name
		if r.Killed {
			name += " (killed)"
		}
		rows = append(rows, []string{name, strconv.Itoa(r.OwnerGuess), num(r.SessionsGauge), strconv.Itoa(r.StreamsGuess),
			num(r.OpenRSSMiB), num(r.CPULoad), num(r.Forwarded)})
	}
	rows = append(rows, []string{"nats-server", "", "", "", num(c.EngineRSS.OpenMiB), num(c.EngineCPU), ""})
	table([]string{"process", "sessions opened on it", "gateway_sessions", "streams on it", "RSS, sessions open (MiB)", "CPU (cores)", "forwarded calls (metric)"}, rows)

	h("REST calls by where they ran (client-side latency, ms)")
	rows = rows[:0]
	for _, name := range sortedKeys(m.Calls) {
		if !strings.Contains(name, "@") {
			continue
		}
		l := m.Calls[name]
		rows = append(rows, []string{name, strconv.Itoa(l.Count), num(l.P50), num(l.P90), num(l.P99), num(l.Max)})
	}
	table([]string{"call", "count", "p50", "p90", "p99", "max"}, rows)
	fmt.Fprintf(w, "\nforwarded calls counted by the replicas: %.0f (mean %.3f ms on the forwarding side); takeovers %.0f; fenced sessions %.0f; owner guess off by %d sessions; streams resumed %d; calls retried on another replica %d\n",
		c.ForwardedMetric, c.ForwardMeanMs, c.TakeoversMetric, c.FencedMetric, c.OwnerGuessMismatch, c.Resumes, c.RetriedCalls)
	if len(c.ResumeFailures) > 0 {
		fmt.Fprintf(w, "\nresume attempts that failed (the stream tried again):\n")
		for _, k := range sortedKeys(c.ResumeFailures) {
			fmt.Fprintf(w, "- %s: %d\n", k, c.ResumeFailures[k])
		}
	}

	k := c.Kill
	if k == nil {
		return
	}
	h(fmt.Sprintf("Takeover: SIGKILL of %s (owner of %.0f sessions) %.1f s into the measured phase", k.Replica, k.Owned, k.AfterSeconds))
	fmt.Fprintf(w, "probed sessions %d (probes sent in %.0f ms), resumed %d, within lease TTL + 3 s (%.0f ms): %d\n",
		k.Probed, k.ProbeSendMs, k.Resumed, k.TargetMs, k.WithinTarget)
	if k.AfterKillS > 0 {
		fmt.Fprintf(w, "from the kill to the end of the measured phase (%.0f s): the surviving replicas used %.2f cores, the whole machine %.2f\n",
			k.AfterKillS, k.SurvivorsCPU, k.MachineCPU)
	}
	if md {
		fmt.Fprintln(w)
	}
	rows = rows[:0]
	lrow := func(name string, l Latency) []string {
		return []string{name, strconv.Itoa(l.Count), num(l.P50), num(l.P90), num(l.P99), num(l.Max)}
	}
	rows = append(rows, lrow("every probed session", k.Takeover))
	for _, name := range sortedKeys(k.ByCase) {
		rows = append(rows, lrow(name, k.ByCase[name]))
	}
	table([]string{"kill → probe received (ms)", "count", "p50", "p90", "p99", "max"}, rows)
	if len(k.NotResumed) > 0 {
		fmt.Fprintf(w, "\nprobes never received (the stream did not resume before the run ended), by case:\n")
		for _, name := range sortedKeys(k.NotResumed) {
			fmt.Fprintf(w, "- %s: %d\n", name, k.NotResumed[name])
		}
	}
}

// leaseTTL is the replicas' lease TTL: the configured one, else the
// gateway's default (GATEWAY_LEASE_TTL).
func leaseTTL(cfg Config) time.Duration {
	if cfg.LeaseTTL > 0 {
		return cfg.LeaseTTL
	}
	return 10 * time.Second
}

// killed reports whether the run SIGKILLed g (it is not stopped again).
func killed(g *gatewayProc) bool { return g.killed.Load() }

// scrapeRuntimeAll is scrapeRuntime added up over the replicas that were
// not killed.
func scrapeRuntimeAll(ctx context.Context, gws []*gatewayProc) (runtimeStats, error) {
	var sum runtimeStats
	var errs []error
	ok := false
	for _, g := range gws {
		if killed(g) {
			continue
		}
		rs, err := g.scrapeRuntime(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok = true
		sum.Goroutines += rs.Goroutines
		sum.HeapInuse += rs.HeapInuse
		sum.StackInuse += rs.StackInuse
		sum.HeapAlloc += rs.HeapAlloc
		sum.Reconnects += rs.Reconnects
	}
	if !ok {
		return sum, errors.Join(append(errs, errors.New("no replica answered"))...)
	}
	return sum, nil
}

// openCluster fills c's per-replica rows once the sessions are open: the
// sessions and streams opened on each replica, its gateway_sessions, its
// RSS; it returns each replica's metrics (nil where unread) for
// closeCluster's deltas.
func openCluster(ctx context.Context, c *ClusterReport, gws []*gatewayProc, prefix string, live []int) []map[string]float64 {
	n := len(gws)
	owners, streams := make([]int, n), make([]int, n)
	for _, i := range live {
		o, s := placement(prefix, i, n)
		owners[o]++
		streams[s]++
	}
	out := make([]map[string]float64, n)
	c.PerReplica = make([]ReplicaReport, n)
	c.OwnerGuessMismatch = 0
	for r, g := range gws {
		rr := ReplicaReport{Name: replicaName(r), OwnerGuess: owners[r], StreamsGuess: streams[r]}
		if m, err := scrapeSums(ctx, g.base); err == nil {
			out[r] = m
			rr.SessionsGauge = m[mSessions]
			d := int(rr.SessionsGauge) - owners[r]
			c.OwnerGuessMismatch += max(d, -d)
		}
		if p, err := readProc(g.pid()); err == nil {
			rr.OpenRSSMiB = mib(p.rss)
		}
		c.PerReplica[r] = rr
	}
	return out
}

// closeCluster adds the replicas' forwarded-call, takeover and fencing
// counts since openCluster, the clients' resume and retry counts, and the
// takeover times of a kill.
func closeCluster(ctx context.Context, c *ClusterReport, gws []*gatewayProc, open []map[string]float64, res fleetResult, prefix string) {
	var fwdSum, fwdN float64
	for r, g := range gws {
		if killed(g) {
			c.PerReplica[r].Killed = true
			continue
		}
		end, err := scrapeSums(ctx, g.base)
		if err != nil || open[r] == nil {
			continue
		}
		d := func(name string) float64 { return end[name] - open[r][name] }
		c.PerReplica[r].Forwarded = d(mForwarded)
		c.ForwardedMetric += d(mForwarded)
		c.TakeoversMetric += d(mTakeovers)
		c.FencedMetric += d(mFenced)
		fwdSum += d(mForwardSum)
		fwdN += d(mForwardN)
	}
	if fwdN > 0 {
		c.ForwardMeanMs = fwdSum / fwdN * 1000
	}
	c.Resumes, c.RetriedCalls, c.ResumeFailures = res.Resumes, res.Retried, res.ResumeFailures
	k := c.Kill
	if k == nil {
		return
	}
	if res.DownAt > 0 {
		k.DownSeenMs = ms(res.DownAt - k.killAt.UnixNano())
	}
	var all []int64
	byCase := map[string][]int64{}
	for _, i := range k.probed {
		if i >= len(res.ProbeAt) || res.ProbeAt[i] == 0 {
			if k.NotResumed == nil {
				k.NotResumed = map[string]int{}
			}
			k.NotResumed[takeoverCase(prefix, i, len(gws), k.victim)]++
			continue
		}
		t := res.ProbeAt[i] - k.killAt.UnixNano()
		all = append(all, t)
		name := takeoverCase(prefix, i, len(gws), k.victim)
		byCase[name] = append(byCase[name], t)
		if ms(t) <= k.TargetMs {
			k.WithinTarget++
		}
	}
	k.Resumed = len(all)
	k.Takeover = summarize(all)
	k.ByCase = map[string]Latency{}
	for name, v := range byCase {
		k.ByCase[name] = summarize(v)
	}
}

// killer SIGKILLs the owner of the most sessions during the measured
// phase (Config.KillOwnerAt) and chooses the sessions to probe.
type killer struct {
	at     time.Duration // into the measured phase
	gws    []*gatewayProc
	prefix string
	chats  []string
	live   []int
	cfg    Config
	mr     *ModeReport
	logf   func(format string, args ...any)
}

// run kills the replica and returns the live sessions it owned or whose
// stream it served; it records the kill in the report.
func (kl *killer) run(ctx context.Context) []int {
	guess := make([]int, len(kl.gws))
	for n, r := range kl.mr.Cluster.PerReplica {
		guess[n] = r.OwnerGuess
	}
	victim, owned, at := killOwner(ctx, kl.gws, guess)
	kl.gws[victim].killed.Store(true)
	var probed []int
	for _, i := range kl.live {
		if takeoverCase(kl.prefix, i, len(kl.gws), victim) != "" {
			probed = append(probed, i)
		}
	}
	var survivors []int
	for n, g := range kl.gws {
		if n != victim {
			survivors = append(survivors, g.pid())
		}
	}
	machineA, _ := readMachine()
	kl.mr.Cluster.Kill = &KillReport{
		Replica: replicaName(victim), AfterSeconds: kl.at.Seconds(), Owned: owned, Probed: len(probed),
		TargetMs: float64((leaseTTL(kl.cfg) + 3*time.Second).Milliseconds()),
		killAt:   at, victim: victim, probed: probed,
		survivorsA: readSet(survivors), machineA: machineA,
	}
	kl.logf("SIGKILL %s (gateway_sessions %.0f); probing %d sessions", replicaName(victim), owned, len(probed))
	return probed
}
