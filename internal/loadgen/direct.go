package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// directFleet is the baseline: each customer is a chatio.Client dialled
// straight to the simulator, as an application embedding the SDK would be.
// Push latency is read on the client's Stream; the REST call's equivalent is
// a send_event round trip.
type directFleet struct {
	url    string
	prefix string          // token prefix; session i's token is prefix+i
	poller *netpoll.Poller // reads the clients' sockets; nil: a goroutine each

	ctx    context.Context // the fleet's lifetime: stream readers end with it
	cancel context.CancelFunc

	clients []*chatio.Client // written by Open only, before Load
	chats   []string         // written by Open only
	recv    counters
	push    recorder
	calls   recorders
	errs    errorCounts
	readers sync.WaitGroup
}

// newDirectFleet makes the fleet; readLoops as Config.DirectReadLoops.
func newDirectFleet(url, prefix string, readLoops int) (*directFleet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &directFleet{url: url, prefix: prefix, ctx: ctx, cancel: cancel}
	if readLoops >= 0 {
		p, err := netpoll.New(readLoops)
		if err != nil {
			cancel()
			return nil, err
		}
		f.poller = p
	}
	return f, nil
}

// readMode says how the clients' sockets are read, for the report.
func readMode(readLoops int) string {
	switch {
	case readLoops < 0:
		return "a goroutine per socket"
	case readLoops == 0:
		return "read loops: one per CPU"
	}
	return fmt.Sprintf("read loops: %d", readLoops)
}

func (f *directFleet) Open(ctx context.Context, k int, ramp float64) ([]string, error) {
	f.clients = make([]*chatio.Client, k)
	f.chats = make([]string, k)
	f.recv.received = make([]atomic.Int64, k)
	rampOpen(ctx, k, ramp, f.openOne)
	return f.chats, ctx.Err()
}

func (f *directFleet) openOne(ctx context.Context, i int) {
	t0 := time.Now()
	c, _, err := chatio.Dial(ctx, chatio.Config{
		URL:     f.url,
		License: 1,
		Token:   f.prefix + strconv.Itoa(i),
		// The pushes are taken on the client's read loop, as the gateway's
		// sessions take them, and the sockets are read the same way: the
		// baseline has no hand-off the gateway's upstream side does not have.
		OnItem: func(it chatio.StreamItem) bool { f.take(i, it); return true },
		Poller: f.poller,
	})
	if err != nil {
		f.errs.inc("login: " + errKind(err))
		return
	}
	f.calls.get("open: dial + login").add(time.Since(t0))
	f.clients[i] = c
	f.readers.Add(1)
	go f.watch(c)

	t0 = time.Now()
	raw, err := c.StartChat(ctx, nil, nil, nil)
	if err != nil {
		f.errs.inc("start_chat: " + errKind(err))
		return
	}
	f.calls.get("startChat: start_chat").add(time.Since(t0))
	var res struct {
		Chat struct {
			ID string `json:"id"`
		} `json:"chat"`
	}
	if json.Unmarshal(raw, &res) != nil || res.Chat.ID == "" {
		f.errs.inc("start_chat: bad answer")
		return
	}
	f.chats[i] = res.Chat.ID
}

// take records one push of client i (on its read loop).
func (f *directFleet) take(i int, it chatio.StreamItem) {
	if it.Frame.Action != chatio.PushIncomingEvent {
		return
	}
	if at, ok := pushSentAt(it.Frame.Payload); ok {
		f.push.add(time.Since(at))
		f.recv.received[i].Add(1)
	}
}

// watch waits for c's end: before the run's, it is an error.
func (f *directFleet) watch(c *chatio.Client) {
	defer f.readers.Done()
	<-c.Done()
	if f.ctx.Err() == nil {
		f.errs.inc("stream ended: " + errKind(c.Err()))
	}
}

func (f *directFleet) sendMessage(ctx context.Context, i int, n int) error {
	c := f.clients[i]
	if c == nil || f.chats[i] == "" {
		return errors.New("no session")
	}
	event := jsonobj.Object{{Key: "type", Value: "message"}, {Key: "text", Value: customerPrefix + strconv.Itoa(n)}}
	_, err := c.SendEvent(ctx, f.chats[i], event)
	return err
}

func (f *directFleet) Load(ctx context.Context, rate float64, d time.Duration) (int64, error) {
	live := f.live()
	if len(live) == 0 {
		return 0, errors.New("no open session")
	}
	rec := f.calls.get("sendMessage: send_event")
	n := runPaced(ctx, rate, d, 512, func(n int) {
		i := live[n%len(live)]
		t0 := time.Now()
		if err := f.sendMessage(ctx, i, n); err != nil {
			f.errs.inc("send_event: " + errKind(err))
			return
		}
		rec.add(time.Since(t0))
	})
	return n, nil
}

// live lists the sessions that opened completely.
func (f *directFleet) live() []int { return liveSessions(f.chats) }

func (f *directFleet) Drain(ctx context.Context, sent []int64, timeout time.Duration) error {
	waitReceived(ctx, &f.recv, sent, timeout)
	return nil
}

func (f *directFleet) Throughput(ctx context.Context, callers int, d time.Duration) (fleetThroughput, error) {
	return sendBackToBack(ctx, f.live(), callers, d, &f.errs, func(ctx context.Context, i, n int) error {
		if err := f.sendMessage(ctx, i, n); err != nil {
			return errors.New(errKind(err))
		}
		return nil
	})
}

func (f *directFleet) Result(context.Context) (fleetResult, error) {
	return fleetResult{
		Push:     f.push.samples(),
		Calls:    f.calls.all(),
		Errors:   f.errs.snapshot(),
		Received: f.recv.snapshot(),
	}, nil
}

func (f *directFleet) Close() error {
	f.cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.Close()
		}()
	}
	wg.Wait()
	f.readers.Wait()
	if f.poller != nil {
		_ = f.poller.Close() // every client has ended
	}
	return nil
}

// errKind is a short, low-cardinality name for an error.
func errKind(err error) string {
	var re *chatio.RequestError
	var de *chatio.DisconnectedError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &re):
		return "request_failed:" + re.Type
	case errors.As(err, &de):
		return "disconnected:" + de.Reason
	case errors.Is(err, chatio.ErrAuthentication):
		return "authentication"
	case errors.Is(err, chatio.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, chatio.ErrStreamOverflow):
		return "stream_overflow"
	case errors.Is(err, chatio.ErrConnectionLost):
		return "connection_lost"
	case errors.Is(err, chatio.ErrClosed), errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "other"
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
