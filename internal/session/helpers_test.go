package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
	"github.com/chatio-gateway/chatio-gateway/internal/testwait"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLong = 5 * time.Second

// testEnv is a simulator and a pool in front of it.
type testEnv struct {
	srv  *chatiosim.Server
	pool *Pool
	reg  *prometheus.Registry
}

// fastConfig has short timing knobs for tests.
func fastConfig() Config {
	return Config{
		IdleTimeout:       time.Minute,
		ReconnectMin:      5 * time.Millisecond,
		ReconnectMax:      50 * time.Millisecond,
		ReconnectWait:     2 * time.Second,
		DialTimeout:       5 * time.Second,
		SneakPeekInterval: 200 * time.Millisecond,
	}
}

func newEnv(t *testing.T, cfg Config, sim chatiosim.Config) *testEnv {
	t.Helper()
	srv, url := chatiotest.Start(t, sim)
	cfg.Upstream.URL = url
	cfg.Upstream.License = 1
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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *testEnv) acquire(t *testing.T, token string) *Session {
	t.Helper()
	s, err := e.pool.Acquire(ctxT(t), token)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return s
}

// startChat starts a chat as the SDK would (Emit) and returns its id.
func startChat(t *testing.T, s *Session) string {
	t.Helper()
	var id string
	err := s.Do(ctxT(t), func(ctx context.Context, c *chatio.Client) error {
		raw, err := c.Call(ctx, chatio.ActionStartChat, map[string]any{"routing_scope": map[string]string{"type": "license"}}, chatio.Emit())
		if err != nil {
			return err
		}
		var p struct {
			Chat struct {
				ID string `json:"id"`
			} `json:"chat"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		id = p.Chat.ID
		return nil
	})
	if err != nil {
		t.Fatalf("start_chat: %v", err)
	}
	return id
}

// sendMessage sends a customer message as the SDK would (Emit); returns the event id.
func sendMessage(t *testing.T, s *Session, chat, text string) string {
	t.Helper()
	var id string
	err := s.Do(ctxT(t), func(ctx context.Context, c *chatio.Client) error {
		raw, err := c.Call(ctx, chatio.ActionSendEvent, map[string]any{
			"chat_id": chat, "event": map[string]string{"type": "message", "text": text},
		}, chatio.Emit())
		if err != nil {
			return err
		}
		ev, err := sdk.ParseResult(chatio.ActionSendEvent, raw)
		if err != nil {
			return err
		}
		id = jsonString(ev.(jsonobj.Object).Raw("id"))
		return nil
	})
	if err != nil {
		t.Fatalf("send_event: %v", err)
	}
	return id
}

func subscribe(t *testing.T, s *Session, last string) *Subscriber {
	t.Helper()
	sub, err := s.Subscribe(ctxT(t), last)
	if err != nil {
		t.Fatalf("subscribe(%q): %v", last, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// next returns the next live message, failing after a timeout or on close.
func next(t *testing.T, sub *Subscriber) Message {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if !ok {
			t.Fatalf("stream closed: %v", sub.Err())
		}
		return m
	case <-time.After(waitLong):
		t.Fatal("no event in time")
	}
	return Message{}
}

// dropUpstream drops the session's one upstream socket with the
// simulator refusing connections for refuse, and returns sub's messages up
// to and including connection_lost.
func dropUpstream(t *testing.T, e *testEnv, sub *Subscriber, refuse time.Duration) []Message {
	t.Helper()
	e.srv.RefuseConnections(refuse)
	if e.srv.DropAll() != 1 {
		t.Fatal("no socket dropped")
	}
	return until(t, sub, sdk.EventConnectionLost)
}

// until returns messages up to and including the first named name.
func until(t *testing.T, sub *Subscriber, name string) []Message {
	t.Helper()
	var out []Message
	for {
		m := next(t, sub)
		out = append(out, m)
		if m.Name == name {
			return out
		}
	}
}

// waitClosed waits for C to close, returning what was still queued.
func waitClosed(t *testing.T, sub *Subscriber) []Message {
	t.Helper()
	var out []Message
	deadline := time.After(waitLong)
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, m)
		case <-deadline:
			t.Fatal("stream not closed in time")
		}
	}
}

// newEventID is the event id inside a new_event message ("" otherwise).
func newEventID(t *testing.T, m Message) string {
	t.Helper()
	if m.Name != sdk.EventNewEvent {
		return ""
	}
	var d struct {
		Chat  string `json:"chat"`
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("new_event data %s: %v", m.Data, err)
	}
	return d.Event.ID
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, waitLong, what, cond)
}

func seqOf(t *testing.T, m Message) uint64 {
	t.Helper()
	id, ok := parseEventID(m.ID)
	if !ok {
		t.Fatalf("message %s without id", m.Name)
	}
	return id
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// waitDelivered waits until the session has logged the new_event of eventID.
func waitDelivered(t *testing.T, s *Session, eventID string) {
	t.Helper()
	eventually(t, "event delivered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := s.ringLen - 1; i >= 0; i-- {
			m := s.ring[(s.ringHead+i)%len(s.ring)].msg
			if newEventID(t, m) == eventID {
				return true
			}
		}
		return false
	})
}
