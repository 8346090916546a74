package session

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// TestReasonSeriesAtStart: every reason label value of the pool's metrics
// is a series from the start, at 0, so that rate() and increase() see the
// first occurrence.
func TestReasonSeriesAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg)
	for name, want := range map[string]int{
		"gateway_upstream_dial_failures_total":  len(dialFailureReasons),
		"gateway_upstream_frames_ignored_total": len(ignoredFrameReasons),
		"gateway_events_dropped_total":          len(droppedReasons),
		"gateway_subscribers_cut_total":         1,
		"gateway_gap_fill_incomplete_total":     len(gapIncompleteReasons),
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != want {
			t.Errorf("%s: %d series (%v), want %d", name, got, err, want)
		}
	}
	if len(dialFailureReasons) != 6 || len(ignoredFrameReasons) != 3 || len(droppedReasons) != 5 || len(gapIncompleteReasons) != 3 {
		t.Fatal("a reason list changed: update README.md's metrics table too")
	}
}

// TestDialReasonsListed: every reason dialReason gives is pre-initialised.
func TestDialReasonsListed(t *testing.T) {
	for _, err := range []error{
		chatio.ErrAuthentication, &chatio.DisconnectedError{Reason: "x"}, &chatio.RequestError{Type: "x"},
		chatio.ErrTimeout, context.DeadlineExceeded, context.Canceled, chatio.ErrClosed, errors.New("dial tcp: refused"),
	} {
		if r := dialReason(err); !slices.Contains(dialFailureReasons, r) {
			t.Errorf("dialReason(%v) = %q, not in dialFailureReasons", err, r)
		}
	}
}
