package clustertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var (
	natsOnce sync.Once
	natsPath string
	natsErr  error
)

// natsBinary builds nats-server from the module go.mod requires (offline,
// from the module cache), once per test run, beside the gateway binary.
func natsBinary(t *testing.T) string {
	t.Helper()
	gatewayBinary(t) // makes binDir
	natsOnce.Do(func() {
		natsPath = filepath.Join(binDir, "nats-server")
		cmd := exec.Command("go", "build", "-o", natsPath, "github.com/nats-io/nats-server/v2")
		if out, err := cmd.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsErr != nil {
		t.Fatal(natsErr)
	}
	return natsPath
}

// startNATS runs n nats-server child processes with JetStream (file
// store in t.TempDir()), in one cluster when n > 1, on 127.0.0.1, and
// waits until each one's /healthz answers 200 (JetStream up, a meta
// leader known, its streams current). Each keeps its ports and store
// across restarts (proc.start). It returns them and their client URLs,
// comma-separated, and records them in r.nats.
func (r *run) startNATS(n int) ([]*proc, string) {
	t := r.t
	t.Helper()
	type ports struct{ client, cluster, http int }
	ps := make([]ports, n)
	var routes, urls []string
	for i := range ps {
		ps[i] = ports{freePort(t), freePort(t), freePort(t)}
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats://127.0.0.1:%d", ps[i].cluster)))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ps[i].client))
	}
	dir := t.TempDir()
	var nodes []*proc
	for i, pp := range ps {
		name := fmt.Sprintf("n%d", i)
		conf := fmt.Sprintf("server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream {\n  store_dir: %q\n}\n",
			name, pp.client, pp.http, filepath.Join(dir, name))
		if n > 1 {
			conf += fmt.Sprintf("cluster {\n  name: \"ct\"\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n", pp.cluster, strings.Join(routes, ", "))
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &proc{
			name: name, base: urls[i], stderr: &syncBuffer{}, bin: natsBinary,
			args: []string{"-c", path}, env: os.Environ(),
			ready: fmt.Sprintf("http://127.0.0.1:%d/healthz", pp.http),
		}
		t.Cleanup(p.kill)
		nodes = append(nodes, p)
	}
	for _, p := range nodes {
		p.launch(t)
	}
	for _, p := range nodes {
		p.waitReady(t, 30*time.Second)
	}
	r.nats = append(r.nats, nodes...)
	return nodes, strings.Join(urls, ",")
}

// startGateways starts n gateway replicas on the engine at natsURL;
// urlOf, when not nil, gives replica i its own GATEWAY_NATS_URL.
func (r *run) startGateways(n int, natsURL string, urlOf func(i int) string) {
	for i := range n {
		u := natsURL
		if urlOf != nil {
			u = urlOf(i)
		}
		p := newProc(r.t, fmt.Sprintf("gw%d", i+1),
			"CHATIO_URL="+r.simURL,
			"GATEWAY_NATS_URL="+u,
			"GATEWAY_CLUSTER_KEY="+clusterKey,
			"GATEWAY_DATA_DIR="+r.t.TempDir(),
		)
		r.procs = append(r.procs, p)
		r.reps = append(r.reps, p.base)
	}
	for _, p := range r.procs {
		p.start(r.t)
	}
}

// logStreams is GATEWAY_LOG_STREAMS' default: CGW_EV_0..3.
const logStreams = 4

// streamInfo is what the tests read of a stream's info.
type streamInfo struct {
	Config struct {
		Replicas int `json:"num_replicas"`
	} `json:"config"`
	Cluster struct {
		Leader   string `json:"leader"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
		} `json:"replicas"`
	} `json:"cluster"`
	Error *struct {
		Description string `json:"description"`
	} `json:"error"`
}

// logStreamInfo asks the JetStream API for the info of log stream i.
func logStreamInfo(nc *nats.Conn, i int) (streamInfo, error) {
	return streamInfoOf(nc, fmt.Sprintf("CGW_EV_%d", i))
}

// streamInfoOf asks the JetStream API for the info of a stream.
func streamInfoOf(nc *nats.Conn, name string) (streamInfo, error) {
	var si streamInfo
	m, err := nc.Request("$JS.API.STREAM.INFO."+name, nil, 2*time.Second)
	if err != nil {
		return si, err
	}
	if err := json.Unmarshal(m.Data, &si); err != nil {
		return si, err
	}
	if si.Error != nil {
		return si, fmt.Errorf("stream info %s: %s", name, si.Error.Description)
	}
	return si, nil
}

// leaderStreams are the engine's streams a victim is made to lead: the
// log streams and the KV buckets' (the node leases, the owner records,
// the one-time ids).
var leaderStreams = []string{"CGW_EV_0", "CGW_EV_1", "CGW_EV_2", "CGW_EV_3", "KV_cgw_nodes", "KV_cgw_owners", "KV_cgw_once"}

// leadAll has the server named victim lead every stream of leaderStreams
// (stepping the others' leaders down with victim preferred), within 20 s;
// it returns how many it leads then, and checks that each has three
// replicas.
func leadAll(t *testing.T, nc *nats.Conn, victim string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		led := 0
		for _, name := range leaderStreams {
			si, err := streamInfoOf(nc, name)
			if err != nil {
				continue
			}
			if si.Config.Replicas != 3 {
				t.Fatalf("stream %s has %d replicas, want 3 (R3)", name, si.Config.Replicas)
			}
			if si.Cluster.Leader == victim {
				led++
				continue
			}
			_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+name,
				fmt.Appendf(nil, `{"placement":{"preferred":%q}}`, victim), 2*time.Second)
		}
		if led == len(leaderStreams) || time.Now().After(deadline) {
			return led
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyz is a replica's /readyz status and its JSON "status" (0: no answer).
func readyz(base string) (int, string) {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	res, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	var b struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(res.Body).Decode(&b)
	return res.StatusCode, b.Status
}

// waitFor polls cond every 50 ms until it holds (true) or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// bucketLeaders names the leaders of the engine's KV buckets (their
// streams), "?" when unknown.
func bucketLeaders(nc *nats.Conn) string {
	var out []string
	for _, b := range []string{"cgw_nodes", "cgw_owners", "cgw_once"} {
		l := "?"
		if si, err := streamInfoOf(nc, "KV_"+b); err == nil {
			l = si.Cluster.Leader
		}
		out = append(out, b+" "+l)
	}
	return strings.Join(out, ", ")
}
