package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/chatio/chatiotest"
	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// Benchmarks of the stream's hot path. Run with
//
//	go test -run '^$' -bench . -benchmem ./internal/httpapi/
//
// (frame → SDK event → subscriber is benchmarked in internal/session).

// BenchmarkAppendMessage: one SDK event, as the session queues it, to the
// bytes of its SSE message.
func BenchmarkAppendMessage(b *testing.B) {
	m := session.Message{ID: "1712345678123457", Name: "new_event", Data: []byte(
		`{"chat":"Q1W2E3R4T5","event":{"id":"K9L8M7N6_3","type":"message","text":"lg:1712345678123456789 How can I help you today?","timestamp":1712345678000,"author":"agent-1","thread":"K9L8M7N6","order":3}}`)}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(m.Data)))
	b.ReportAllocs()
	for range b.N {
		buf = appendMessage(buf[:0], m)
	}
}

// BenchmarkStreamPush is the whole push path in one process: the agent
// sends a message at the simulator, the session's upstream socket reads
// it, the session converts and queues it, the stream handler writes it as
// SSE over HTTP/1.1, and a client reads the message. ns/op is the round
// trip of one event; B/op and allocs/op count everything in the process,
// the simulator and the client included.
func BenchmarkStreamPush(b *testing.B) {
	sim, url := chatiotest.Start(b, chatiosim.Config{})
	pool := session.NewPool(session.Config{Upstream: chatio.Config{URL: url, License: 1}}, zap.NewNop(), nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pool.Shutdown(ctx)
	}()
	api := New(Config{}, pool, zap.NewNop(), prometheus.NewRegistry())
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	waitEvent(b, br, "connected")

	creq, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chats", strings.NewReader(`{}`))
	creq.Header.Set("Authorization", "Bearer bench")
	cresp, err := srv.Client().Do(creq)
	if err != nil {
		b.Fatal(err)
	}
	var chat struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(cresp.Body).Decode(&chat)
	cresp.Body.Close()
	if err != nil || chat.ID == "" {
		b.Fatalf("start chat: %v", err)
	}
	agent := sim.Agent("agent-1", "Ada")
	if err := agent.Join(chat.ID); err != nil {
		b.Fatal(err)
	}
	waitEvent(b, br, "user_joined_chat")

	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		text := "lg:" + strconv.Itoa(n) + " How can I help you today?"
		if _, err := agent.SendMessage(chat.ID, text); err != nil {
			b.Fatal(err)
		}
		data := waitEvent(b, br, "new_event")
		if !bytes.Contains(data, []byte(text)) {
			b.Fatalf("event %s, want text %q", data, text)
		}
	}
}

// waitEvent reads SSE messages until one named name and returns its data.
func waitEvent(b *testing.B, br *bufio.Reader, name string) []byte {
	b.Helper()
	var event string
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatalf("stream: %v", err)
		}
		line = bytes.TrimRight(line, "\n")
		switch {
		case len(line) == 0:
			if event == name {
				return data
			}
			event, data = "", data[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
}
