package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// TestServeRelay: bytes go both ways through the relay, one target
// connection per client connection, and the end of the relay's input
// closes what is open and returns; read by event loops and by a goroutine
// per direction.
func TestServeRelay(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(readMode(loops), func(t *testing.T) {
			if loops >= 0 && !netpoll.Supported {
				t.Skip("no event loops here")
			}
			testServeRelay(t, loops)
		})
	}
}

func testServeRelay(t *testing.T, loops int) {
	echo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	accepted := make(chan net.Conn, 4)
	echoEnded := make(chan struct{}, 4) // a relay connection to the echo server ended
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			accepted <- c
			go func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
				echoEnded <- struct{}{}
			}()
		}
	}()

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeRelay(inR, outW)
		_ = outW.Close()
	}()
	if _, err := fmt.Fprintln(inW, echo.Addr(), loops); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(line)

	var clients []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		msg := strings.Repeat(string(rune('a'+i)), 100000) // more than one read
		go func() { _, _ = io.WriteString(c, msg) }()
		got := make([]byte, len(msg))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("client %d: echoed %d bytes (%v), want %d of %q", i, len(got), err, len(msg), msg[:1])
		}
	}
	for range 2 {
		select {
		case <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatal("the relay did not dial the target once per client")
		}
	}

	// A client that ends its connection ends the relay's to the target,
	// and only that one.
	_ = clients[0].Close()
	select {
	case <-echoEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("a client's end did not end the relay's connection to the target")
	}
	select {
	case <-echoEnded:
		t.Fatal("one client's end ended the other's connection too")
	case <-time.After(100 * time.Millisecond):
	}

	_ = inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not stop at the end of its input")
	}
	_ = clients[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := clients[1].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			t.Fatalf("client connection after the relay stopped: %v, want it closed", err)
		}
	}
}

// TestServeRelayBadTarget: a first line that is no address and loop count
// is refused at once.
func TestServeRelayBadTarget(t *testing.T) {
	for _, in := range []string{"no-port 0\n", "127.0.0.1:1\n", "127.0.0.1:1 x\n"} {
		if err := ServeRelay(strings.NewReader(in), io.Discard); err == nil {
			t.Errorf("ServeRelay(%q) succeeded", in)
		}
	}
}

// TestStartRelayNoAddress: a relay child that says nothing is an error,
// not a hang.
func TestStartRelayNoAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := startRelay(ctx, []string{"true"}, "127.0.0.1:1", 0, io.Discard); err == nil {
		t.Fatal("startRelay with a child that exits at once succeeded")
	}
}
