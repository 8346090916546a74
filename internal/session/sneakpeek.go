package session

import (
	"context"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"go.uber.org/zap"
)

// maxSneakChats bounds the chats whose sneak-peek throttle is tracked.
const maxSneakChats = 256

// sneakState is the throttle of one chat. Guarded by Session.mu.
type sneakState struct {
	last       time.Time   // when the last send went out (zero: never)
	pending    string      // the latest text held back
	hasPending bool        // whether pending is to be sent
	timer      *time.Timer // the trailing send, nil when none is due
}

// SetSneakPeek forwards what the customer is typing (PUT
// /v1/chats/{chat}/sneak-peek), throttled per chat like the SDK: the first
// call of a quiet period sends at once; calls within SneakPeekInterval of
// the last send only keep the latest text, which one trailing send delivers
// when the interval ends. Sends run in the background; their failures are
// only logged. At most maxSneakChats chats are tracked; beyond, a call for a
// new chat is dropped. (The SDK also skips chats that are not active; the
// gateway leaves that to the upstream.)
func (s *Session) SetSneakPeek(chatID, text string) {
	if !s.setSneakPeek(chatID, text) {
		s.log.Debug("sneak peek dropped: too many chats tracked") // not under mu
	}
}

// setSneakPeek is SetSneakPeek under s.mu; false when the call was
// dropped for the table of chats being full.
func (s *Session) setSneakPeek(chatID, text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return true
	}
	now := time.Now()
	st := s.sneak[chatID]
	if st == nil {
		if len(s.sneak) >= maxSneakChats {
			s.pruneSneakLocked(now)
		}
		if len(s.sneak) >= maxSneakChats {
			return false
		}
		st = &sneakState{}
		s.sneak[chatID] = st
	}
	interval := s.cfg.SneakPeekInterval
	if st.timer == nil && (st.last.IsZero() || now.Sub(st.last) >= interval) {
		st.last = now
		s.sendSneakLocked(chatID, text)
		return true
	}
	st.pending, st.hasPending = text, true
	if st.timer == nil {
		st.timer = time.AfterFunc(st.last.Add(interval).Sub(now), func() { s.flushSneak(chatID, st) })
	}
	return true
}

// flushSneak is the trailing send of one chat (a timer's goroutine).
func (s *Session) flushSneak(chatID string, st *sneakState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.sneak[chatID] != st {
		return
	}
	st.timer = nil
	if !st.hasPending {
		return
	}
	text := st.pending
	st.pending, st.hasPending = "", false
	st.last = time.Now()
	s.sendSneakLocked(chatID, text)
}

// pruneSneakLocked forgets chats whose throttle has nothing left to do.
func (s *Session) pruneSneakLocked(now time.Time) {
	for chat, st := range s.sneak {
		if st.timer == nil && now.Sub(st.last) >= s.cfg.SneakPeekInterval {
			delete(s.sneak, chat)
		}
	}
}

// sendSneakLocked starts one send_sneak_peek in the background. s.mu held,
// !s.closing (so the wg.Add cannot race finish's Wait).
func (s *Session) sendSneakLocked(chatID, text string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.Do(s.ctx, func(ctx context.Context, c *chatio.Client) error {
			_, err := c.SendSneakPeek(ctx, chatID, text)
			return err
		})
		if err != nil && s.ctx.Err() == nil {
			s.log.Info("send_sneak_peek failed", zap.Error(err))
		}
	}()
}
