package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a whole run.
type Report struct {
	Started time.Time     `json:"started"`
	Machine Machine       `json:"machine"`
	Config  ReportConfig  `json:"config"`
	Modes   []*ModeReport `json:"modes"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu"`
	MemMiB    int64  `json:"mem_mib"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	NoFile    uint64 `json:"nofile"`
}

// ReportConfig is the workload of the run.
type ReportConfig struct {
	K               int     `json:"k"`
	Ramp            float64 `json:"ramp_per_s"`
	R               float64 `json:"agent_msgs_per_s"`
	S               float64 `json:"customer_msgs_per_s"`
	Duration        string  `json:"duration"`
	Proto           string  `json:"proto"`
	H2Conns         int     `json:"h2_conns"`
	Callers         int     `json:"callers"`
	CallersDuration string  `json:"callers_duration"`
	Replicas        int     `json:"replicas,omitempty"`
	KillOwnerAt     string  `json:"kill_owner_at,omitempty"`
}

func reportConfig(c Config) ReportConfig {
	rc := ReportConfig{K: c.K, Ramp: c.Ramp, R: c.R, S: c.S, Duration: c.Duration.String(), Proto: c.Proto,
		H2Conns: c.H2Conns, Callers: c.Callers, CallersDuration: c.CallersDuration.String()}
	if c.Replicas > 1 {
		rc.Replicas = c.Replicas
		if c.KillOwnerAt > 0 {
			rc.KillOwnerAt = c.KillOwnerAt.String()
		}
	}
	return rc
}

// ModeReport is what one mode measured.
type ModeReport struct {
	Mode          string             `json:"mode"`
	Proto         string             `json:"proto"`
	ClientProcess string             `json:"client_process,omitempty"` // "in-process" or "worker"; direct: and how its sockets are read
	Sessions      int                `json:"sessions"`
	Opened        int                `json:"opened"`
	OpenSeconds   float64            `json:"open_s"`
	Connections   int64              `json:"connections,omitempty"` // gateway: TCP connections the clients opened
	AgentSent     int64              `json:"agent_sent"`
	AgentReceived int64              `json:"agent_received"`
	Lost          int64              `json:"lost"`
	Duplicates    int64              `json:"duplicates"`
	AgentRate     float64            `json:"agent_rate"`
	CustomerSent  int64              `json:"customer_sent"`
	CustomerRate  float64            `json:"customer_rate"`
	PushReadBy    string             `json:"push_read_by"`            // what read the events of Push (see clientsOf)
	CallsMadeBy   string             `json:"calls_made_by"`           // what made the calls of Calls and Throughput but the "/raw" ones (see clientsOf)
	Push          Latency            `json:"push"`                    // read by PushReadBy (fleetResult.Push)
	PushNetHTTP   Latency            `json:"push_net_http,omitempty"` // gateway over h2c: the streams read through net/http's client
	Calls         map[string]Latency `json:"calls"`
	Errors        map[string]int64   `json:"errors"`
	Gateway       *GatewayUsage      `json:"gateway,omitempty"`
	Throughput    *Throughput        `json:"throughput,omitempty"`
	LoadgenCPU    float64            `json:"loadgen_cpu"`          // cores used by this process (simulator, agent, clients) in the measured phase
	WorkerCPU     float64            `json:"worker_cpu,omitempty"` // cores used by the client worker in the measured phase
	MachineCPU    float64            `json:"machine_cpu"`          // cores used by every process of the machine in the measured phase
	StealCPU      float64            `json:"steal_cpu"`            // cores taken by the hypervisor in the measured phase
	OtherCPUPeak  float64            `json:"other_cpu_peak"`       // most cores other processes used in any one second of the measured phase
	Cluster       *ClusterReport     `json:"cluster,omitempty"`    // gateway mode with several replicas
}

// clientsOf names the clients a mode's figures were measured with: what
// read the events of the push row (the streams read through net/http's
// client beside h2Reader's have a row of their own), and what made the
// calls (sendMessage, the HTTP floor, startChat, open, the throughput
// phase), but for the "/raw" rows, which rawClient made: every other call
// of the measured phase, over HTTP/1.1 whatever the proto.
func clientsOf(mode, proto string) (pushReadBy, callsMadeBy string) {
	switch {
	case mode == ModeGateway && proto == ProtoH2:
		return "h2Reader (the even conns)", "net/http's client, h2c"
	case mode == ModeGateway:
		return "net/http's client", "net/http's client, HTTP/1.1"
	default:
		return "the client's read loop", "the client's websocket actions"
	}
}

// TotalErrors is the number of errors of every kind.
func (m *ModeReport) TotalErrors() int64 { return totalErrors(m.Errors) }

// Call returns the latency of the call named op ("open", "startChat",
// "sendMessage"), whatever the mode calls it.
func (m *ModeReport) Call(op string) (string, Latency, bool) {
	for name, l := range m.Calls {
		if strings.HasPrefix(name, op+":") {
			return name, l, true
		}
	}
	return "", Latency{}, false
}

// GatewayUsage is the gateway process's memory and CPU.
type GatewayUsage struct {
	IdleRSSMiB    float64 `json:"idle_rss_mib"`     // started, no session
	OpenRSSMiB    float64 `json:"open_rss_mib"`     // every session open with its stream, after the settle pause
	PeakRSSMiB    float64 `json:"peak_rss_mib"`     // highest during the measured phase
	PerSessionKiB float64 `json:"per_session_kib"`  // (open − idle) / sessions open
	CPULoad       float64 `json:"cpu_cores_loaded"` // cores used during the measured phase

	// From the gateway's /metrics (Go runtime), idle and with the sessions open.
	IdleRuntime          runtimeStats `json:"idle_runtime"`
	OpenRuntime          runtimeStats `json:"open_runtime"`
	PerSessionHeapKiB    float64      `json:"per_session_heap_kib"`  // heap in use, delta / sessions
	PerSessionStackKiB   float64      `json:"per_session_stack_kib"` // goroutine stacks, delta / sessions
	GoroutinesPerSession float64      `json:"goroutines_per_session"`
}

// Throughput is the result of the throughput phase.
type Throughput struct {
	Callers     int     `json:"callers"`
	Calls       int64   `json:"calls"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	CallsPerSec float64 `json:"calls_per_s"`
	Latency     Latency `json:"latency"`
	GatewayCPU  float64 `json:"gateway_cpu,omitempty"`
	LoadgenCPU  float64 `json:"loadgen_cpu"`
}

