package chatiosim

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// The in-memory model. Everything here is guarded by Server.mu.

type customer struct {
	id      string
	name    string
	email   string
	fields  map[string]json.RawMessage // never nil
	chats   []*chat                    // creation order
	sockets []*socket                  // logged-in, open sockets
}

type agentState struct {
	id, name, email, avatar string
}

type chat struct {
	id         string
	order      int64  // creation, unix seconds
	seq        uint64 // server-wide activity sequence: newest activity sorts first
	cust       *customer
	agents     []*agentState // agents currently in the chat
	props      properties
	threads    []*thread // order 1, 2, ...
	lastSeen   map[string]int64
	lastByType map[string]lastRef
	sneakPeek  string
}

type lastRef struct {
	th *thread
	ev *event
}

type thread struct {
	id      string
	order   int
	active  bool
	userIDs []string
	events  []*event
	props   properties
}

type event struct {
	id       string
	typ      string
	author   string
	ts       int64
	order    int
	text     string // message text
	url      string // file url
	ctype    string // file content type
	raw      json.RawMessage
	threadID string
}

// properties are namespaced chat/thread properties: {namespace: value}.
type properties map[string]json.RawMessage

// merge applies an update: a namespace whose old and new values are both
// objects gets its keys merged, any other namespace is replaced.
func (p properties) merge(upd map[string]json.RawMessage) {
	for ns, v := range upd {
		old, ok := p[ns]
		if ok && isObject(old) && isObject(v) {
			var a, b map[string]json.RawMessage
			if json.Unmarshal(old, &a) == nil && json.Unmarshal(v, &b) == nil {
				for k, x := range b {
					a[k] = x
				}
				if enc, err := json.Marshal(a); err == nil {
					p[ns] = enc
					continue
				}
			}
		}
		p[ns] = cloneRaw(v)
	}
}

func (p properties) clone() properties {
	c := make(properties, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

func isObject(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) > 0 && r[0] == '{'
}

func cloneRaw(r json.RawMessage) json.RawMessage {
	if r == nil {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomID() string {
	var b [10]byte
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return string(b[:])
}

func nowSeconds() int64 { return time.Now().Unix() }

// newID returns an id not used yet by a chat or a thread.
func (s *Server) newID() string {
	for {
		id := randomID()
		if _, ok := s.ids[id]; !ok {
			s.ids[id] = struct{}{}
			return id
		}
	}
}

func (s *Server) getCustomer(id string) *customer {
	c := s.customers[id]
	if c == nil {
		c = &customer{id: id, fields: map[string]json.RawMessage{}}
		s.customers[id] = c
	}
	return c
}

func (s *Server) bump(ch *chat) {
	s.seq++
	ch.seq = s.seq
}

// newChat creates a chat of c with a first, active thread. Routing: the demo
// bot (when enabled) is in the chat at once.
func (s *Server) newChat(c *customer, props properties) *chat {
	ch := &chat{
		id:         s.newID(),
		order:      nowSeconds(),
		cust:       c,
		props:      props,
		lastSeen:   map[string]int64{},
		lastByType: map[string]lastRef{},
	}
	if ch.props == nil {
		ch.props = properties{}
	}
	if s.botAgent != nil {
		ch.agents = append(ch.agents, s.botAgent)
	}
	c.chats = append(c.chats, ch)
	s.chats[ch.id] = ch
	s.bump(ch)
	s.newThread(ch)
	return ch
}

// newThread opens a new active thread in ch (any earlier one is inactive).
func (s *Server) newThread(ch *chat) *thread {
	for _, t := range ch.threads {
		t.active = false
	}
	th := &thread{
		id:     s.newID(),
		order:  len(ch.threads) + 1,
		active: true,
		props:  properties{},
	}
	th.userIDs = ch.userIDs()
	ch.threads = append(ch.threads, th)
	s.bump(ch)
	return th
}

// route puts the bot into a chat that gets a new customer thread.
func (s *Server) route(ch *chat) {
	if s.botAgent != nil && ch.agent(s.botAgent.id) == nil {
		ch.agents = append(ch.agents, s.botAgent)
	}
}

func (ch *chat) userIDs() []string {
	ids := make([]string, 0, 1+len(ch.agents))
	ids = append(ids, ch.cust.id)
	for _, a := range ch.agents {
		ids = append(ids, a.id)
	}
	return ids
}

func (ch *chat) agent(id string) *agentState {
	for _, a := range ch.agents {
		if a.id == id {
			return a
		}
	}
	return nil
}

func (ch *chat) activeThread() *thread {
	if n := len(ch.threads); n > 0 && ch.threads[n-1].active {
		return ch.threads[n-1]
	}
	return nil
}

func (ch *chat) thread(id string) *thread {
	for _, t := range ch.threads {
		if t.id == id {
			return t
		}
	}
	return nil
}

// eventSpec is a validated event to add: its type and the fields besides
// id, author_id, timestamp and order.
type eventSpec struct {
	typ      string
	text     string
	url      string
	ctype    string
	customID *string
	fields   map[string]json.RawMessage // for types other than message: every given field
}

// addEvent appends an event by author to th.
func (s *Server) addEvent(ch *chat, th *thread, author string, sp eventSpec) *event {
	ev := &event{
		typ:      sp.typ,
		author:   author,
		ts:       nowSeconds(),
		order:    len(th.events) + 1,
		text:     sp.text,
		url:      sp.url,
		ctype:    sp.ctype,
		threadID: th.id,
	}
	ev.id = th.id + "_" + strconv.Itoa(ev.order)
	if sp.typ == "message" {
		ev.raw = mustJSON(wireMessage{ID: ev.id, Type: "message", AuthorID: author, Timestamp: ev.ts, Order: ev.order, Text: sp.text, CustomID: sp.customID})
	} else {
		m := make(map[string]json.RawMessage, len(sp.fields)+5)
		for k, v := range sp.fields {
			m[k] = v
		}
		m["type"] = mustJSON(sp.typ)
		m["id"] = mustJSON(ev.id)
		m["author_id"] = mustJSON(author)
		m["timestamp"] = mustJSON(ev.ts)
		m["order"] = mustJSON(ev.order)
		ev.raw = mustJSON(m)
	}
	th.events = append(th.events, ev)
	ch.lastByType[ev.typ] = lastRef{th: th, ev: ev}
	s.bump(ch)
	return ev
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chatiosim: marshal: " + err.Error())
	}
	return b
}

// --- wire shapes ---

type wireMessage struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	AuthorID  string  `json:"author_id"`
	Timestamp int64   `json:"timestamp"`
	Order     int     `json:"order"`
	Text      string  `json:"text"`
	CustomID  *string `json:"custom_id,omitempty"`
}

type wireCustomer struct {
	ID       string                     `json:"id"`
	Type     string                     `json:"type"`
	Name     string                     `json:"name,omitempty"`
	Email    string                     `json:"email,omitempty"`
	Fields   map[string]json.RawMessage `json:"fields"`
	LastSeen *int64                     `json:"last_seen_timestamp,omitempty"`
}

type wireAgent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Avatar   string `json:"avatar"`
	LastSeen *int64 `json:"last_seen_timestamp,omitempty"`
}

