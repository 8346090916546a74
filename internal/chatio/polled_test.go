package chatio

import (
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/netpoll"
)

// testPoller, while TestPolled runs, is the poller dialFake gives every
// client (the tests of this package run one at a time).
var testPoller *netpoll.Poller

// TestPolled runs the client's tests of its read side again with the
// socket read by an event loop (Config.Poller) instead of a goroutine.
func TestPolled(t *testing.T) {
	p, err := netpoll.New(2)
	if err != nil {
		t.Skipf("no poller here: %v", err)
	}
	testPoller = p
	defer func() {
		testPoller = nil
		if n := p.Len(); n != 0 {
			t.Errorf("%d sockets still watched after the tests", n)
		}
		_ = p.Close()
	}()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"DialLogin", TestDialLogin},
		{"DialLoginRefused", TestDialLoginRefused},
		{"CallDirect", TestCallDirect},
		{"CallIndirect", TestCallIndirect},
		{"EmitOrdering", TestEmitOrdering},
		{"IgnoredFrames", TestIgnoredFrames},
		{"RequestTimeout", TestRequestTimeout},
		{"CallCancel", TestCallCancel},
		{"ConnectionLost", TestConnectionLost},
		{"Close", TestClose},
		{"KeepaliveStall", TestKeepaliveStall},
		{"CloseStalledPeer", TestCloseStalledPeer},
		{"ReadLimit", TestReadLimit},
		{"KeepaliveHealthy", TestKeepaliveHealthy},
		{"CustomerDisconnected", TestCustomerDisconnected},
		{"StreamOverflow", TestStreamOverflow},
		{"ConcurrentCalls", TestConcurrentCalls},
		{"OnItem", TestOnItem},
		{"OnDone", TestOnDone},
		{"CallTimeoutProbesStall", TestCallTimeoutProbesStall},
		{"StallFailsCallsWithTimeout", TestStallFailsCallsWithTimeout},
		{"OnIgnored", TestOnIgnored},
		{"OnItemQueue", TestOnItemQueue},
	} {
		t.Run(tc.name, tc.fn)
	}
}
