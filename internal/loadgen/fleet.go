package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// fleet is the customer side of one mode: K customers, each with one open
// event stream (an SSE stream through the gateway, or the websocket's push
// stream directly) and one chat. The driver calls Open, then Load (while it
// has the agent send), Drain, Throughput, Result and Close, one at a time.
type fleet interface {
	// Open opens k sessions, ramp per second, each with its stream and a
	// chat; it returns the chat id of each session ("" when it failed).
	Open(ctx context.Context, k int, ramp float64) ([]string, error)
	// Load sends customer messages at rate per second, round-robin over the
	// sessions, for d.
	Load(ctx context.Context, rate float64, d time.Duration) (int64, error)
	// Drain waits up to timeout until every session has received the
	// agent messages sent to it (sent[i]).
	Drain(ctx context.Context, sent []int64, timeout time.Duration) error
	// Throughput runs callers back-to-back senders (caller i on session i)
	// for d.
	Throughput(ctx context.Context, callers int, d time.Duration) (fleetThroughput, error)
	// Result returns everything measured so far.
	Result(ctx context.Context) (fleetResult, error)
	// Close ends every session.
	Close() error
}

// fleetResult is what a fleet measured. Samples are in nanoseconds.
type fleetResult struct {
	// Push is agent send → event read from the stream (direct: on the
	// client's read loop; gateway over h2c: on h2Reader's read goroutine;
	// gateway over HTTP/1.1: by net/http's client, a goroutine per stream).
	Push []int64 `json:"push"`
	// PushNetHTTP is the same for the streams read through net/http's
	// client beside h2Reader's (gateway over h2c: half of them), a
	// goroutine per stream.
	PushNetHTTP []int64 `json:"push_net_http,omitempty"`
	// Connections is the TCP connections the clients opened to the gateway.
	Connections int64 `json:"connections,omitempty"`

	// Cluster runs (several replicas) only.
	ProbeAt []int64 `json:"probe_at,omitempty"` // unix ns at which each session's stream got its first takeover probe; 0: none
	Resumes int64   `json:"resumes,omitempty"`  // streams resumed with Last-Event-ID after their replica cut them
	Retried int64   `json:"retried,omitempty"`  // calls sent again to another replica after a transport error
	DownAt  int64   `json:"down_at,omitempty"`  // unix ns at which the clients first found a replica refusing connections
	// ResumeFailures counts the resume attempts that failed, by kind (the
	// stream tried again).
	ResumeFailures map[string]int64 `json:"resume_failures,omitempty"`

	Calls    map[string][]int64 `json:"calls"`    // request latency by route/action
	Errors   map[string]int64   `json:"errors"`   // by kind
	Received []int64            `json:"received"` // agent messages received per session
}

// fleetThroughput is the result of a throughput phase.
type fleetThroughput struct {
	Calls   int64   `json:"calls"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	Lat     []int64 `json:"lat"`
}

// Message texts. An agent message carries its send time so that the
// receiving side can compute the push latency without a shared table:
// "lg:<unix nanoseconds>". Customer messages are "cu:<n>".
const (
	agentPrefix    = "lg:"
	customerPrefix = "cu:"
)

// agentText is the text of an agent message sent now.
func agentText(now time.Time) string {
	return agentPrefix + strconv.FormatInt(now.UnixNano(), 10)
}

// probeText is the text of a takeover probe sent now (see KillOwnerAt):
// an agent message like any other, marked with a "p" after its time.
func probeText(now time.Time) string {
	return agentText(now) + "p"
}

// agentMarker is how an agent message's text looks inside JSON.
var agentMarker = []byte(`"` + agentPrefix)

// pushSentAt finds an agent message's send time in a JSON document (an SSE
// data line or a websocket frame's payload); ok false when there is none.
func pushSentAt(data []byte) (time.Time, bool) {
	at, _, ok := pushSent(data)
	return at, ok
}

// pushSent is pushSentAt that also tells a takeover probe (probeText).
func pushSent(data []byte) (at time.Time, probe, ok bool) {
	i := bytes.Index(data, agentMarker)
	if i < 0 {
		return time.Time{}, false, false
	}
	rest := data[i+len(agentMarker):]
	var ns int64
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		ns = ns*10 + int64(rest[n]-'0')
		n++
	}
	digits := n
	if n < len(rest) && rest[n] == 'p' {
		probe = true
		n++
	}
	if digits == 0 || n >= len(rest) || rest[n] != '"' {
		return time.Time{}, false, false
	}
	return time.Unix(0, ns), probe, true
}