// JSON writes the report as indented JSON.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// mode returns the report of mode (nil when it did not run).
func (r *Report) mode(mode string) *ModeReport {
	for _, m := range r.Modes {
		if m.Mode == mode {
			return m
		}
	}
	return nil
}

// row is one line of the side-by-side table.
type row struct {
	name       string
	gw, direct string
	ratio      string
}

// quantile names one figure of a Latency.
type quantile struct {
	n string
	f func(Latency) float64
}

var (
	q50  = quantile{"p50", func(l Latency) float64 { return l.P50 }}
	q90  = quantile{"p90", func(l Latency) float64 { return l.P90 }}
	q99  = quantile{"p99", func(l Latency) float64 { return l.P99 }}
	q999 = quantile{"p99.9", func(l Latency) float64 { return l.P999 }}
	qmax = quantile{"max", func(l Latency) float64 { return l.Max }}
)

// middle is the mode of the first column, the one with a process between
// the customers and the simulator: the gateway's, else the relay's (nil
// when neither ran), and its name.
func (r *Report) middle() (*ModeReport, string) {
	if m := r.mode(ModeGateway); m != nil {
		return m, "gateway"
	}
	if m := r.mode(ModeRelay); m != nil {
		return m, "relay"
	}
	return nil, "gateway"
}

