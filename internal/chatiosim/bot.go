package chatiosim

import (
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// Demo bot identity.
const (
	BotID   = "ada.demo@agents.chatio-sim.example"
	BotName = "Ada (demo agent)"
)

const botQueue = 1024 // activities waiting for the bot; more are dropped (Stats.BotDropped)

// startBot registers the bot agent (routing puts it into every new chat)
// and starts its single worker goroutine.
func (s *Server) startBot() {
	s.mu.Lock()
	s.botAgent = s.agentState(BotID, BotName)
	s.mu.Unlock()
	ch, _ := s.watch(botQueue, &s.nBotDropped)
	bot := &Agent{s: s, id: BotID}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for a := range ch { // closed by Close
			s.botHandle(bot, a)
		}
	}()
}

func (s *Server) botHandle(bot *Agent, a Activity) {
	switch a.Action {
	case chatio.ActionStartChat:
		name := ""
		s.mu.Lock()
		if c := s.customers[a.CustomerID]; c != nil {
			name = c.name
		}
		s.mu.Unlock()
		greeting := "Hi! I'm Ada, the demo agent of the chat.io simulator. Write me anything and I'll answer."
		if name != "" {
			greeting = "Hi " + name + "! I'm Ada, the demo agent of the chat.io simulator. Write me anything and I'll answer."
		}
		if !s.botSay(bot, a.ChatID, greeting) {
			return
		}
		for _, e := range a.Events {
			if e.Type == "message" {
				s.botSay(bot, a.ChatID, botReply(e.Text))
			}
		}
	case chatio.ActionSendEvent:
		for _, e := range a.Events {
			if e.Type == "message" {
				s.botSay(bot, a.ChatID, botReply(e.Text))
			}
		}
	case "send_file":
		s.botSay(bot, a.ChatID, "Thanks, I got your file. (Demo: I only look at its size and type.)")
	}
}

func botReply(text string) string {
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) > 200 {
		r := []rune(text)
		text = string(r[:200]) + "…"
	}
	return "You said: “" + text + "”. I'm only a demo, so I echo; try sending a file, or close the chat to start over."
}

// botSay shows typing, waits, stops typing and sends text, only while the
// bot is in the chat and its thread is active. False when the server closes.
func (s *Server) botSay(bot *Agent, chatID, text string) bool {
	if !s.botPresent(chatID) {
		return true
	}
	if bot.Typing(chatID, true) != nil {
		return true
	}
	d := s.cfg.BotDelay
	if d <= 0 {
		d = 500*time.Millisecond + rand.N(500*time.Millisecond)
	}
	t := time.NewTimer(d)
	select {
	case <-s.closing:
		t.Stop()
		return false
	case <-t.C:
	}
	if !s.botPresent(chatID) {
		return true
	}
	_ = bot.Typing(chatID, false)
	_, _ = bot.sendEvent(chatID, eventSpec{typ: "message", text: text}, true)
	return true
}

func (s *Server) botPresent(chatID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chats[chatID]
	return ch != nil && ch.agent(BotID) != nil && ch.activeThread() != nil
}
