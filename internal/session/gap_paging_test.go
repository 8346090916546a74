package session

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// gapThreadsWhileDown drops the session's socket, and while it is down
// has an agent close the chat's thread and write in a new one, threads
// times; it returns the ids of those messages, oldest first, and the
// events the subscriber got up to connection_restored (after
// connection_lost).
func gapThreadsWhileDown(t *testing.T, e *testEnv, threads int) (sent []string, got []string) {
	t.Helper()
	s := e.acquire(t, "tok-gap-threads")
	chat := startChat(t, s)
	agent := e.srv.Agent("agent-1", "")
	before, err := agent.SendMessage(chat, "before the drop")
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, s, "")
	waitDelivered(t, s, before)

	dropUpstream(t, e, sub, 300*time.Millisecond)
	for i := range threads {
		if err := agent.CloseThread(chat); err != nil {
			t.Fatal(err)
		}
		id, err := agent.SendMessage(chat, fmt.Sprintf("while down, thread %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}
	for _, m := range until(t, sub, sdk.EventConnectionRestored) {
		if id := newEventID(t, m); id != "" {
			got = append(got, id)
		}
	}
	return sent, got
}

// TestGapFillPagesThreads: a chat whose last delivered thread is older
// than the newest gapSummaryLimit threads (more threads opened while the
// socket was down than one summary page holds) is read back whole: the
// gap fill pages through the thread summaries until it meets that thread.
// Before, the threads older than the newest 25 were skipped silently: 5
// of these 30 messages never reached a stream.
func TestGapFillPagesThreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		sent, got := gapThreadsWhileDown(t, e, gapSummaryLimit+5)
		if !slices.Equal(got, sent) {
			t.Fatalf("gap fill delivered %d of %d messages:\n got %v\nwant %v", len(got), len(sent), got, sent)
		}
		for _, r := range gapIncompleteReasons {
			if v := metricValue(e.pool.m.gapIncomplete.WithLabelValues(r)); v != 0 {
				t.Errorf("gap fill counted incomplete (%s): %v", r, v)
			}
		}
	})
}

// TestGapFillTooManyThreads: beyond maxGapThreads threads opened while
// the socket was down, the gap fill reads back the newest maxGapThreads
// and says that it left the older ones out (a warning, and
// gateway_gap_fill_incomplete_total{reason="too_many_threads"}), never
// silently.
func TestGapFillTooManyThreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		sent, got := gapThreadsWhileDown(t, e, maxGapThreads+3)
		if want := sent[len(sent)-maxGapThreads:]; !slices.Equal(got, want) {
			t.Fatalf("gap fill delivered %d messages, want the newest %d", len(got), len(want))
		}
		if v := metricValue(e.pool.m.gapIncomplete.WithLabelValues(gapTooManyThreads)); v != 1 {
			t.Errorf("too_many_threads counted %v times, want 1", v)
		}
	})
}

// TestGapFillThreadUnknown: a chat whose last delivered thread is not
// among its threads, with no order known for it (as a new owner seeds it
// from the log), cannot be read back: nothing newer than it can be told.
// That is said (gateway_gap_fill_incomplete_total{reason="thread_unknown"}
// and a warning), not skipped silently as before.
func TestGapFillThreadUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		s := e.acquire(t, "tok-gap-unknown")
		chat := startChat(t, s)
		err := s.Do(ctxT(t), func(ctx context.Context, c *chatio.Client) error {
			tr := newChatTracker()
			ct := tr.get(chat, true)
			ct.thread, ct.eventID = "no-such-thread", "no-such-event"
			return s.fillChat(ctx, c, chat, ct)
		})
		if err != nil {
			t.Fatal(err)
		}
		if v := metricValue(e.pool.m.gapIncomplete.WithLabelValues(gapThreadUnknown)); v != 1 {
			t.Errorf("thread_unknown counted %v times, want 1", v)
		}
	})
}

// TestGapThreadsOrderUnknown: a chat's last delivered thread whose order
// is not known (as a new owner seeds it from the log) and that is older
// than the newest maxGapThreads threads: those are all newer than it, and
// read back, and the rest is said to be left out (too_many_threads).
func TestGapThreadsOrderUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, fastConfig(), chatiosim.Config{})
		s := e.acquire(t, "tok-gap-order")
		chat := startChat(t, s)
		agent := e.srv.Agent("agent-1", "")
		var last string
		for i := range maxGapThreads + 3 {
			if i > 0 {
				if err := agent.CloseThread(chat); err != nil {
					t.Fatal(err)
				}
			}
			id, err := agent.SendMessage(chat, fmt.Sprintf("thread %d", i))
			if err != nil {
				t.Fatal(err)
			}
			last = id
		}
		waitDelivered(t, s, last)
		info, _ := e.srv.Chat(chat)
		// Counted from here: a drop of the socket during the burst above
		// (seen about once in 15 runs) has the session's own restore
		// fill this chat, with as many threads newer than its last: a
		// count of its own, done before Do gets the live client.
		before := metricValue(e.pool.m.gapIncomplete.WithLabelValues(gapTooManyThreads))
		var ids []string
		err := s.Do(ctxT(t), func(ctx context.Context, c *chatio.Client) error {
			ct := newChatTracker().get(chat, true)
			ct.thread = info.Threads[0].ID // the first thread, its order unknown
			var err error
			ids, err = s.gapThreads(ctx, c, chat, ct)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, th := range info.Threads[len(info.Threads)-maxGapThreads:] {
			want = append(want, th.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("threads read back: %d, want the newest %d of %d, oldest first", len(ids), len(want), len(info.Threads))
		}
		if v := metricValue(e.pool.m.gapIncomplete.WithLabelValues(gapTooManyThreads)) - before; v != 1 {
			t.Errorf("too_many_threads counted %v times, want 1", v)
		}
	})
}