// counters is the per-session receive count shared by both fleets.
type counters struct {
	received []atomic.Int64
}

func (c *counters) snapshot() []int64 {
	out := make([]int64, len(c.received))
	for i := range c.received {
		out[i] = c.received[i].Load()
	}
	return out
}

// waitReceived polls until received[i] ≥ sent[i] for every i, or timeout.
func waitReceived(ctx context.Context, c *counters, sent []int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for i, n := range sent {
			if i < len(c.received) && c.received[i].Load() < n {
				done = false
				break
			}
		}
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runPaced calls fn(n) for n = 0, 1, … at rate per second until d has passed
// or ctx ends, each call in its own goroutine with at most maxInFlight
// running (beyond: the schedule waits, and the achieved rate drops). It
// returns the number of calls started once all have ended.
func runPaced(ctx context.Context, rate float64, d time.Duration, maxInFlight int, fn func(n int)) int64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	p := newPacer(rate)
	n := 0
	for ; ; n++ {
		if w := p.wait(n); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-sem }()
			fn(n)
		}(n)
	}
	wg.Wait()
	return int64(n)
}

// runCallers runs callers loops of fn back to back for d and counts. Caller
// c's n-th call goes to session index c + n·callers (mod sessions), so
// that the load spreads over the sessions as it does over customers (and
// each customer stays within its own rate limit). fn's errors are counted
// by kind in errs.
func runCallers(ctx context.Context, callers, sessions int, d time.Duration, errs *errorCounts, fn func(ctx context.Context, session, n int) error) fleetThroughput {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var calls, failed atomic.Int64
	var lat recorder
	start := time.Now()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				err := fn(ctx, (c+n*callers)%sessions, n)
				if ctx.Err() != nil { // cut by the end of the phase: not counted
					return
				}
				if err != nil {
					failed.Add(1)
					errs.inc("throughput: " + err.Error())
					continue
				}
				calls.Add(1)
				lat.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return fleetThroughput{Calls: calls.Load(), Errors: failed.Load(), Seconds: time.Since(start).Seconds(), Lat: lat.samples()}
}

// rampOpen calls open(ctx, i) for i in [0, k), starting them at ramp per
// second with at most 64 in progress, and returns when all have returned
// (or ctx ended the ramp).
func rampOpen(ctx context.Context, k int, ramp float64, open func(ctx context.Context, i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	p := newPacer(ramp)
	for i := range k {
		if w := p.wait(i); w > 0 && !sleepCtx(ctx, w) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			open(ctx, i)
		}()
	}
	wg.Wait()
}

// liveSessions are the indexes of the sessions whose chat was started.
func liveSessions(chats []string) []int {
	var out []int
	for i, ch := range chats {
		if ch != "" {
			out = append(out, i)
		}
	}
	return out
}

// sendBackToBack is the throughput phase of a fleet: callers send
// messages back to back over the live sessions for d; send(ctx, session,
// n) sends message n.
func sendBackToBack(ctx context.Context, live []int, callers int, d time.Duration, errs *errorCounts,
	send func(ctx context.Context, session, n int) error) (fleetThroughput, error) {
	if len(live) < callers {
		return fleetThroughput{}, fmt.Errorf("%d callers, %d open sessions", callers, len(live))
	}
	var seq atomic.Int64
	return runCallers(ctx, callers, len(live), d, errs, func(ctx context.Context, i, _ int) error {
		return send(ctx, live[i], int(seq.Add(1)))
	}), nil
}
