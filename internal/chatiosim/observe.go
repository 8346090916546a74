package chatiosim

import (
	"encoding/json"
	"sync/atomic"
	"time"
)

// Activity is one customer action the simulator carried out, as seen by
// the agent side (Watch). Only successful actions are reported.
type Activity struct {
	Action     string          `json:"action"`               // the request's action ("login", "send_event", ...) or "send_file"
	CustomerID string          `json:"customer_id"`          // who
	ChatID     string          `json:"chat_id,omitempty"`    // the chat concerned
	ThreadID   string          `json:"thread_id,omitempty"`  // the thread concerned
	NewThread  bool            `json:"new_thread,omitempty"` // the action opened a thread (start_chat, an event to an inactive chat)
	Events     []Event         `json:"events,omitempty"`     // events the action added
	Payload    json.RawMessage `json:"payload,omitempty"`    // the request payload (login: only its "customer")
	Time       time.Time       `json:"time"`                 // when
}

// Event is a chat event, for observation.
type Event struct {
	ID          string          `json:"id"`
	ChatID      string          `json:"chat_id"`
	ThreadID    string          `json:"thread_id"`
	Type        string          `json:"type"`
	AuthorID    string          `json:"author_id"`
	Timestamp   int64           `json:"timestamp"` // unix seconds
	Order       int             `json:"order"`     // within its thread
	Text        string          `json:"text,omitempty"`
	URL         string          `json:"url,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Raw         json.RawMessage `json:"raw"` // the wire object
}

func (e *event) info(chatID string) Event {
	return Event{
		ID: e.id, ChatID: chatID, ThreadID: e.threadID, Type: e.typ, AuthorID: e.author,
		Timestamp: e.ts, Order: e.order, Text: e.text, URL: e.url, ContentType: e.ctype, Raw: cloneRaw(e.raw),
	}
}

// ChatInfo is a snapshot of a chat.
type ChatInfo struct {
	ID         string           `json:"id"`
	CustomerID string           `json:"customer_id"`
	Users      []string         `json:"users"` // customer first, then the agents in the chat
	Properties json.RawMessage  `json:"properties"`
	Threads    []ThreadInfo     `json:"threads"` // by order
	Active     bool             `json:"active"`  // the newest thread is active
	LastSeen   map[string]int64 `json:"last_seen"`
	SneakPeek  string           `json:"sneak_peek,omitempty"` // the customer's last sneak peek text
}

// ThreadInfo is a snapshot of a thread.
type ThreadInfo struct {
	ID         string          `json:"id"`
	Order      int             `json:"order"`
	Active     bool            `json:"active"`
	Events     int             `json:"events"`
	UserIDs    []string        `json:"user_ids"`
	Properties json.RawMessage `json:"properties"`
}

func (ch *chat) info() ChatInfo {
	ci := ChatInfo{
		ID: ch.id, CustomerID: ch.cust.id, Users: ch.userIDs(),
		Properties: mustJSON(ch.props), Active: ch.activeThread() != nil,
		LastSeen: make(map[string]int64, len(ch.lastSeen)), SneakPeek: ch.sneakPeek,
	}
	for k, v := range ch.lastSeen {
		ci.LastSeen[k] = v
	}
	for _, th := range ch.threads {
		ci.Threads = append(ci.Threads, ThreadInfo{
			ID: th.id, Order: th.order, Active: th.active, Events: len(th.events),
			UserIDs: append([]string(nil), th.userIDs...), Properties: mustJSON(th.props),
		})
	}
	return ci
}

// Chats returns the chats of a customer, most recently active first; with
// customerID "" every chat of every customer.
func (s *Server) Chats(customerID string) []ChatInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ChatInfo{}
	if customerID != "" {
		if c := s.customers[customerID]; c != nil {
			for _, ch := range c.sortedChats() {
				out = append(out, ch.info())
			}
		}
		return out
	}
	for _, c := range s.customers {
		for _, ch := range c.chats {
			out = append(out, ch.info())
		}
	}
	return out
}

// Chat returns one chat.
func (s *Server) Chat(chatID string) (ChatInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chats[chatID]
	if ch == nil {
		return ChatInfo{}, false
	}
	return ch.info(), true
}

// Events returns every event of a chat in order (thread by thread).
func (s *Server) Events(chatID string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Event{}
	ch := s.chats[chatID]
	if ch == nil {
		return out
	}
	for _, th := range ch.threads {
		for _, e := range th.events {
			out = append(out, e.info(ch.id))
		}
	}
	return out
}

// OpenSockets returns the number of open customer sockets (logged in or not).
func (s *Server) OpenSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// CustomerSockets returns the number of open, logged-in sockets of a customer.
func (s *Server) CustomerSockets(customerID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.customers[customerID]; c != nil {
		return len(c.sockets)
	}
	return 0
}

type watcher struct {
	ch      chan Activity
	dropped *atomic.Uint64
}

// Watch delivers every customer Activity on a channel with the given buffer
// (minimum 1). Delivery never blocks the simulator: when the channel is
// full the activity is dropped and counted (Stats.WatchDropped). The
// returned cancel stops delivery and closes the channel; Close does too.
func (s *Server) Watch(buffer int) (<-chan Activity, func()) {
	return s.watch(buffer, nil)
}

func (s *Server) watch(buffer int, dropped *atomic.Uint64) (<-chan Activity, func()) {
	if buffer < 1 {
		buffer = 1
	}
	w := &watcher{ch: make(chan Activity, buffer), dropped: dropped}
	s.watchMu.Lock()
	select {
	case <-s.closing:
		close(w.ch)
		s.watchMu.Unlock()
		return w.ch, func() {}
	default:
	}
	s.watchers[w] = struct{}{}
	s.watchMu.Unlock()
	return w.ch, func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		if _, ok := s.watchers[w]; ok {
			delete(s.watchers, w)
			close(w.ch)
		}
	}
}

// notify delivers a to every watcher (called with s.mu held, so that
// watchers see activities in the order they happened).
func (s *Server) notify(a Activity) {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for w := range s.watchers {
		select {
		case w.ch <- a:
		default:
			if w.dropped != nil {
				w.dropped.Add(1)
			} else {
				s.nDropped.Add(1)
			}
		}
	}
}

// closeWatchers closes every Watch channel (Close).
func (s *Server) closeWatchers() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for w := range s.watchers {
		delete(s.watchers, w)
		close(w.ch)
	}
}
