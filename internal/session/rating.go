package session

import (
	"context"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
)

// SendRating rates a chat (POST /v1/chats/{chat}/rating): it stores
// properties {rating: {score: 1|0, comment}} on the chat's newest thread
// with update_chat_thread_properties, as later LiveChat SDKs do, and
// resolves {value, comment} (comment only when given). A value that is
// neither "good" nor "bad" has no score: ErrBadRating (op.SendRating's
// Validate refuses it first). A chat without threads fails with a
// *chatio.RequestError of type not_found.
func (s *Session) SendRating(ctx context.Context, a op.SendRating) (res any, err error) {
	start := time.Now()
	defer func() { traceDone(ctx, start, err) }()
	score, err := a.Score()
	if err != nil {
		return nil, err
	}
	result := jsonobj.Object{{Key: "value", Value: a.Value}}
	if a.Comment != "" {
		result = append(result, jsonobj.Member{Key: "comment", Value: a.Comment})
	}
	err = s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		raw, err := c.GetChatThreadsSummary(ctx, a.ChatID, 0, 1)
		if err != nil {
			return err
		}
		p, err := chatio.ParseThreadsSummary(raw)
		if err != nil {
			return err
		}
		if len(p.Threads) == 0 || p.Threads[0].ID == "" {
			return &chatio.RequestError{Action: chatio.ActionUpdateChatThreadProperties, Type: chatio.ErrTypeNotFound, Message: "the chat has no thread to rate"}
		}
		_, err = c.UpdateChatThreadProperties(ctx, a.ChatID, p.Threads[0].ID, chatio.RatingProperties(score, a.Comment))
		return err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}
