//go:build linux

package netpoll

import (
	"bytes"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns the two ends of a TCP connection on 127.0.0.1.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

// reader collects what a watched socket reads until its end.
type reader struct {
	rc    syscall.RawConn
	conn  *net.TCPConn
	mu    sync.Mutex
	got   bytes.Buffer
	err   error
	calls int
	busy  bool
	ended chan struct{}
	t     *testing.T
}

func watch(t *testing.T, p *Poller, c *net.TCPConn) *reader {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{rc: rc, conn: c, ended: make(chan struct{}), t: t}
	if _, err := p.Add(c, r.readable, r.end); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *reader) readable(rd *Reader) bool {
	r.mu.Lock()
	if r.busy {
		r.t.Error("Readable calls overlap")
	}
	r.busy = true
	r.calls++
	r.mu.Unlock()
	n, err := rd.Read(r.rc, rd.Buf)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.busy = false
	r.got.Write(rd.Buf[:n])
	if err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *reader) end() {
	_ = r.conn.Close() // allowed now: the loop no longer watches it
	close(r.ended)
}

func (r *reader) waitFor(t *testing.T, want []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		ok := bytes.Equal(r.got.Bytes(), want)
		n := r.got.Len()
		r.mu.Unlock()
		if ok {
			return
		}
		if n > len(want) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("read %d bytes, want %d", r.got.Len(), len(want))
}

func TestReadsAndEnds(t *testing.T) {
	p, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const socks = 20
	var peers []*net.TCPConn
	var readers []*reader
	for range socks {
		a, b := pair(t)
		peers = append(peers, b)
		readers = append(readers, watch(t, p, a))
	}
	if p.Len() != socks {
		t.Fatalf("Len = %d, want %d", p.Len(), socks)
	}
	// More than the scratch buffer at once, in pieces: every byte arrives
	// once and in order.
	want := make([][]byte, socks)
	var wg sync.WaitGroup
	for i, b := range peers {
		for j := range 3 {
			chunk := bytes.Repeat([]byte{byte('a' + i%26)}, ScratchSize/2+j*1000)
			want[i] = append(want[i], chunk...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Write(want[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, r := range readers {
		r.waitFor(t, want[i])
	}

	// The peer's end reaches the reader as io.EOF; Ended follows.
	_ = peers[0].Close()
	<-readers[0].ended
	if readers[0].err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", readers[0].err)
	}
	// Our own shutdown from another goroutine ends a watch the same way.
	if err := Shutdown(readers[1].rc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-readers[1].ended:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not end the watch")
	}
	for _, r := range readers[2:] {
		_ = Shutdown(r.rc)
		<-r.ended
	}
	for _, b := range peers {
		_ = b.Close()
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after every watch ended", p.Len())
	}
}

// A descriptor number reused by a new socket after an old one ended gets
// only its own events.
func TestReusedDescriptor(t *testing.T) {
	p, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 50 {
		a, b := pair(t)
		r := watch(t, p, a)
		msg := []byte{byte(i)}
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, msg)
		_ = b.Close()
		<-r.ended
	}
}

func TestClosedPollerRefuses(t *testing.T) {
	p, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	a, b := pair(t)
	defer a.Close()
	defer b.Close()
	if _, err := p.Add(a, func(*Reader) bool { return true }, func() {}); err != ErrClosed {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
}
