package memnet

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrRefused is Dial's error once the listener is closed.
var ErrRefused = errors.New("memnet: connection refused")

// Listener is a net.Listener of in-memory connections.
type Listener struct {
	addr   addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// Listen returns a listener whose address is name (a host:port, say, so
// that an http URL can be made of it).
func Listen(name string) *Listener {
	return &Listener{addr: addr(name), conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for a Dial and returns the server's end of its connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close ends Accept and refuses further dials. Connections already made
// stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the name given to Listen.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener, whatever network and address it is
// given: it has the signature of http.Transport's DialContext. It waits
// for an Accept, ctx's end or the listener's Close.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, ErrRefused
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type addr string

func (addr) Network() string  { return "memnet" }
func (a addr) String() string { return string(a) }
