package clustertest

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var soakFlag = flag.Duration("soak", 0, "run TestClusterSoak for this long (e.g. -soak=10m); CHATIO_SOAK does the same")

// soakDuration is -soak, else CHATIO_SOAK (a Go duration), else 0.
func soakDuration(t *testing.T) time.Duration {
	if *soakFlag > 0 {
		return *soakFlag
	}
	v := os.Getenv("CHATIO_SOAK")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("CHATIO_SOAK=%q: %v", v, err)
	}
	return d
}

// chaos is one kind of failure a soak round brings about.
type chaos string

const (
	chaosKill   chaos = "gateway SIGKILL and restart"
	chaosTerm   chaos = "gateway SIGTERM and restart"
	chaosStop   chaos = "gateway SIGSTOP past its lease, SIGCONT"
	chaosNATS   chaos = "NATS server SIGKILL and restart (R3)"
	chaosEngine chaos = "the whole engine SIGKILL and restart"
)

var chaosKinds = []chaos{chaosKill, chaosTerm, chaosStop, chaosNATS, chaosEngine}

// TestClusterSoak runs only when asked (-soak=10m, or CHATIO_SOAK=10m):
// three gateway replicas on a three-server NATS cluster (R3), all child
// processes, customers and agents talking throughout; rounds of random
// chaos (a replica SIGKILLed or SIGTERMed and restarted, one stopped past
// its lease and continued, a NATS server killed -9 and restarted, the
// whole engine killed -9 and restarted), each round checked when it ends:
// every message once and in order on every stream so far, never two live
// sockets for one token (but while a stopped replica cannot close its
// own). It stops by itself after the duration (the round under way ends
// first) or at the first round that fails. CHATIO_SOAK_SEED replays a
// run's sequence of rounds (the seed is logged).
//
//	go test -count=1 -timeout 0 -run TestClusterSoak ./internal/clustertest/ -soak=10m -v
func TestClusterSoak(t *testing.T) {
	d := soakDuration(t)
	if d <= 0 || testing.Short() {
		t.Skip("a soak: go test -run TestClusterSoak ./internal/clustertest/ -soak=10m (or CHATIO_SOAK=10m)")
	}
	const lease = 2 * time.Second
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHATIO_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHATIO_SOAK_SEED=%q: %v", v, err)
		}
		seed = s
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("soak: %v, seed %d (CHATIO_SOAK_SEED=%d replays it)", d, seed, seed)

	r := newRun(t)
	nodes, urls := r.startNATS(3)
	r.startGateways(3, urls, nil)
	r.addCustomers("soak", customers, streamsPer)
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r.startSampler()

	start := time.Now()
	end := start.Add(d)
	var excused [][2]time.Time // this round's window in which a stopped replica holds a socket it cannot close
	tally := map[chaos]int{}
	for round := 1; time.Now().Before(end); round++ {
		roundStart := time.Now()
		excused = excused[:0]
		kind := chaosKinds[rng.IntN(len(chaosKinds))]
		tally[kind]++
		r.startTraffic(agentEvery, customerEvery)
		time.Sleep(1500 * time.Millisecond)
		gw := r.procs[rng.IntN(len(r.procs))]
		what := kind
		switch kind {
		case chaosKill:
			gw.signal(syscall.SIGKILL)
			gw.wait(t, 5*time.Second)
			time.Sleep(lease + time.Second)
			gw.start(t)
		case chaosTerm:
			gw.signal(syscall.SIGTERM)
			gw.wait(t, 10*time.Second)
			gw.start(t)
		case chaosStop:
			stopped := time.Now()
			gw.signal(syscall.SIGSTOP)
			time.Sleep(3 * lease)
			gw.signal(syscall.SIGCONT)
			excused = append(excused, [2]time.Time{stopped, time.Now().Add(1500 * time.Millisecond)})
		case chaosNATS:
			n := nodes[rng.IntN(len(nodes))]
			what = chaos(fmt.Sprintf("%s: %s", kind, n.name))
			n.signal(syscall.SIGKILL)
			n.wait(t, 5*time.Second)
			if !waitFor(20*time.Second, func() bool { return allLed(nc, n.name) }) {
				t.Fatalf("soak round %d: 20 s after %s was killed, not every stream has a leader", round, n.name)
			}
			time.Sleep(time.Second)
			n.start(t)
		case chaosEngine:
			for _, n := range nodes {
				n.signal(syscall.SIGKILL)
			}
			for _, n := range nodes {
				n.wait(t, 5*time.Second)
			}
			time.Sleep(2 * lease)
			for _, n := range nodes {
				n.launch(t)
			}
			for _, n := range nodes {
				n.waitReady(t, 60*time.Second)
			}
		}
		if !waitFor(30*time.Second, func() bool {
			for _, p := range r.procs {
				if st, _ := readyz(p.base); st != 200 {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("soak round %d (%s): a replica not ready 30 s after", round, what)
		}
		time.Sleep(2 * time.Second)
		r.endTraffic()
		c := r.verdict(fmt.Sprintf("soak round %d (%s, at %v)", round, what, roundStart.Sub(start).Round(time.Second)), 30*time.Second)
		doubles := r.takeDoubles(excused...)
		if len(doubles) > 0 {
			t.Errorf("soak round %d (%s): %d samples with two live sockets for one token, first %s ×%d at %s",
				round, what, len(doubles), doubles[0].token, doubles[0].n, doubles[0].at.Format("15:04:05.000"))
		}
		if t.Failed() {
			t.Fatalf("soak: round %d (%s) failed after %v (seed %d); counts %+v", round, what, time.Since(start).Round(time.Second), seed, c)
		}
	}
	r.endSampler()
	t.Logf("soak: %v, rounds by kind %v; never two live sockets outside a stop", time.Since(start).Round(time.Second), tally)
}

// allLed: every stream of leaderStreams has a leader, and it is not gone.
func allLed(nc *nats.Conn, gone string) bool {
	for _, name := range leaderStreams {
		si, err := streamInfoOf(nc, name)
		if err != nil || si.Cluster.Leader == "" || si.Cluster.Leader == gone {
			return false
		}
	}
	return true
}
