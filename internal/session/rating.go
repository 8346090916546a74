package session

import (
	"context"
	"encoding/json"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
)

// SendRating rates a chat (POST /v1/chats/{chat}/rating): it stores
// properties {rating: {score: 1|0, comment}} on the chat's newest thread
// with update_chat_thread_properties, as later LiveChat SDKs do, and
// resolves {value, comment} (comment only when given). value is "good" (1)
// or "bad" (0), else ErrBadRating. A chat without threads fails with a
// *chatio.RequestError of type not_found.
func (s *Session) SendRating(ctx context.Context, chatID, value, comment string) (any, error) {
	var score int
	switch value {
	case "good":
		score = 1
	case "bad":
		score = 0
	default:
		return nil, ErrBadRating
	}
	rating := jsonobj.Object{{Key: "score", Value: score}}
	result := jsonobj.Object{{Key: "value", Value: value}}
	if comment != "" {
		rating = append(rating, jsonobj.Member{Key: "comment", Value: comment})
		result = append(result, jsonobj.Member{Key: "comment", Value: comment})
	}
	err := s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		raw, err := c.Call(ctx, chatio.ActionGetChatThreadsSummary, map[string]any{
			"chat_id": chatID, "offset": 0, "limit": 1,
		})
		if err != nil {
			return err
		}
		var p struct {
			ThreadsSummary []struct {
				ID    string          `json:"id"`
				Order json.RawMessage `json:"order"`
			} `json:"threads_summary"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return &chatio.RequestError{Action: chatio.ActionGetChatThreadsSummary, Type: "invalid_answer", Message: err.Error()}
		}
		if len(p.ThreadsSummary) == 0 || p.ThreadsSummary[0].ID == "" {
			return &chatio.RequestError{Action: chatio.ActionUpdateChatThreadProperties, Type: chatio.ErrTypeNotFound, Message: "the chat has no thread to rate"}
		}
		_, err = c.Call(ctx, chatio.ActionUpdateChatThreadProperties, map[string]any{
			"chat_id":    chatID,
			"thread_id":  p.ThreadsSummary[0].ID,
			"properties": jsonobj.Object{{Key: "rating", Value: rating}},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}
