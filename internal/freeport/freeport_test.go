package freeport

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// TestPickDistinctOutsideEphemeral: many concurrent picks are distinct,
// below the ephemeral range, and bindable when handed out; a port bound
// by someone else does not count as free.
func TestPickDistinctOutsideEphemeral(t *testing.T) {
	lo := ephemeralLow()
	const n = 200
	var (
		wg    sync.WaitGroup
		seen  sync.Mutex
		ports = map[int]int{}
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Pick()
			if err != nil {
				t.Error(err)
				return
			}
			seen.Lock()
			ports[p]++
			seen.Unlock()
		}()
	}
	wg.Wait()
	if len(ports) != n {
		t.Fatalf("%d distinct ports of %d picks", len(ports), n)
	}
	for p := range ports {
		if lo-lowest >= 1000 && (p < lowest || p >= lo) {
			t.Errorf("port %d outside [%d, %d)", p, lowest, lo)
		}
	}

	// A port bound by someone else is not taken as free.
	p, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("a picked port is not bindable: %v", err)
	}
	defer ln.Close()
	if bindable(p) {
		t.Fatalf("port %d, bound by a listener, counted as free", p)
	}
}
