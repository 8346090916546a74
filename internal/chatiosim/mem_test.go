package chatiosim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const memClientEnv = "CHATIOTEST_MEMCLIENT" // "<socket url> <count>": run as the client side of TestMemoryPerSocket

// runMemClient is the child process of TestMemoryPerSocket: it opens the
// sockets, logs each in, prints "ready" and holds them until stdin closes.
func runMemClient() bool {
	spec := os.Getenv(memClientEnv)
	if spec == "" {
		return false
	}
	u, nStr, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(nStr)
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, u, nil)
		if err == nil {
			err = c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"request_id":"1","action":"login","payload":{"token":"Bearer mem-%d","customer":{"fields":{}}}}`, i))
		}
		if err == nil {
			_, _, err = c.Read(ctx)
		}
		cancel()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range conns {
		_ = c.CloseNow()
	}
	os.Exit(0)
	return true
}

func memNow() (heapStack uint64, sys uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse, m.Sys, runtime.NumGoroutine()
}

// TestMemoryPerSocket measures the server-side memory of idle, logged-in
// sockets; the clients live in a child process so that only the server is
// measured. The figure is quoted in doc.go.
func TestMemoryPerSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement skipped in -short mode")
	}
	const n = 2000
	s, base := start(t, Config{IdleTimeout: 5 * time.Minute, LoginTimeout: 5 * time.Minute})
	before, sysBefore, gBefore := memNow()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memClientEnv+"="+wsURL(base, 1)+" "+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("client: %q", line)
	}
	eventually(t, "all sockets logged in", func() bool { return s.Stats().LoggedIn == n })
	time.Sleep(50 * time.Millisecond) // let the writers finish
	after, sysAfter, gAfter := memNow()
	per := float64(int64(after)-int64(before)) / n
	t.Logf("%d idle logged-in sockets: heap+stack %.1f KiB/socket, Sys %.1f KiB/socket, %.2f goroutines/socket",
		n, per/1024, float64(int64(sysAfter)-int64(sysBefore))/n/1024, float64(gAfter-gBefore)/n)
	if per > 64<<10 {
		t.Fatalf("%.1f KiB per socket: more than 64 KiB", per/1024)
	}
	_ = stdin.Close()
	eventually(t, "sockets closed", func() bool { return s.OpenSockets() == 0 })
}
