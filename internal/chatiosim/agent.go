package chatiosim

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// Errors of the agent API.
var (
	ErrChatNotFound   = errors.New("chatiosim: chat not found")
	ErrThreadNotFound = errors.New("chatiosim: thread not found")
	ErrNoActiveThread = errors.New("chatiosim: chat has no active thread")
	ErrNotInChat      = errors.New("chatiosim: agent is not in the chat")
	ErrBadEvent       = errors.New("chatiosim: invalid event")
)

// Agent acts on chats as an agent would. Its pushes go to every open socket
// of the chat's customer. Methods that write into a chat (messages, files,
// typing, properties, close, seen) first join the agent to the chat when it
// is not in it (pushing chat_users_updated), so tests need no Join call.
type Agent struct {
	s  *Server
	id string
}

// Agent returns the agent with this id, registering it on first use with
// name (later calls with a non-empty name rename it). Its email is the id
// when that looks like one, else id@agents.chatio-sim.example; its avatar is
// https://cdn.chatio-sim.example/avatars/<id>.png.
func (s *Server) Agent(id, name string) *Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agentState(id, name)
	return &Agent{s: s, id: id}
}

func (s *Server) agentState(id, name string) *agentState {
	a := s.agents[id]
	if a == nil {
		email := id
		if !strings.Contains(id, "@") {
			email = id + "@agents.chatio-sim.example"
		}
		if name == "" {
			name = id
		}
		a = &agentState{id: id, name: name, email: email,
			avatar: "https://cdn.chatio-sim.example/avatars/" + url.PathEscape(id) + ".png"}
		s.agents[id] = a
	} else if name != "" {
		a.name = name
	}
	return a
}

// ID returns the agent's id (its author_id on events).
func (a *Agent) ID() string { return a.id }

func (a *Agent) state() *agentState { return a.s.agents[a.id] }

// chat looks chatID up and joins the agent to it when join is set; with
// s.mu held.
func (a *Agent) chat(chatID string, join bool) (*chat, error) {
	ch := a.s.chats[chatID]
	if ch == nil {
		return nil, ErrChatNotFound
	}
	if join && ch.agent(a.id) == nil {
		a.s.join(ch, a.state())
	}
	return ch, nil
}

// join adds ag to ch (and its active thread) and tells the customer.
func (s *Server) join(ch *chat, ag *agentState) {
	ch.agents = append(ch.agents, ag)
	if th := ch.activeThread(); th != nil {
		th.userIDs = append(th.userIDs, ag.id)
	}
	s.pushResult(ch.cust, nil, nil, chatio.PushChatUsersUpdated, map[string]any{
		"chat_id":       ch.id,
		"updated_users": map[string]any{"added": []any{ag.wire(nil)}, "removed_ids": []string{}},
	})
}

// Join adds the agent to the chat (chat_users_updated push). No-op when it
// is in already.
func (a *Agent) Join(chatID string) error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	_, err := a.chat(chatID, true)
	return err
}

// Leave removes the agent from the chat (chat_users_updated push with its
// id in removed_ids). ErrNotInChat when it is not in it.
func (a *Agent) Leave(chatID string) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, false)
	if err != nil {
		return err
	}
	for i, x := range ch.agents {
		if x.id == a.id {
			ch.agents = append(ch.agents[:i:i], ch.agents[i+1:]...)
			s.pushResult(ch.cust, nil, nil, chatio.PushChatUsersUpdated, map[string]any{
				"chat_id":       ch.id,
				"updated_users": map[string]any{"added": []any{}, "removed_ids": []string{a.id}},
			})
			return nil
		}
	}
	return ErrNotInChat
}

// Typing pushes incoming_typing_indicator {author_id, is_typing}.
func (a *Agent) Typing(chatID string, typing bool) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, true)
	if err != nil {
		return err
	}
	s.pushResult(ch.cust, nil, nil, chatio.PushIncomingTypingIndicator, map[string]any{
		"chat_id":          ch.id,
		"typing_indicator": map[string]any{"author_id": a.id, "is_typing": typing},
	})
	return nil
}

// SendMessage adds a message by the agent and returns its event id. In a
// chat without an active thread it opens one (incoming_chat_thread push),
// else it pushes incoming_event.
func (a *Agent) SendMessage(chatID, text string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", ErrBadEvent
	}
	return a.sendEvent(chatID, eventSpec{typ: "message", text: text}, false)
}

// SendFile adds a file event {url, content_type} by the agent.
func (a *Agent) SendFile(chatID, fileURL, contentType string) (string, error) {
	return a.SendImage(chatID, fileURL, contentType, 0, 0)
}

// SendImage adds a file event with width and height (both > 0; else it is
// a plain file event).
func (a *Agent) SendImage(chatID, fileURL, contentType string, width, height int) (string, error) {
	if fileURL == "" {
		return "", ErrBadEvent
	}
	return a.sendEvent(chatID, fileSpec(fileURL, contentType, width, height, nil), false)
}

