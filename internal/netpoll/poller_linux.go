//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// armed is what a watch waits for: bytes to read or the peer's end, once
// (the loop re-arms it after Readable asks to go on).
const armed = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// batch is how many ready sockets a loop takes from epoll at once.
const batch = 128

// ScratchSize is the size of the buffer a loop lends to Readable.
const ScratchSize = 64 << 10

// Poller watches sockets for reads on a few loops. Create it with New and
// stop it with Close once every watched socket has ended.
type Poller struct {
	loops []*loop
	next  atomic.Uint32
	wg    sync.WaitGroup // the loops' goroutines
	once  sync.Once
}

// Watch is one watched socket.
type Watch struct {
	id       uint64
	fd       int
	readable func(r *Reader) bool
	ended    func()
}

// Reader is a loop's scratch space and its way to read a socket without
// waiting, lent to Readable. Its read function is made once per loop, so
// that a read allocates nothing.
type Reader struct {
	// Buf is ScratchSize bytes, free to use until Readable returns.
	Buf []byte

	p    []byte // what the current Read reads into
	n    int
	err  error
	read func(fd uintptr) bool // r.readFD
}

func newReader() *Reader {
	r := &Reader{Buf: make([]byte, ScratchSize)}
	r.read = r.readFD
	return r
}

// Read reads once from rc into p without waiting: n > 0 bytes, or n == 0
// with io.EOF at the end of the stream, or n == 0 and a nil error when
// nothing is there yet.
func (r *Reader) Read(rc syscall.RawConn, p []byte) (int, error) {
	r.p = p
	err := rc.Read(r.read)
	n, rerr := r.n, r.err
	r.p, r.err = nil, nil
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, nil
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *Reader) readFD(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		if r.err != syscall.EINTR {
			return true
		}
	}
}

// loop is one epoll instance and the goroutine that serves it.
type loop struct {
	file *os.File // the epoll descriptor, in Go's poller; closing it ends run
	raw  syscall.RawConn
	epfd int

	mu      sync.Mutex
	watches map[uint64]*Watch // guarded by mu
	nextID  uint64            // guarded by mu
	closed  bool              // guarded by mu

	// owned by run
	reader *Reader
	events [batch]syscall.EpollEvent
	n      int                   // events taken by the last wait
	werr   error                 // the last wait's error
	wait   func(fd uintptr) bool // l.waitFD, made once
}

// New starts a poller with n loops (n ≤ 0: one per GOMAXPROCS).
func New(n int) (*Poller, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Poller{}
	for range n {
		l, err := newLoop()
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run()
		}()
	}
	return p, nil
}

func newLoop() (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	// A non-blocking descriptor becomes a pollable os.File: run waits for
	// the epoll set to have ready sockets the way a goroutine waits on a
	// socket, without holding a thread.
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	l := &loop{file: f, raw: raw, epfd: epfd, watches: make(map[uint64]*Watch), reader: newReader()}
	l.wait = l.waitFD
	return l, nil
}

// Add watches conn (a *net.TCPConn or another syscall.Conn on a socket).
// readable is called on a loop goroutine whenever the socket has bytes to
// read or has ended, with the loop's Reader (its scratch space is free to
// use until readable returns). It must read without blocking (Read does) and must not block
// otherwise: other sockets wait on the same loop. It returns false to end
// the watch; the loop then stops watching the socket and calls ended, after
// which (and only after which) the socket may be closed.
func (p *Poller) Add(conn syscall.Conn, readable func(r *Reader) bool, ended func()) (*Watch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	l.nextID++
	w := &Watch{id: l.nextID, fd: fd, readable: readable, ended: ended}
	l.watches[w.id] = w
	l.mu.Unlock()
	ev := syscall.EpollEvent{Events: armed}
	setID(&ev, w.id)
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.forget(w)
		return nil, fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	return w, nil
}

// Len is the number of sockets watched.
func (p *Poller) Len() int {
	n := 0
	for _, l := range p.loops {
		l.mu.Lock()
		n += len(l.watches)
		l.mu.Unlock()
	}
	return n
}

// Close stops the loops and waits for them. Sockets still watched are
// not told: close the poller after they have ended. Idempotent.
func (p *Poller) Close() error {
	p.once.Do(func() {
		for _, l := range p.loops {
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			_ = l.file.Close() // wakes run, which then returns
		}
		p.wg.Wait()
	})
	return nil
}

// setID and idOf keep a watch's id in the event's 64 bits of user data
// (Fd and Pad in Go's struct), so that an event can never reach the watch
// of a later socket that got the same descriptor number.
func setID(ev *syscall.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func idOf(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (l *loop) forget(w *Watch) {
	l.mu.Lock()
	delete(l.watches, w.id)
	l.mu.Unlock()
}

// run serves the loop until its epoll descriptor is closed.
func (l *loop) run() {
	for {
		err := l.raw.Read(l.wait)
		if err != nil || l.werr != nil {
			return // closed
		}
		for i := range l.n {
			l.mu.Lock()
			w := l.watches[idOf(&l.events[i])]
			l.mu.Unlock()
			if w != nil {
				l.serve(w)
			}
		}
	}
}

// waitFD takes the ready sockets from epoll without waiting; false (none)
// has run wait in Go's poller for the epoll descriptor to be readable.
func (l *loop) waitFD(uintptr) bool {
	for {
		l.n, l.werr = syscall.EpollWait(l.epfd, l.events[:], 0)
		if l.werr != syscall.EINTR {
			return l.n > 0 || l.werr != nil
		}
	}
}

// serve lets w read, then re-arms it or ends it.
func (l *loop) serve(w *Watch) {
	if w.readable(l.reader) {
		ev := syscall.EpollEvent{Events: armed}
		setID(&ev, w.id)
		if syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, w.fd, &ev) == nil {
			return
		}
	}
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, w.fd, nil)
	l.forget(w)
	w.ended()
}

// Shutdown shuts conn down both ways: a watched socket's loop sees its end
// (and a blocked write fails), without the descriptor being closed under
// the loop.
func Shutdown(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	return errors.Join(err, serr)
}

// Supported reports whether New can work here.
const Supported = true