// rows builds the gateway-vs-direct (or relay-vs-direct) table.
func (r *Report) rows() []row {
	g, mid := r.middle()
	d := r.mode(ModeDirect)
	var rows []row
	add := func(name string, f func(m *ModeReport) string) {
		rw := row{name: name, gw: "–", direct: "–"}
		if g != nil {
			rw.gw = f(g)
		}
		if d != nil {
			rw.direct = f(d)
		}
		rows = append(rows, rw)
	}
	addNum := func(name string, f func(m *ModeReport) (float64, bool)) {
		rw := row{name: name, gw: "–", direct: "–"}
		var gv, dv float64
		var gok, dok bool
		if g != nil {
			if gv, gok = f(g); gok {
				rw.gw = num(gv)
			}
		}
		if d != nil {
			if dv, dok = f(d); dok {
				rw.direct = num(dv)
			}
		}
		if gok && dok && dv > 0 {
			rw.ratio = fmt.Sprintf("%.2f×", gv/dv)
		}
		rows = append(rows, rw)
	}
	add("transport", func(m *ModeReport) string {
		switch {
		case m.Mode == ModeGateway && m.Proto == ProtoH2:
			return fmt.Sprintf("h2c, %d conns (%s)", m.Connections, m.ClientProcess)
		case m.Mode == ModeGateway:
			return fmt.Sprintf("HTTP/1.1, %d conns (%s)", m.Connections, m.ClientProcess)
		case m.Mode == ModeRelay:
			return "websocket through a byte relay process (" + m.ClientProcess + ")"
		default:
			return "websocket (" + m.ClientProcess + ")"
		}
	})
	add("push read by", func(m *ModeReport) string { return m.PushReadBy })
	add("calls made by (other than the minimal client's)", func(m *ModeReport) string { return m.CallsMadeBy })
	add("sessions open", func(m *ModeReport) string { return fmt.Sprintf("%d/%d", m.Opened, m.Sessions) })
	addNum("ramp time (s)", func(m *ModeReport) (float64, bool) { return m.OpenSeconds, true })
	add("agent msgs sent → received", func(m *ModeReport) string {
		return fmt.Sprintf("%d → %d (%.0f/s)", m.AgentSent, m.AgentReceived, m.AgentRate)
	})
	for _, q := range []quantile{q50, q90, q99, q999, qmax} {
		addNum("push latency "+q.n+" (ms)", func(m *ModeReport) (float64, bool) { return q.f(m.Push), m.Push.Count > 0 })
	}
	for _, q := range []quantile{q50, q99, qmax} {
		addNum("push latency, read by net/http's client "+q.n+" (ms)", func(m *ModeReport) (float64, bool) {
			return q.f(m.PushNetHTTP), m.PushNetHTTP.Count > 0
		})
	}
	add("customer msgs sent", func(m *ModeReport) string { return fmt.Sprintf("%d (%.0f/s)", m.CustomerSent, m.CustomerRate) })
	for _, op := range []struct{ key, name string }{
		{"sendMessage", "sendMessage"}, {"floor", "HTTP floor (GET /healthz)"},
		{"sendMessage/raw", "sendMessage, minimal HTTP/1.1 client"}, {"floor/raw", "HTTP floor, minimal HTTP/1.1 client"},
		{"startChat", "startChat"}, {"open", "open (stream to connected / dial+login)"},
	} {
		for _, q := range []quantile{q50, q99, qmax} {
			addNum(op.name+" "+q.n+" (ms)", func(m *ModeReport) (float64, bool) {
				_, l, ok := m.Call(op.key)
				return q.f(l), ok && l.Count > 0
			})
		}
	}
	add("errors", func(m *ModeReport) string { return fmt.Sprint(m.TotalErrors()) })
	addNum(mid+" RSS idle (MiB)", func(m *ModeReport) (float64, bool) {
		return gwf(m, func(u *GatewayUsage) float64 { return u.IdleRSSMiB })
	})
	addNum(mid+" RSS, sessions open (MiB)", func(m *ModeReport) (float64, bool) {
		return gwf(m, func(u *GatewayUsage) float64 { return u.OpenRSSMiB })
	})
	addNum(mid+" RSS peak under load (MiB)", func(m *ModeReport) (float64, bool) {
		return gwf(m, func(u *GatewayUsage) float64 { return u.PeakRSSMiB })
	})
	addNum(mid+" KiB per session", func(m *ModeReport) (float64, bool) {
		return gwf(m, func(u *GatewayUsage) float64 { return u.PerSessionKiB })
	})
	addNum("  of which Go heap in use (KiB)", func(m *ModeReport) (float64, bool) {
		return gwRuntime(m, func(u *GatewayUsage) float64 { return u.PerSessionHeapKiB })
	})
	addNum("  of which goroutine stacks (KiB)", func(m *ModeReport) (float64, bool) {
		return gwRuntime(m, func(u *GatewayUsage) float64 { return u.PerSessionStackKiB })
	})
	addNum(mid+" goroutines per session", func(m *ModeReport) (float64, bool) {
		return gwRuntime(m, func(u *GatewayUsage) float64 { return u.GoroutinesPerSession })
	})
	addNum(mid+" CPU under load (cores)", func(m *ModeReport) (float64, bool) { return gwf(m, func(u *GatewayUsage) float64 { return u.CPULoad }) })
	addNum("load generator CPU (cores)", func(m *ModeReport) (float64, bool) { return m.LoadgenCPU, true })
	addNum("client worker CPU (cores)", func(m *ModeReport) (float64, bool) { return m.WorkerCPU, m.WorkerCPU > 0 })
	addNum("whole machine CPU (cores)", func(m *ModeReport) (float64, bool) { return m.MachineCPU, m.MachineCPU > 0 })
	addNum("  of which other processes (cores)", func(m *ModeReport) (float64, bool) {
		own := m.LoadgenCPU + m.WorkerCPU
		if m.Gateway != nil {
			own += m.Gateway.CPULoad
		}
		if m.Cluster != nil {
			own += m.Cluster.EngineCPU // the nats-server child
		}
		return max(0, m.MachineCPU-own), m.MachineCPU > 0
	})
	addNum("  other processes, busiest second (cores)", func(m *ModeReport) (float64, bool) { return m.OtherCPUPeak, m.MachineCPU > 0 })
	addNum("throughput (calls/s)", func(m *ModeReport) (float64, bool) {
		if m.Throughput == nil {
			return 0, false
		}
		return m.Throughput.CallsPerSec, true
	})
	addNum("throughput p50 (ms)", func(m *ModeReport) (float64, bool) {
		if m.Throughput == nil {
			return 0, false
		}
		return m.Throughput.Latency.P50, true
	})
	addNum("throughput p99 (ms)", func(m *ModeReport) (float64, bool) {
		if m.Throughput == nil {
			return 0, false
		}
		return m.Throughput.Latency.P99, true
	})
	addNum("throughput "+mid+" CPU (cores)", func(m *ModeReport) (float64, bool) {
		if m.Throughput == nil || m == d {
			return 0, false
		}
		return m.Throughput.GatewayCPU, true
	})
	addNum("throughput load generator CPU (cores)", func(m *ModeReport) (float64, bool) {
		if m.Throughput == nil {
			return 0, false
		}
		return m.Throughput.LoadgenCPU, true
	})
	return rows
}

