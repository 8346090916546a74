package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// The relay mode measures the floor of any process between the customers
// and chat.io: the direct clients' websockets pass through a child process
// that only copies bytes and understands nothing. It reads its sockets the
// way the direct clients read theirs (Config.DirectReadLoops: by default
// the event loops of internal/netpoll, which the gateway's upstream side
// uses too; or a goroutine per direction). Whatever a gateway costs over
// the direct baseline beyond what this relay costs is the gateway's own.

// ServeRelay runs the byte relay of the relay mode. The first line of in
// is the target's address (host:port) and the read loops ("127.0.0.1:80
// 0": as Config.DirectReadLoops, -1 for a goroutine per direction). It
// listens on a free 127.0.0.1 port, writes that port's address as the
// first line of out, then copies each accepted connection to a new
// connection to the target and back, until in ends (the parent closed it
// or is gone).
func ServeRelay(in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("relay: reading the target: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return fmt.Errorf("relay: want \"host:port loops\", got %q", strings.TrimSpace(line))
	}
	target := f[0]
	if _, _, err := net.SplitHostPort(target); err != nil {
		return fmt.Errorf("relay: target %q: %w", target, err)
	}
	loops, err := strconv.Atoi(f[1])
	if err != nil {
		return fmt.Errorf("relay: read loops %q: %w", f[1], err)
	}
	r := &relay{target: target, conns: map[net.Conn]struct{}{}}
	if loops >= 0 {
		if r.poller, err = netpoll.New(loops); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		defer r.poller.Close()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	stopped := make(chan struct{})
	go func() { // owned by ServeRelay: ends when in ends, which closes ln
		_, _ = io.Copy(io.Discard, br)
		_ = ln.Close()
		close(stopped)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of files, for instance: the client's dial fails and
			// is counted there; the relay waits and goes on.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !r.add(c) {
			break
		}
		r.wg.Add(1)
		if r.poller != nil {
			go r.pipePolled(c)
		} else {
			go r.pipe(c)
		}
	}
	<-stopped
	r.closeAll()
	r.wg.Wait()
	return nil
}

// relay tracks the open connections so that the end of the parent's input
// closes them all.
type relay struct {
	target string
	poller *netpoll.Poller // nil: a goroutine per direction
	wg     sync.WaitGroup  // pipes, and with the poller each watched socket
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu; nil once closed
}

func (r *relay) add(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		_ = c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) remove(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	_ = c.Close()
}

// closeAll ends every connection. A watched socket may only be closed
// once its loop has let it go: it is shut down, and its loop's end of the
// watch closes it.
func (r *relay) closeAll() {
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for c := range conns {
		if r.poller != nil {
			shutdownConn(c)
		} else {
			_ = c.Close()
		}
	}
}

func shutdownConn(c net.Conn) {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = netpoll.Shutdown(rc)
		}
	}
}

// pipePolled dials the target for c and has the poller's loops copy both
// ways: each side's bytes are written to the other on the loop that read
// them. The writes block the loop only if the peer's socket buffer is
// full, which these small frames at these rates never fill. The end of
// either side shuts the other down, whose loop then ends it too.
func (r *relay) pipePolled(c net.Conn) {
	defer r.wg.Done()
	u, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		r.remove(c)
		return
	}
	if !r.add(u) {
		r.remove(c)
		return
	}
	for _, p := range [][2]net.Conn{{c, u}, {u, c}} {
		src, dst := p[0], p[1]
		r.wg.Add(1)
		ended := func() {
			shutdownConn(dst)
			r.remove(src)
			r.wg.Done()
		}
		sc := src.(syscall.Conn)
		rc, err := sc.SyscallConn()
		if err == nil {
			_, err = r.poller.Add(sc, func(rd *netpoll.Reader) bool {
				for {
					n, err := rd.Read(rc, rd.Buf)
					if n == 0 {
						return err == nil // nothing more for now: watch on; the end or an error: stop
					}
					if _, err := dst.Write(rd.Buf[:n]); err != nil {
						return false
					}
				}
			}, ended)
		}
		if err != nil {
			ended()
		}
	}
}

// pipe dials the target for c and copies both ways until either side ends;
// then it closes both.
func (r *relay) pipe(c net.Conn) {
	defer r.wg.Done()
	defer r.remove(c)
	u, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		return
	}
	if !r.add(u) {
		return
	}
	defer r.remove(u)
	done := make(chan struct{})
	go func() { // owned by pipe, which waits for it
		defer close(done)
		relayCopy(u, c)
		_ = u.Close()
	}()
	relayCopy(c, u)
	_ = c.Close()
	<-done
}

// relayCopy copies src to dst through a buffer of its own until either
// fails. Not io.Copy: between two TCP connections it splices, and each
// splice holds a kernel pipe, two more files per direction, which would
// let only a third of the sessions fit the open-files limit.
func relayCopy(dst, src net.Conn) {
	buf := make([]byte, 8<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// relayProc is a running relay child process.
type relayProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string // where it listens, host:port
	done  chan error
}

// startRelay starts argv as a relay child (ServeRelay) in front of target,
// its sockets read as loops says (Config.DirectReadLoops), and waits for
// its address.
func startRelay(ctx context.Context, argv []string, target string, loops int, stderr io.Writer) (*relayProc, error) {
	cmd, in, outPipe, err := startChild(argv, stderr)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	p := &relayProc{cmd: cmd, stdin: in, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() { // owned by p: ends with the child's output
		br := bufio.NewReader(outPipe)
		line, _ := br.ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, br)
		p.done <- cmd.Wait()
	}()
	if _, err := fmt.Fprintln(in, target, loops); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("relay: %w", err)
	}
	select {
	case p.addr = <-addr:
	case <-ctx.Done():
		p.stop(time.Second)
		return nil, fmt.Errorf("relay: waiting for its address: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		p.stop(time.Second)
		return nil, errors.New("relay: no address within 10s")
	}
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("relay: bad address %q", p.addr)
	}
	return p, nil
}

func (p *relayProc) pid() int { return p.cmd.Process.Pid }

// stop ends the child's input, which ends it; it is killed after grace.
func (p *relayProc) stop(grace time.Duration) {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
