package session

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/memnet"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// newBubbleEnv is newEnv for a test inside a synctest bubble
// (synctest.Test): the simulator is served over an in-memory network
// (memnet) instead of loopback sockets, so that every
// goroutine of the test (the pool's, the client's read loops, the
// simulator's) blocks durably and the bubble's fake clock moves on when
// all of them wait. A test that waits on a timer (backoff, idle eviction,
// the sneak-peek throttle) then takes no wall time, and can check the
// exact instant something happened. ReadLoops is forced to -1: the event
// loops wait in epoll, outside the bubble's knowledge.
func newBubbleEnv(t *testing.T, cfg Config, sim chatiosim.Config) *testEnv {
	t.Helper()
	return newBubbleEnvWith(t, cfg, sim, nil)
}

// newBubbleEnvWith is newBubbleEnv whose upstream connections are wrapped
// by wrap (nil: as they are).
func newBubbleEnvWith(t *testing.T, cfg Config, sim chatiosim.Config, wrap func(net.Conn) net.Conn) *testEnv {
	t.Helper()
	srv := chatiosim.New(sim)
	ln := memnet.Listen("simulator.test:80")
	hs := &http.Server{Handler: srv}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := ln.Dial(ctx, network, addr)
		if err != nil || wrap == nil {
			return c, err
		}
		return wrap(c), nil
	}}
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