func gwf(m *ModeReport, f func(*GatewayUsage) float64) (float64, bool) {
	if m.Gateway == nil {
		return 0, false
	}
	return f(m.Gateway), true
}

// gwRuntime is gwf for what only the gateway's /metrics tell.
func gwRuntime(m *ModeReport, f func(*GatewayUsage) float64) (float64, bool) {
	if m.Mode != ModeGateway {
		return 0, false
	}
	return gwf(m, f)
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (r *Report) title() string {
	c := r.Config
	t := fmt.Sprintf("K=%d sessions (ramp %.0f/s), agents %.0f msgs/s, customers %.0f msgs/s, %s measured",
		c.K, c.Ramp, c.R, c.S, c.Duration)
	if c.Callers > 0 {
		t += fmt.Sprintf(", throughput %d callers × %s", c.Callers, c.CallersDuration)
	}
	if c.Replicas > 1 {
		t += fmt.Sprintf(", %d gateway replicas on one nats-server", c.Replicas)
		if c.KillOwnerAt != "" {
			t += ", the owner of the most sessions SIGKILLed " + c.KillOwnerAt + " into the measured phase"
		}
	}
	return t
}

// Text writes the side-by-side table for a terminal, then the errors.
func (r *Report) Text(w io.Writer) error {
	fmt.Fprintf(w, "\n%s\nmachine: %d× %s, %d MiB, %s, %s\n\n", r.title(), r.Machine.CPUs, r.Machine.CPU,
		r.Machine.MemMiB, r.Machine.GoVersion, r.Machine.OS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, mid := r.middle()
	fmt.Fprintf(tw, "\t%s\tdirect\tratio\t\n", mid)
	for _, rw := range r.rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", rw.name, rw.gw, rw.direct, rw.ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range r.Modes {
		m.writeCluster(w, false)
	}
	r.writeErrors(w, "")
	return nil
}

// Markdown writes the same as a Markdown table.
func (r *Report) Markdown(w io.Writer) error {
	fmt.Fprintf(w, "%s\n\nMachine: %d× %s, %d MiB RAM, Linux %s, %s %s, open-files limit %d.\n\n",
		r.title(), r.Machine.CPUs, r.Machine.CPU, r.Machine.MemMiB, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.OS, r.Machine.NoFile)
	_, mid := r.middle()
	fmt.Fprintf(w, "| | %s | direct | %s/direct |\n", mid, mid)
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, rw := range r.rows() {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", rw.name, rw.gw, rw.direct, rw.ratio)
	}
	for _, m := range r.Modes {
		m.writeCluster(w, true)
	}
	r.writeErrors(w, "- ")
	return nil
}

func (r *Report) writeErrors(w io.Writer, bullet string) {
	for _, m := range r.Modes {
		if len(m.Errors) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nerrors (%s):\n", m.Mode)
		for _, k := range sortedKeys(m.Errors) {
			fmt.Fprintf(w, "%s  %s: %d\n", bullet, k, m.Errors[k])
		}
	}
}
