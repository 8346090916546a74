package chatiosim

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// handler answers one request of a logged-in customer, with Server.mu held.
type handler func(s *Server, sk *socket, req *request, c *customer, a args)

var handlers = map[string]handler{
	chatio.ActionGetChatsSummary:            (*Server).getChatsSummary,
	chatio.ActionGetChatThreads:             (*Server).getChatThreads,
	chatio.ActionGetChatThreadsSummary:      (*Server).getChatThreadsSummary,
	chatio.ActionSendSneakPeek:              (*Server).sendSneakPeek,
	chatio.ActionUpdateCustomer:             (*Server).updateCustomer,
	chatio.ActionStartChat:                  (*Server).startChat,
	chatio.ActionSendEvent:                  (*Server).sendEvent,
	chatio.ActionCloseThread:                (*Server).closeThread,
	chatio.ActionUpdateChatProperties:       (*Server).updateChatProperties,
	chatio.ActionUpdateChatThreadProperties: (*Server).updateChatThreadProperties,
	chatio.ActionUpdateLastSeenTimestamp:    (*Server).updateLastSeenTimestamp,
}

func (s *Server) dispatch(sk *socket, req *request) {
	if req.action == chatio.ActionPing {
		sk.respond(req, nil)
		return
	}
	a, e := parseArgs(req.payload)
	if e != nil {
		sk.fail(req, e.typ, e.msg)
		return
	}
	if req.action == chatio.ActionLogin {
		s.login(sk, req, a)
		return
	}
	h := handlers[req.action]
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sk.cust
	switch {
	case c == nil:
		sk.fail(req, chatio.ErrTypeAuthentication, "Customer is not logged in")
	case h == nil:
		sk.fail(req, chatio.ErrTypeValidation, "Unknown action: "+req.action)
	default:
		h(s, sk, req, c, a)
	}
}

func (s *Server) login(sk *socket, req *request, a args) {
	s.mu.Lock()
	already := sk.cust != nil
	s.mu.Unlock()
	if already {
		sk.fail(req, chatio.ErrTypeValidation, "Customer is already logged in")
		return
	}
	tok, e := a.str("token")
	if e != nil {
		sk.fail(req, chatio.ErrTypeAuthentication, "Missing access token")
		return
	}
	bearer, ok := strings.CutPrefix(tok, "Bearer ")
	if !ok {
		sk.fail(req, chatio.ErrTypeAuthentication, "Unsupported token type (expected Bearer)")
		return
	}
	id, err := s.cfg.Tokens(bearer)
	if err != nil {
		s.log.Debug("login refused", zap.Error(err)) // never the token
		sk.fail(req, chatio.ErrTypeAuthentication, err.Error())
		return
	}
	cm, e := a.optObj("customer")
	if e != nil {
		sk.fail(req, e.typ, e.msg)
		return
	}
	d, e := parseCustomerData(cm)
	if e != nil {
		sk.fail(req, e.typ, e.msg)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-sk.done: // the socket is gone: do not index it
		return
	default:
	}
	c := s.getCustomer(id)
	c.apply(d)
	sk.cust = c
	sk.custID.Store(&id)
	c.sockets = append(c.sockets, sk)
	sk.respond(req, chatio.LoginResult{CustomerID: id})
	s.notify(Activity{Action: chatio.ActionLogin, CustomerID: id, Payload: a["customer"]})
}

// chatOf returns the chat chatID of c: validation when chat_id is missing
// or not a string, not_found when there is no such chat or it is not c's.
func (s *Server) chatOf(c *customer, a args) (*chat, *apiErr) {
	id, e := a.str("chat_id")
	if e != nil {
		return nil, e
	}
	ch := s.chats[id]
	if ch == nil || ch.cust != c {
		return nil, notFound("Chat not found")
	}
	return ch, nil
}

// pushResult sends push action to every socket of c: with req's id to origin
// (the result of req), without id to the others.
func (s *Server) pushResult(c *customer, origin *socket, req *request, action string, payload any) {
	p := mustJSON(payload)
	var plain []byte
	for _, x := range c.sockets {
		if x == origin && req != nil {
			x.send(encodeFrame(req.id, action, chatio.TypePush, nil, p))
			continue
		}
		if plain == nil {
			plain = encodeFrame(nil, action, chatio.TypePush, nil, p)
		}
		x.send(plain)
	}
}

