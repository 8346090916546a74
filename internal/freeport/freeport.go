package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port Pick hands out: above the registered ports
// services on a developer's machine tend to use.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Pick returns a port of 127.0.0.1 that was free a moment ago, below the
// kernel's ephemeral range (bind(0) and outgoing connections use that
// range) and not handed out before by this process.
func Pick() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	lo := ephemeralLow()
	for range 2000 {
		var p int
		if lo-lowest >= 1000 {
			p = lowest + rand.IntN(lo-lowest)
		} else {
			// A kernel whose ephemeral range starts low: its ports, then
			// only the set below keeps them apart.
			var err error
			if p, err = bindAny(); err != nil {
				return 0, err
			}
		}
		if given[p] || !bindable(p) {
			continue
		}
		given[p] = true
		return p, nil
	}
	return 0, errors.New("freeport: no free port of 127.0.0.1 found in 2000 tries")
}

// ephemeralLow is the first port of the kernel's ephemeral range: Linux's
// ip_local_port_range, else the IANA range's 49152.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 49152
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 49152
	}
	return n
}

func bindable(p int) bool {
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func bindAny() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