type wireThread struct {
	ID         string            `json:"id"`
	Active     bool              `json:"active"`
	Order      int               `json:"order"`
	UserIDs    []string          `json:"user_ids"`
	Events     []json.RawMessage `json:"events"`
	Properties properties        `json:"properties"`
}

type wireNewThreadChat struct {
	ID         string     `json:"id"`
	Thread     wireThread `json:"thread"`
	Users      []any      `json:"users"`
	Properties properties `json:"properties"`
}

type wireThreadsChat struct {
	ID      string       `json:"id"`
	Threads []wireThread `json:"threads"`
	Users   []any        `json:"users"`
}

type wireLastEvent struct {
	ThreadID    string          `json:"thread_id"`
	ThreadOrder int             `json:"thread_order"`
	Event       json.RawMessage `json:"event"`
}

type wireChatSummary struct {
	ID               string                   `json:"id"`
	Order            int64                    `json:"order"`
	Users            []any                    `json:"users"`
	Properties       properties               `json:"properties"`
	LastEventPerType map[string]wireLastEvent `json:"last_event_per_type"`
}

type wireThreadSummary struct {
	ID          string `json:"id"`
	Order       int    `json:"order"`
	EventsCount int    `json:"events_count"`
}

func (c *customer) wire(lastSeen *int64) wireCustomer {
	f := c.fields
	if f == nil {
		f = map[string]json.RawMessage{}
	}
	return wireCustomer{ID: c.id, Type: "customer", Name: c.name, Email: c.email, Fields: f, LastSeen: lastSeen}
}

func (a *agentState) wire(lastSeen *int64) wireAgent {
	return wireAgent{ID: a.id, Type: "agent", Name: a.name, Email: a.email, Avatar: a.avatar, LastSeen: lastSeen}
}

// users lists the chat's users (customer first); withSeen adds
// last_seen_timestamp where known.
func (ch *chat) users(withSeen bool) []any {
	seen := func(id string) *int64 {
		if !withSeen {
			return nil
		}
		if t, ok := ch.lastSeen[id]; ok {
			return &t
		}
		return nil
	}
	out := make([]any, 0, 1+len(ch.agents))
	out = append(out, ch.cust.wire(seen(ch.cust.id)))
	for _, a := range ch.agents {
		out = append(out, a.wire(seen(a.id)))
	}
	return out
}

func (th *thread) wire() wireThread {
	evs := make([]json.RawMessage, len(th.events))
	for i, e := range th.events {
		evs[i] = e.raw
	}
	return wireThread{
		ID:         th.id,
		Active:     th.active,
		Order:      th.order,
		UserIDs:    append([]string(nil), th.userIDs...),
		Events:     evs,
		Properties: th.props.clone(),
	}
}

// newThreadPayload is the payload of incoming_chat_thread.
func (ch *chat) newThreadPayload(th *thread) any {
	return map[string]any{"chat": wireNewThreadChat{
		ID:         ch.id,
		Thread:     th.wire(),
		Users:      ch.users(false),
		Properties: ch.props.clone(),
	}}
}

func (ch *chat) summary() wireChatSummary {
	last := make(map[string]wireLastEvent, len(ch.lastByType))
	for typ, r := range ch.lastByType {
		last[typ] = wireLastEvent{ThreadID: r.th.id, ThreadOrder: r.th.order, Event: r.ev.raw}
	}
	return wireChatSummary{
		ID:               ch.id,
		Order:            ch.order,
		Users:            ch.users(true),
		Properties:       ch.props.clone(),
		LastEventPerType: last,
	}
}

// sortedChats returns c's chats, the most recently active first.
func (c *customer) sortedChats() []*chat {
	out := append([]*chat(nil), c.chats...)
	sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
	return out
}
