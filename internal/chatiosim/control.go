package chatiosim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// controlBody is the union of the control API's request fields.
type controlBody struct {
	ChatID      string         `json:"chat_id"`
	ThreadID    string         `json:"thread_id"`
	Name        string         `json:"name"`
	Text        string         `json:"text"`
	IsTyping    bool           `json:"is_typing"`
	URL         string         `json:"url"`
	ContentType string         `json:"content_type"`
	Width       int            `json:"width"`
	Height      int            `json:"height"`
	Properties  map[string]any `json:"properties"`
	Timestamp   *int64         `json:"timestamp"`
	Reason      string         `json:"reason"`
	On          bool           `json:"on"`
	Duration    string         `json:"duration"`
}

func (s *Server) controlRoutes(r chi.Router) {
	r.Get("/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	r.Get("/chats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"chats": s.Chats(r.URL.Query().Get("customer_id"))})
	})
	r.Get("/chats/{chat_id}", func(w http.ResponseWriter, r *http.Request) {
		ci, ok := s.Chat(chi.URLParam(r, "chat_id"))
		if !ok {
			httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, "Chat not found")
			return
		}
		writeJSON(w, http.StatusOK, ci)
	})
	r.Get("/chats/{chat_id}/events", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.Chat(chi.URLParam(r, "chat_id")); !ok {
			httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, "Chat not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": s.Events(chi.URLParam(r, "chat_id"))})
	})

	agent := func(fn func(a *Agent, b controlBody) (any, error)) http.HandlerFunc {
		return control(func(r *http.Request, b controlBody) (any, error) {
			if b.ChatID == "" {
				return nil, errBadControl("chat_id is required")
			}
			return fn(s.Agent(chi.URLParam(r, "agent_id"), b.Name), b)
		})
	}
	r.Post("/agents/{agent_id}/join", agent(func(a *Agent, b controlBody) (any, error) { return nil, a.Join(b.ChatID) }))
	r.Post("/agents/{agent_id}/leave", agent(func(a *Agent, b controlBody) (any, error) { return nil, a.Leave(b.ChatID) }))
	r.Post("/agents/{agent_id}/typing", agent(func(a *Agent, b controlBody) (any, error) { return nil, a.Typing(b.ChatID, b.IsTyping) }))
	r.Post("/agents/{agent_id}/message", agent(func(a *Agent, b controlBody) (any, error) {
		id, err := a.SendMessage(b.ChatID, b.Text)
		return map[string]string{"event_id": id}, err
	}))
	r.Post("/agents/{agent_id}/file", agent(func(a *Agent, b controlBody) (any, error) {
		id, err := a.SendImage(b.ChatID, b.URL, b.ContentType, b.Width, b.Height)
		return map[string]string{"event_id": id}, err
	}))
	r.Post("/agents/{agent_id}/close", agent(func(a *Agent, b controlBody) (any, error) { return nil, a.CloseThread(b.ChatID) }))
	r.Post("/agents/{agent_id}/properties", agent(func(a *Agent, b controlBody) (any, error) {
		if b.ThreadID != "" {
			return nil, a.UpdateThreadProperties(b.ChatID, b.ThreadID, b.Properties)
		}
		return nil, a.UpdateChatProperties(b.ChatID, b.Properties)
	}))
	r.Post("/agents/{agent_id}/seen", agent(func(a *Agent, b controlBody) (any, error) {
		t := time.Now()
		if b.Timestamp != nil {
			t = time.Unix(*b.Timestamp, 0)
		}
		return nil, a.MarkSeen(b.ChatID, t)
	}))

	r.Post("/customers/{customer_id}/disconnect", control(func(r *http.Request, b controlBody) (any, error) {
		return map[string]int{"sockets": s.DisconnectCustomer(chi.URLParam(r, "customer_id"), b.Reason)}, nil
	}))
	r.Post("/customers/{customer_id}/drop", control(func(r *http.Request, b controlBody) (any, error) {
		return map[string]int{"sockets": s.DropCustomer(chi.URLParam(r, "customer_id"))}, nil
	}))
	r.Post("/drop", control(func(r *http.Request, b controlBody) (any, error) {
		return map[string]int{"sockets": s.DropAll()}, nil
	}))
	r.Post("/stall", control(func(r *http.Request, b controlBody) (any, error) {
		s.Stall(b.On)
		return nil, nil
	}))
	r.Post("/latency", control(func(r *http.Request, b controlBody) (any, error) {
		d, err := parseDuration(b.Duration)
		if err != nil {
			return nil, err
		}
		s.SetLatency(d)
		return nil, nil
	}))
	r.Post("/refuse", control(func(r *http.Request, b controlBody) (any, error) {
		d, err := parseDuration(b.Duration)
		if err != nil {
			return nil, err
		}
		s.RefuseConnections(d)
		return nil, nil
	}))
}

type errBadControl string

func (e errBadControl) Error() string { return string(e) }

func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errBadControl("duration must be a Go duration such as \"500ms\" or \"5s\"")
	}
	return d, nil
}

// control decodes an optional JSON body and writes fn's result: 200 with
// the value ({} for nil), 404 for unknown chats/threads, 409 for state
// conflicts, 400 for bad input.
func control(fn func(r *http.Request, b controlBody) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b controlBody
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil && len(body) > 0 {
			err = json.Unmarshal(body, &b)
		}
		if err != nil {
			httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, "body must be a JSON object")
			return
		}
		out, err := fn(r, b)
		var bad errBadControl
		switch {
		case err == nil:
			if out == nil {
				out = struct{}{}
			}
			writeJSON(w, http.StatusOK, out)
		case errors.Is(err, ErrChatNotFound), errors.Is(err, ErrThreadNotFound):
			httpError(w, http.StatusNotFound, chatio.ErrTypeNotFound, err.Error())
		case errors.Is(err, ErrNoActiveThread), errors.Is(err, ErrNotInChat):
			httpError(w, http.StatusConflict, chatio.ErrTypeValidation, err.Error())
		case errors.As(err, &bad), errors.Is(err, ErrBadEvent):
			httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, err.Error())
		default:
			httpError(w, http.StatusBadRequest, chatio.ErrTypeValidation, err.Error())
		}
	}
}
