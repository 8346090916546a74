package session

import (
	"testing"
	"testing/synctest"
)

// TestAppenderRunsOnAWaitingWorker: an appender with events goes to an
// append worker that waits for one (its grown stack is kept from push to
// push), not to a goroutine of its own.
func TestAppenderRunsOnAWaitingWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pool{appendq: make(chan *logAppender)}
		a := &logAppender{s: &Session{pool: p}, started: true, done: make(chan struct{})}
		got := make(chan *logAppender, 1)
		go func() { got <- <-p.appendq }() // a worker, waiting
		synctest.Wait()
		a.mu.Lock()
		a.queue = append(a.queue, logged{local: 1})
		a.spawnLocked()
		running := a.running
		a.mu.Unlock()
		synctest.Wait()
		select {
		case g := <-got:
			if g != a {
				t.Fatal("the worker got another appender")
			}
		default:
			t.Fatal("the appender was not handed to the waiting worker")
		}
		if !running {
			t.Error("the appender is not marked running")
		}
	})
}
