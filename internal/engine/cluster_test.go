package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/chatio-gateway/chatio-gateway/internal/freeport"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

// freePorts returns n distinct free TCP ports on 127.0.0.1 (freeport.Pick).
func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range n {
		p, err := freeport.Pick()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	return ports
}

// runCluster runs three nats-servers with JetStream in one cluster, in the
// test process, on 127.0.0.1.
func runCluster(t testing.TB) []*server.Server {
	t.Helper()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	for i := range 3 {
		o := &server.Options{
			ServerName: fmt.Sprintf("c%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		}
		o.Cluster.Name = "cgw"
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = ports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		srvs = append(srvs, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
	}
	testwait.For(t, 30*time.Second, "a JetStream meta leader and three current peers", func() bool {
		peers := 0
		for _, s := range srvs {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				peers = len(s.JetStreamClusterPeers())
			}
		}
		return peers == 3
	})
	return srvs
}

// TestClusterR3LeaderLoss appends a customer's chain on a three-node
// cluster and shuts its stream's leader (the server the engine is
// connected to) down in the middle: appends pause and resume, the log
// holds every event once, in order, and so does a live reader's output.
func TestClusterR3LeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	srvs := runCluster(t)
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.ClientURL())
	}
	e := startEngine(t, Config{URL: strings.Join(urls, ","), NodeID: "r3", Streams: 2, ReconnectWait: 50 * time.Millisecond})
	if e.Replicas() != 3 {
		t.Fatalf("replicas %d, want 3 on a cluster of three", e.Replicas())
	}
	ctx := ctxT(t, 60*time.Second)
	sid := sidOf("r3")
	own, err := e.Own(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	stream := e.streams[sid.shard(len(e.streams))].name
	// A live reader follows the customer through the leader's loss: its
	// cursor fills what the live path missed (a reconnect, a leader that
	// died before republishing) and drops what it saw twice.
	live := make(chan Live, 1000)
	sub, err := e.Subscribe(sid, func(l Live) { live <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	reader := e.NewCursor(sid, 0)
	var delivered []Event
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case l := <-live:
				evs, err := reader.Next(ctx, l)
				if err != nil {
					readerErr <- err
					return
				}
				delivered = append(delivered, evs...)
			case <-done:
				evs, err := reader.CatchUp(ctx)
				if err != nil {
					readerErr <- err
				}
				delivered = append(delivered, evs...)
				return
			}
		}
	}()
	// Make the server the engine is connected to the stream's leader, so
	// that its loss is a leader election and a reconnect at once.
	connected := e.Conn().ConnectedServerName()
	var target *server.Server
	for _, s := range srvs {
		if s.Name() == connected {
			target = s
		}
	}
	if target == nil {
		t.Fatalf("connected to %q, not one of the servers", connected)
	}
	testwait.For(t, 20*time.Second, "the connected server leads the stream", func() bool {
		if target.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return true
		}
		req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, connected)
		_, _ = e.Conn().Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), time.Second)
		time.Sleep(100 * time.Millisecond)
		return target.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream)
	})
	const n = 60
	last := own.LastSeq
	var killed *server.Server
	var pause time.Duration
	for i := range n {
		if i == n/2 {
			if !target.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				t.Fatal("the connected server lost the stream's leadership")
			}
			killed = target
			killed.Shutdown()
		}
		t0 := time.Now()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := e.Append(actx, sid, last, fmt.Sprint(i), []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		pause = max(pause, time.Since(t0))
		last = s
	}
	if e.Conn().Stats().Reconnects == 0 || e.Conn().ConnectedServerName() == connected {
		t.Fatal("the engine did not reconnect to another server")
	}
	t.Logf("longest append across the leader loss and the reconnect: %v", pause)
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatalf("live reader: %v", err)
	}
	cur := e.NewCursor(sid, 0)
	evs, err := cur.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
	}
	if got := datas(evs); got != strings.Join(want, ",") {
		t.Fatalf("log %q", got)
	}
	if cur.Last() != last {
		t.Fatalf("cursor at %d, last append %d", cur.Last(), last)
	}
	if got := datas(delivered); got != strings.Join(want, ",") {
		t.Fatalf("live reader got %q", got)
	}
}