// SendEvent adds an event of any type by the agent: event must hold "type";
// its other fields are passed on as given (id, author_id, timestamp and
// order are set by the simulator).
func (a *Agent) SendEvent(chatID string, event json.RawMessage) (string, error) {
	sp, e := parseEvent(event)
	if e != nil {
		return "", errors.Join(ErrBadEvent, e)
	}
	return a.sendEvent(chatID, sp, false)
}

func fileSpec(fileURL, contentType string, width, height int, customID *string) eventSpec {
	f := map[string]json.RawMessage{
		"url":          mustJSON(fileURL),
		"content_type": mustJSON(contentType),
	}
	if width > 0 && height > 0 {
		f["width"] = mustJSON(width)
		f["height"] = mustJSON(height)
	}
	if customID != nil {
		f["custom_id"] = mustJSON(*customID)
	}
	return eventSpec{typ: "file", url: fileURL, ctype: contentType, customID: customID, fields: f}
}

// sendEvent adds an agent event; activeOnly refuses (ErrNoActiveThread)
// instead of opening a thread (the bot uses it).
func (a *Agent) sendEvent(chatID string, sp eventSpec, activeOnly bool) (string, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chats[chatID]
	if ch == nil {
		return "", ErrChatNotFound
	}
	th := ch.activeThread()
	if th == nil && activeOnly {
		return "", ErrNoActiveThread
	}
	if _, err := a.chat(chatID, true); err != nil {
		return "", err
	}
	if th == nil {
		th = s.newThread(ch)
		ev := s.addEvent(ch, th, a.id, sp)
		s.pushResult(ch.cust, nil, nil, chatio.PushIncomingChatThread, ch.newThreadPayload(th))
		return ev.id, nil
	}
	ev := s.addEvent(ch, th, a.id, sp)
	s.pushResult(ch.cust, nil, nil, chatio.PushIncomingEvent, map[string]any{"chat_id": ch.id, "thread_id": th.id, "event": ev.raw})
	return ev.id, nil
}

// CloseThread closes the chat's active thread (thread_closed push).
func (a *Agent) CloseThread(chatID string) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, false)
	if err != nil {
		return err
	}
	th := ch.activeThread()
	if th == nil {
		return ErrNoActiveThread
	}
	_, _ = a.chat(chatID, true)
	th.active = false
	s.bump(ch)
	s.pushResult(ch.cust, nil, nil, chatio.PushThreadClosed, map[string]string{"chat_id": ch.id})
	return nil
}

// UpdateChatProperties merges props into the chat's properties
// ({namespace: {key: value}}) and pushes chat_properties_updated with props.
func (a *Agent) UpdateChatProperties(chatID string, props map[string]any) error {
	raw, err := propsRaw(props)
	if err != nil {
		return err
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, true)
	if err != nil {
		return err
	}
	ch.props.merge(raw)
	s.pushResult(ch.cust, nil, nil, chatio.PushChatPropertiesUpdated, map[string]any{"chat_id": ch.id, "properties": raw})
	return nil
}

// UpdateThreadProperties does the same for a thread ("" → the newest) and
// pushes chat_thread_properties_updated.
func (a *Agent) UpdateThreadProperties(chatID, threadID string, props map[string]any) error {
	raw, err := propsRaw(props)
	if err != nil {
		return err
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, false)
	if err != nil {
		return err
	}
	var th *thread
	if threadID == "" && len(ch.threads) > 0 {
		th = ch.threads[len(ch.threads)-1]
	} else {
		th = ch.thread(threadID)
	}
	if th == nil {
		return ErrThreadNotFound
	}
	_, _ = a.chat(chatID, true)
	th.props.merge(raw)
	s.pushResult(ch.cust, nil, nil, chatio.PushChatThreadPropertiesUpdated, map[string]any{"chat_id": ch.id, "thread_id": th.id, "properties": raw})
	return nil
}

func propsRaw(props map[string]any) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(props)
	if err != nil {
		return nil, err
	}
	a := args{"properties": b}
	m, e := parseProperties(a, "properties", true)
	if e != nil {
		return nil, errors.New("chatiosim: " + e.msg)
	}
	return m, nil
}

// MarkSeen records that the agent has seen the chat up to t and pushes
// last_seen_timestamp_updated (seconds).
func (a *Agent) MarkSeen(chatID string, t time.Time) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := a.chat(chatID, true)
	if err != nil {
		return err
	}
	ts := t.Unix()
	ch.lastSeen[a.id] = ts
	s.pushResult(ch.cust, nil, nil, chatio.PushLastSeenTimestampUpdated, map[string]any{"chat_id": ch.id, "user_id": a.id, "timestamp": ts})
	return nil
}
