package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// gatewayRun is the whole gateway (run) in this test process, with the
// environment the test set, on a goroutine the test owns: startRun starts
// it, stop (or end, then wait) ends it, and the test's cleanup at the
// latest.
type gatewayRun struct {
	t      *testing.T
	base   string // "http://" and the address it listens on
	cancel context.CancelFunc
	done   chan error // run's result
	waited bool
}

// runTimeout bounds the wait for the gateway to listen, and for run to
// return once ended.
const runTimeout = 15 * time.Second

// startRun runs the gateway, stdout and stderr its, and returns once it
// listens; the test fails if run returns before, or if it does not listen
// within runTimeout.
func startRun(t *testing.T, stdout, stderr io.Writer) *gatewayRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gatewayRun{t: t, cancel: cancel, done: make(chan error, 1)}
	addrc := make(chan net.Addr, 1)
	go func() { g.done <- run(ctx, nil, stdout, stderr, func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		// A test that failed on the way: the run still ends before the
		// next test (and goleak) looks.
		cancel()
		if !g.waited {
			select {
			case <-g.done:
			case <-time.After(runTimeout):
				t.Error("run did not return at the test's end")
			}
		}
	})
	select {
	case a := <-addrc:
		g.base = "http://" + a.String()
	case err := <-g.done:
		g.waited = true
		t.Fatalf("run ended before it listened: %v", err)
	case <-time.After(runTimeout):
		t.Fatal("not listening")
	}
	return g
}

// end tells the gateway to stop (its context ends, as at SIGTERM); wait
// waits for it.
func (g *gatewayRun) end() { g.cancel() }

// wait fails the test unless run returns nil within runTimeout.
func (g *gatewayRun) wait() {
	g.t.Helper()
	select {
	case err := <-g.done:
		g.waited = true
		if err != nil {
			g.t.Fatalf("run: %v", err)
		}
	case <-time.After(runTimeout):
		g.t.Fatal("run did not return")
	}
}

// stop is end, then wait.
func (g *gatewayRun) stop() {
	g.t.Helper()
	g.end()
	g.wait()
}
