package main

import (
	"os"
	"strings"
	"testing"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// The byte bounds of the event buffers: the binary's defaults are the
// package's, and a negative one is refused.
func TestBufferByteBounds(t *testing.T) {
	keys := []string{"GATEWAY_REPLAY_BUFFER_BYTES", "GATEWAY_REPLAY_BUDGET_BYTES", "GATEWAY_SUBSCRIBER_BUFFER_BYTES"}
	cleanEnv(t)
	for _, k := range keys {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplayBufferBytes != session.DefaultReplayBufferBytes || c.ReplayBudgetBytes != session.DefaultReplayBudgetBytes ||
		c.SubscriberBufferBytes != session.DefaultSubscriberBufferBytes {
		t.Fatalf("defaults %d %d %d", c.ReplayBufferBytes, c.ReplayBudgetBytes, c.SubscriberBufferBytes)
	}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, "-1")
			if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), k) {
				t.Fatalf("%s=-1: %v", k, err)
			}
		})
	}
}
