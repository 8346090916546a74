package session

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// newBubbleEnv is newEnv for a test inside a synctest bubble
// (synctest.Test): the simulator is served over an in-memory network of
// net.Pipe connections instead of loopback sockets, so that every
// goroutine of the test (the pool's, the client's read loops, the
// simulator's) blocks durably and the bubble's fake clock moves on when
// all of them wait. A test that waits on a timer (backoff, idle eviction,
// the sneak-peek throttle) then takes no wall time, and can check the
// exact instant something happened. ReadLoops is forced to -1: the event
// loops wait in epoll, outside the bubble's knowledge.
func newBubbleEnv(t *testing.T, cfg Config, sim chatiotest.Config) *testEnv {
	t.Helper()
	srv := chatiotest.New(sim)
	ln := newPipeListener()
	hs := &http.Server{Handler: srv}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	tr := &http.Transport{DialContext: ln.dial}
	t.Cleanup(func() {
		srv.Close()
		_ = hs.Close()
		<-served
		tr.CloseIdleConnections()
	})

	cfg.Upstream.URL = "ws://simulator.test/customer/v0.5"
	cfg.Upstream.License = 1
	cfg.Upstream.HTTPClient = &http.Client{Transport: tr}
	cfg.ReadLoops = -1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p := NewPool(cfg, zap.NewNop(), reg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testEnv{srv: srv, pool: p, reg: reg}
}

// pipeListener is an in-memory network with one listener: dial hands the
// server's end of a net.Pipe to Accept. Operations on a net.Pipe block
// durably in a synctest bubble; those on a loopback socket do not.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial is an http.Transport's DialContext: whatever the address, it
// connects to the listener.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, errors.New("pipe network: connection refused")
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