func fail(sk *socket, req *request, e *apiErr) { sk.fail(req, e.typ, e.msg) }

func (s *Server) getChatsSummary(sk *socket, req *request, c *customer, a args) {
	offset, e := a.optInt("offset", 0, 0, math.MaxInt32, "")
	if e != nil {
		fail(sk, req, e)
		return
	}
	limit, e := a.optInt("limit", 10, 1, 25, "Specified limit is too high (max 25).")
	if e != nil {
		fail(sk, req, e)
		return
	}
	chats := c.sortedChats()
	out := []wireChatSummary{}
	for i := offset; i < len(chats) && len(out) < limit; i++ {
		out = append(out, chats[i].summary())
	}
	sk.respond(req, map[string]any{"chats_summary": out, "total_chats": len(chats)})
}

func (s *Server) getChatThreads(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	var ids []string
	if !a.present("thread_ids") || json.Unmarshal(a["thread_ids"], &ids) != nil {
		fail(sk, req, validation("thread_ids must be an array of strings"))
		return
	}
	if len(ids) == 0 {
		fail(sk, req, validation("thread_ids must not be empty"))
		return
	}
	out := wireThreadsChat{ID: ch.id, Threads: make([]wireThread, 0, len(ids)), Users: ch.users(false)}
	for _, id := range ids {
		th := ch.thread(id)
		if th == nil {
			fail(sk, req, notFound("Thread not found: "+id))
			return
		}
		out.Threads = append(out.Threads, th.wire())
	}
	sk.respond(req, map[string]any{"chat": out})
}

func (s *Server) getChatThreadsSummary(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	offset, e := a.optInt("offset", 0, 0, math.MaxInt32, "")
	if e != nil {
		fail(sk, req, e)
		return
	}
	limit, e := a.optInt("limit", 25, 1, 1000, "Specified limit is too high (max 1000).")
	if e != nil {
		fail(sk, req, e)
		return
	}
	out := []wireThreadSummary{}
	for i := len(ch.threads) - 1 - offset; i >= 0 && len(out) < limit; i-- {
		th := ch.threads[i]
		out = append(out, wireThreadSummary{ID: th.id, Order: th.order, EventsCount: len(th.events)})
	}
	sk.respond(req, map[string]any{"threads_summary": out, "total_threads": len(ch.threads)})
}

func (s *Server) sendSneakPeek(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	if !a.present("sneak_peek_text") {
		fail(sk, req, validation("sneak_peek_text is required"))
		return
	}
	text, e := a.optStr("sneak_peek_text")
	if e != nil {
		fail(sk, req, e)
		return
	}
	ch.sneakPeek = text
	sk.respond(req, map[string]bool{"success": true})
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, Payload: req.payload})
}

func (s *Server) updateCustomer(sk *socket, req *request, c *customer, a args) {
	m, e := a.obj("customer")
	if e != nil {
		fail(sk, req, e)
		return
	}
	d, e := parseCustomerData(m)
	if e != nil {
		fail(sk, req, e)
		return
	}
	c.apply(d)
	sk.respond(req, map[string]bool{"success": true})
	s.pushResult(c, sk, req, chatio.PushCustomerUpdated, map[string]any{"customer": c.wire(nil)})
	s.notify(Activity{Action: req.action, CustomerID: c.id, Payload: req.payload})
}

func (s *Server) startChat(sk *socket, req *request, c *customer, a args) {
	if _, e := a.optObj("routing_scope"); e != nil {
		fail(sk, req, e)
		return
	}
	props, e := parseProperties(a, "properties", false)
	if e != nil {
		fail(sk, req, e)
		return
	}
	var specs []eventSpec
	if a.present("events") {
		var raws []json.RawMessage
		if json.Unmarshal(a["events"], &raws) != nil {
			fail(sk, req, validation("events must be an array"))
			return
		}
		for _, r := range raws {
			sp, e := parseEvent(r)
			if e != nil {
				fail(sk, req, e)
				return
			}
			specs = append(specs, sp)
		}
	}
	p := properties{}
	p.merge(props)
	ch := s.newChat(c, p)
	th := ch.activeThread()
	evs := make([]Event, 0, len(specs))
	for _, sp := range specs {
		evs = append(evs, s.addEvent(ch, th, c.id, sp).info(ch.id))
	}
	sk.respond(req, nil)
	s.pushResult(c, sk, req, chatio.PushIncomingChatThread, ch.newThreadPayload(th))
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, ThreadID: th.id, NewThread: true, Events: evs, Payload: req.payload})
}

