package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// The push hot path, upstream frame → SDK event → subscriber queue, and the
// fan-out of one event to N subscribers. Run with
//
//	go test -run '^$' -bench . -benchmem ./internal/session/
//
// (the SSE encoding that follows is benchmarked in internal/httpapi).

// agentFrame is an incoming_event push for an agent message exactly as the
// simulator sends it, split around the event id's number so that each
// iteration can send a new event (the session drops events it has seen).
type agentFrame struct {
	prefix, suffix []byte
}

func captureAgentFrame(b *testing.B) agentFrame {
	b.Helper()
	sim, url := chatiotest.Start(b, chatiosim.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items := make(chan chatio.StreamItem, 64)
	c, _, err := chatio.Dial(ctx, chatio.Config{URL: url, License: 1, Token: "bench", OnItem: func(it chatio.StreamItem) bool {
		select {
		case items <- it:
			return true
		default:
			return false
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	raw, err := c.Call(ctx, chatio.ActionStartChat, json.RawMessage(`{"routing_scope":{"type":"license"}}`))
	if err != nil {
		b.Fatal(err)
	}
	var res struct {
		Chat struct {
			ID string `json:"id"`
		} `json:"chat"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		b.Fatal(err)
	}
	agent := sim.Agent("agent-1", "Ada")
	if err := agent.Join(res.Chat.ID); err != nil {
		b.Fatal(err)
	}
	id, err := agent.SendMessage(res.Chat.ID, "lg:1712345678123456789 How can I help you today?")
	if err != nil {
		b.Fatal(err)
	}
	for {
		var it chatio.StreamItem
		select {
		case it = <-items:
		case <-ctx.Done():
			b.Fatal("no incoming_event")
		}
		if it.Frame.Action != chatio.PushIncomingEvent {
			continue
		}
		frame, err := json.Marshal(it.Frame)
		if err != nil {
			b.Fatal(err)
		}
		// Event ids are "<thread>_<n>": cut before n.
		needle := []byte(`"id":"` + id + `"`)
		i := bytes.Index(frame, needle)
		if i < 0 {
			b.Fatalf("event id %s not in %s", id, frame)
		}
		cut := i + len(needle) - 1 - len(id[bytes.LastIndexByte([]byte(id), '_')+1:])
		return agentFrame{prefix: frame[:cut], suffix: frame[i+len(needle)-1:]}
	}
}

// frame returns the frame of event n in buf.
func (f agentFrame) frame(buf []byte, n int) []byte {
	buf = append(buf[:0], f.prefix...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, f.suffix...)
}

func benchSession(b *testing.B) *Session {
	p := NewPool(Config{Upstream: chatio.Config{URL: "ws://127.0.0.1:1"}, CursorKey: []byte("key")}, nil, nil)
	b.Cleanup(p.cancel)
	return newSession(p, "tok")
}

// BenchmarkPushToSubscriber: one upstream frame (bytes as read from the
// socket) is decoded as the client does, converted to SDK events, encoded,
// logged and queued to one subscriber, which takes it.
func BenchmarkPushToSubscriber(b *testing.B) {
	af := captureAgentFrame(b)
	s := benchSession(b)
	sub := addSub(s)
	defer sub.Close()
	var buf []byte
	buf = af.frame(buf, 1)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		buf = af.frame(buf, n+2)
		f, err := chatio.DecodeFrame(buf) // as the client's read loop decodes it
		if err != nil {
			b.Fatal(err)
		}
		s.handleItem(chatio.StreamItem{Frame: f})
		if m := <-sub.C(); m.Name != sdk.EventNewEvent {
			b.Fatalf("got %s", m.Name)
		}
	}
}

// BenchmarkFanout: one SDK event, already converted, published to N
// subscribers (each takes it): the per-event cost of the log and the
// fan-out.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			s := benchSession(b)
			s.cfg.MaxSubscribers = n
			subs := make([]*Subscriber, n)
			for i := range subs {
				subs[i] = addSub(s)
				defer subs[i].Close()
			}
			ev := sdk.Event{Name: sdk.EventNewEvent, Data: json.RawMessage(
				`{"chat":"Q1W2E3R4T5","event":{"id":"Q1W2E3R4T5_1","type":"message","text":"lg:1712345678123456789 How can I help you today?","timestamp":1712345678000,"author":"agent-1"}}`)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.publish(ev)
				for _, sub := range subs {
					<-sub.C()
				}
			}
		})
	}
}