// addCustomerEvent adds an event by c to ch, opening a thread (and routing)
// when ch has none active, and pushes the result.
func (s *Server) addCustomerEvent(sk *socket, req *request, c *customer, ch *chat, sp eventSpec, action string, payload json.RawMessage) Event {
	th := ch.activeThread()
	newThread := th == nil
	if newThread {
		s.route(ch)
		th = s.newThread(ch)
	}
	ev := s.addEvent(ch, th, c.id, sp)
	if req != nil {
		sk.respond(req, nil)
	}
	if newThread {
		s.pushResult(c, sk, req, chatio.PushIncomingChatThread, ch.newThreadPayload(th))
	} else {
		s.pushResult(c, sk, req, chatio.PushIncomingEvent, map[string]any{"chat_id": ch.id, "thread_id": th.id, "event": ev.raw})
	}
	info := ev.info(ch.id)
	s.notify(Activity{Action: action, CustomerID: c.id, ChatID: ch.id, ThreadID: th.id, NewThread: newThread, Events: []Event{info}, Payload: payload})
	return info
}

func (s *Server) sendEvent(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	if !a.present("event") {
		fail(sk, req, validation("event is required"))
		return
	}
	sp, e := parseEvent(a["event"])
	if e != nil {
		fail(sk, req, e)
		return
	}
	s.addCustomerEvent(sk, req, c, ch, sp, req.action, req.payload)
}

func (s *Server) closeThread(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	th := ch.activeThread()
	if th == nil {
		fail(sk, req, validation("Chat has no active thread"))
		return
	}
	th.active = false
	s.bump(ch)
	sk.respond(req, nil)
	s.pushResult(c, sk, req, chatio.PushThreadClosed, map[string]string{"chat_id": ch.id})
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, ThreadID: th.id, Payload: req.payload})
}

func (s *Server) updateChatProperties(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	props, e := parseProperties(a, "properties", true)
	if e != nil {
		fail(sk, req, e)
		return
	}
	ch.props.merge(props)
	sk.respond(req, nil)
	s.pushResult(c, sk, req, chatio.PushChatPropertiesUpdated, map[string]any{"chat_id": ch.id, "properties": props})
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, Payload: req.payload})
}

func (s *Server) updateChatThreadProperties(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	tid, e := a.str("thread_id")
	if e != nil {
		fail(sk, req, e)
		return
	}
	th := ch.thread(tid)
	if th == nil {
		fail(sk, req, notFound("Thread not found"))
		return
	}
	props, e := parseProperties(a, "properties", true)
	if e != nil {
		fail(sk, req, e)
		return
	}
	th.props.merge(props)
	sk.respond(req, nil)
	s.pushResult(c, sk, req, chatio.PushChatThreadPropertiesUpdated, map[string]any{"chat_id": ch.id, "thread_id": th.id, "properties": props})
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, ThreadID: th.id, Payload: req.payload})
}

func (s *Server) updateLastSeenTimestamp(sk *socket, req *request, c *customer, a args) {
	ch, e := s.chatOf(c, a)
	if e != nil {
		fail(sk, req, e)
		return
	}
	ts := time.Now().Unix()
	if a.present("timestamp") {
		var f float64
		if json.Unmarshal(a["timestamp"], &f) != nil || f < 0 {
			fail(sk, req, validation("timestamp must be a non-negative number of seconds"))
			return
		}
		ts = int64(f)
	}
	ch.lastSeen[c.id] = ts
	sk.respond(req, nil)
	s.pushResult(c, sk, req, chatio.PushLastSeenTimestampUpdated, map[string]any{"chat_id": ch.id, "user_id": c.id, "timestamp": ts})
	s.notify(Activity{Action: req.action, CustomerID: c.id, ChatID: ch.id, Payload: req.payload})
}
