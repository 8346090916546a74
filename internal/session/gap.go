package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// Gap filling. The upstream never re-sends pushes a dropped socket missed
// (docs/PROTOCOL.md); after a reconnect the session reads back, for every chat
// it has seen, the events after the last one it delivered, and emits them
// as new_event before connection_restored. The chatTracker remembers, per
// chat, that last delivered event by wire order; it also drops pushes of
// the new connection that the gap fill already delivered.

const (
	maxTrackedChats   = 1024 // chats remembered for gap filling
	maxSeenPerChat    = 256  // recent event ids remembered per chat
	maxThreadsPerChat = 64   // thread orders remembered per chat
	gapSummaryLimit   = 25   // threads per look-up when filling a gap (a summary page, a get_chat_threads)
	maxGapThreads     = 200  // newest threads of a chat a gap fill reads back at most
)

// wireDelivery is what a frame delivers, read from the wire payload: the
// events of one thread of one chat, with their wire orders.
type wireDelivery struct {
	chat        string
	thread      string
	threadOrder float64
	hasOrder    bool
	newThread   bool // incoming_chat_thread: the whole thread
	events      []wireEventRef
}

type wireEventRef struct {
	id       string
	order    float64
	hasOrder bool
}

// wireNumber parses a JSON number.
func wireNumber(r json.RawMessage) (float64, bool) {
	if len(r) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	return f, err == nil
}

type wireEvent struct {
	ID    string          `json:"id"`
	Order json.RawMessage `json:"order"`
}

func (e wireEvent) ref() wireEventRef {
	o, ok := wireNumber(e.Order)
	return wireEventRef{id: e.ID, order: o, hasOrder: ok}
}

type wireThread struct {
	ID     string          `json:"id"`
	Order  json.RawMessage `json:"order"`
	Events []wireEvent     `json:"events"`
}

// parseWireDelivery reads incoming_event and incoming_chat_thread frames
// (plain pushes and send_event/start_chat results alike); nil otherwise or
// when the payload is not as expected.
func parseWireDelivery(f chatio.Frame) *wireDelivery {
	if f.Action == chatio.PushIncomingEvent {
		if d, ok := scanIncomingEventOf(f.Payload, f.Checked); ok {
			return d
		}
	}
	return decodeWireDelivery(f)
}

// scanIncomingEvent is decodeWireDelivery of an incoming_event payload
// without encoding/json, for the payloads the protocol sends: members
// named exactly, ids plain strings (no escapes, valid UTF-8), the event an
// object. False when it cannot tell (the decoder then decides: keys that
// only match case-insensitively, escapes, null, wrong types).
// FuzzWireDelivery holds it to the decoder. It costs a push a fifth of
// the decoder's allocations, and a shallow stack on the read loop. The
// payload is validated once; the event inside it is not validated again.
func scanIncomingEvent(payload json.RawMessage) (*wireDelivery, bool) {
	return scanIncomingEventOf(payload, false)
}

// scanIncomingEventOf is scanIncomingEvent; checked: the payload is a
// chatio.Frame's that is Checked, valid already and not validated again.
func scanIncomingEventOf(payload json.RawMessage, checked bool) (*wireDelivery, bool) {
	var chat, thread, id string
	var order json.RawMessage
	ok := true
	member := func(k string, v json.RawMessage) {
		switch k {
		case "chat_id":
			chat, ok = plainString(v, ok)
		case "thread_id":
			thread, ok = plainString(v, ok)
		case "event":
			isObject := jsonobj.EachValidMember(v, func(k string, v json.RawMessage) { // a member of a valid payload
				switch k {
				case "id":
					id, ok = plainString(v, ok)
				case "order":
					order = v
				default:
					ok = ok && !strings.EqualFold(k, "id") && !strings.EqualFold(k, "order")
				}
			})
			ok = ok && isObject
		default:
			ok = ok && !strings.EqualFold(k, "chat_id") && !strings.EqualFold(k, "thread_id") && !strings.EqualFold(k, "event")
		}
	}
	var valid bool
	if checked {
		valid = jsonobj.EachValidMember(payload, member)
	} else {
		valid = jsonobj.EachMember(payload, member)
	}
	if !valid || !ok {
		return nil, false
	}
	if chat == "" || id == "" {
		return nil, true
	}
	o, has := wireNumber(order)
	return &wireDelivery{chat: chat, thread: thread, events: []wireEventRef{{id: id, order: o, hasOrder: has}}}, true
}

// plainString is jsonobj.PlainString as a string; ok false when v is not
// plain, or when ok was false already.
func plainString(v json.RawMessage, ok bool) (string, bool) {
	s, plain := jsonobj.PlainString(v)
	if !ok || !plain {
		return "", false
	}
	return string(s), true
}

// decodeWireDelivery is parseWireDelivery with encoding/json.
func decodeWireDelivery(f chatio.Frame) *wireDelivery {
	switch f.Action {
	case chatio.PushIncomingEvent:
		var p struct {
			ChatID   string    `json:"chat_id"`
			ThreadID string    `json:"thread_id"`
			Event    wireEvent `json:"event"`
		}
		if json.Unmarshal(f.Payload, &p) != nil || p.ChatID == "" || p.Event.ID == "" {
			return nil
		}
		return &wireDelivery{chat: p.ChatID, thread: p.ThreadID, events: []wireEventRef{p.Event.ref()}}
	case chatio.PushIncomingChatThread:
		var p struct {
			Chat struct {
				ID     string     `json:"id"`
				Thread wireThread `json:"thread"`
			} `json:"chat"`
		}
		if json.Unmarshal(f.Payload, &p) != nil || p.Chat.ID == "" || p.Chat.Thread.ID == "" {
			return nil
		}
		d := &wireDelivery{chat: p.Chat.ID, thread: p.Chat.Thread.ID, newThread: true}
		d.threadOrder, d.hasOrder = wireNumber(p.Chat.Thread.Order)
		for _, e := range p.Chat.Thread.Events {
			d.events = append(d.events, e.ref())
		}
		sortRefs(d.events)
		return d
	}
	return nil
}

func sortRefs(refs []wireEventRef) {
	sort.SliceStable(refs, func(i, j int) bool {
		return refs[i].hasOrder && refs[j].hasOrder && refs[i].order < refs[j].order
	})
}

// chatTrack is what the session knows of one chat.
type chatTrack struct {
	thread     string // thread of the last delivered event ("" none yet)
	eventID    string // the last delivered event
	eventOrder float64
	hasEvOrder bool
	threads    map[string]float64 // known threads → order (NaN-free; bounded)
	threadFIFO []string
	seen       map[string]struct{} // recent event ids (bounded)
	seenFIFO   []string
}

func (t *chatTrack) knowThread(id string, order float64) {
	if _, ok := t.threads[id]; ok {
		t.threads[id] = order
		return
	}
	if len(t.threadFIFO) >= maxThreadsPerChat {
		delete(t.threads, t.threadFIFO[0])
		t.threadFIFO = t.threadFIFO[1:]
	}
	t.threads[id] = order
	t.threadFIFO = append(t.threadFIFO, id)
}

func (t *chatTrack) see(id string) {
	if _, ok := t.seen[id]; ok {
		return
	}
	if len(t.seenFIFO) >= maxSeenPerChat {
		delete(t.seen, t.seenFIFO[0])
		t.seenFIFO = t.seenFIFO[1:]
	}
	t.seen[id] = struct{}{}
	t.seenFIFO = append(t.seenFIFO, id)
}

// chatTracker is used by one goroutine at a time: whoever handles the
// session's stream items (see Session.tracker).
type chatTracker struct {
	chats map[string]*chatTrack
	order []string // insertion order, for the bound
}

func newChatTracker() *chatTracker {
	return &chatTracker{chats: make(map[string]*chatTrack)}
}

func (tr *chatTracker) get(chat string, create bool) *chatTrack {
	if t, ok := tr.chats[chat]; ok || !create {
		return t
	}
	if len(tr.order) >= maxTrackedChats {
		delete(tr.chats, tr.order[0])
		tr.order = tr.order[1:]
	}
	t := &chatTrack{threads: make(map[string]float64), seen: make(map[string]struct{})}
	tr.chats[chat] = t
	tr.order = append(tr.order, chat)
	return t
}

// duplicate: the frame's events were all delivered already (by a gap fill).
func (tr *chatTracker) duplicate(d *wireDelivery) bool {
	t := tr.get(d.chat, false)
	if t == nil {
		return false
	}
	if d.newThread {
		_, known := t.threads[d.thread]
		return known
	}
	for _, e := range d.events {
		if _, ok := t.seen[e.id]; !ok {
			return false
		}
	}
	return len(d.events) > 0
}

// delivered records that d's events reached the log.
func (tr *chatTracker) delivered(d *wireDelivery) {
	t := tr.get(d.chat, true)
	if d.hasOrder {
		t.knowThread(d.thread, d.threadOrder)
	}
	if d.newThread {
		// A thread that just started is the chat's newest, even without
		// events (start_chat): whatever comes later in it is news.
		t.thread, t.eventID, t.eventOrder, t.hasEvOrder = d.thread, "", 0, false
	}
	for _, e := range d.events {
		tr.advance(t, d.thread, e)
	}
}

// advance moves the chat's "last delivered" to e of thread, unless e is
// older than what is already recorded.
func (tr *chatTracker) advance(t *chatTrack, thread string, e wireEventRef) {
	t.see(e.id)
	if t.thread != "" && t.thread != thread {
		cur, okCur := t.threads[t.thread]
		nw, okNew := t.threads[thread]
		if okCur && okNew && nw < cur {
			return // an event of an older thread
		}
	}
	if t.thread == thread && t.hasEvOrder && e.hasOrder && e.order < t.eventOrder {
		return
	}
	t.thread, t.eventID, t.eventOrder, t.hasEvOrder = thread, e.id, e.order, e.hasOrder
}

// seedFromSummary records, for chats not tracked yet, the newest event of
// a get_chats_summary answer (last_event_per_type), so that a chat the
// customer had before the session started is gap-filled too.
func (tr *chatTracker) seedFromSummary(payload json.RawMessage) {
	var p struct {
		ChatsSummary []struct {
			ID               string `json:"id"`
			LastEventPerType map[string]struct {
				ThreadID    string          `json:"thread_id"`
				ThreadOrder json.RawMessage `json:"thread_order"`
				Event       wireEvent       `json:"event"`
			} `json:"last_event_per_type"`
		} `json:"chats_summary"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return
	}
	for _, cs := range p.ChatsSummary {
		if cs.ID == "" || len(cs.LastEventPerType) == 0 || tr.get(cs.ID, false) != nil {
			continue
		}
		t := tr.get(cs.ID, true)
		type cand struct {
			thread string
			to     float64
			ev     wireEventRef
		}
		var cands []cand
		for _, le := range cs.LastEventPerType {
			to, ok := wireNumber(le.ThreadOrder)
			if !ok || le.ThreadID == "" || le.Event.ID == "" {
				continue
			}
			t.knowThread(le.ThreadID, to)
			cands = append(cands, cand{le.ThreadID, to, le.Event.ref()})
		}
		sort.SliceStable(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if a.to != b.to {
				return a.to < b.to
			}
			return a.ev.order < b.ev.order
		})
		for _, c := range cands {
			tr.advance(t, c.thread, c.ev)
		}
	}
}

// newestInSummary returns, per chat of a get_chats_summary answer, the id
// of its newest event (the SDK's lastEvent: newest by thread order, then
// event order), and whether the answer lists every chat of the customer.
func newestInSummary(payload json.RawMessage) (map[string]string, bool) {
	var p struct {
		ChatsSummary []struct {
			ID               string `json:"id"`
			LastEventPerType map[string]struct {
				ThreadOrder json.RawMessage `json:"thread_order"`
				Event       wireEvent       `json:"event"`
			} `json:"last_event_per_type"`
		} `json:"chats_summary"`
		TotalChats json.RawMessage `json:"total_chats"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return nil, false
	}
	out := make(map[string]string, len(p.ChatsSummary))
	for _, cs := range p.ChatsSummary {
		var bestT, bestE float64
		best := ""
		for _, le := range cs.LastEventPerType {
			to, _ := wireNumber(le.ThreadOrder)
			eo, _ := wireNumber(le.Event.Order)
			if best == "" || to > bestT || to == bestT && eo > bestE {
				best, bestT, bestE = le.Event.ID, to, eo
			}
		}
		out[cs.ID] = best
	}
	total, ok := wireNumber(p.TotalChats)
	return out, ok && int(total) <= len(p.ChatsSummary)
}

// fillGaps emits, for every tracked chat that missed something, the events
// after the last delivered one, read back through c. summary is the
// get_chats_summary answer of the new connection: a chat whose newest event
// there is the last one delivered missed nothing and costs no request.
//
// A chat the upstream cannot read back at all (chatUnreadable) is logged,
// counted (gateway_gap_fill_incomplete_total{reason="unreadable"}) and
// skipped. Any other failure is returned, and the restore with it: a
// look-up that timed out, or that the upstream refused for a trouble of its
// own, would leave the chat's gap unfilled behind connection_restored, and
// for good: the new connection's pushes move the chat past the gap, and the
// next reconnect's summary finds nothing missing. The session dials again
// instead; what this fill delivered before the failure stays delivered.
func (s *Session) fillGaps(ctx context.Context, c *chatio.Client, summary json.RawMessage) error {
	tr := s.tracker
	newest, complete := newestInSummary(summary)
	chats := append([]string(nil), tr.order...)
	for _, chat := range chats {
		t := tr.get(chat, false)
		if t == nil || t.thread == "" {
			continue
		}
		if id, listed := newest[chat]; listed {
			if _, seen := t.seen[id]; seen || id == "" {
				continue
			}
		} else if complete {
			continue // not the customer's any more
		}
		if err := s.fillChat(ctx, c, chat, t); err != nil {
			if !chatUnreadable(err) {
				return fmt.Errorf("gap fill: %w", err)
			}
			s.gapIncomplete(gapUnreadable, "gap fill: the chat cannot be read back; its missed events are not delivered", zap.Error(err))
		}
	}
	return nil
}

// Why a gap fill could not read a chat's gap back whole (the reason label
// of gateway_gap_fill_incomplete_total).
const (
	gapUnreadable     = "unreadable"       // the upstream refuses to read the chat back (chatUnreadable)
	gapTooManyThreads = "too_many_threads" // the last delivered thread is older than the newest maxGapThreads
	gapThreadUnknown  = "thread_unknown"   // the last delivered thread is not in the chat's list, its order unknown
)

// gapIncompleteReasons: every reason of gateway_gap_fill_incomplete_total.
var gapIncompleteReasons = []string{gapUnreadable, gapTooManyThreads, gapThreadUnknown}

// gapIncomplete says that a gap fill left events of a chat out: a warning
// and the metric, never silently.
func (s *Session) gapIncomplete(reason, msg string, fields ...zap.Field) {
	s.pool.m.gapIncomplete.WithLabelValues(reason).Inc()
	s.log.Warn(msg, append(fields, zap.String("reason", reason))...)
}

// chatUnreadable reports whether err, a gap fill's look-up failure, says
// that the chat cannot be read back however often it is asked: it is not
// there (not the customer's any more), the request is refused as invalid,
// or the answer is one the gateway cannot read. Timeouts, lost connections
// and the upstream's other error answers (request_timeout,
// pending_requests_limit_reached, too_many_requests, internal, ...) may
// pass.
func chatUnreadable(err error) bool {
	var re *chatio.RequestError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Type {
	case chatio.ErrTypeNotFound, chatio.ErrTypeValidation, chatio.ErrTypeInvalidAnswer:
		return true
	}
	return false
}

// fillChat reads back what chat missed after t's last delivered event:
// the rest of that thread and every newer thread (gapThreads), read
// gapSummaryLimit threads at a time, oldest first, and publishes them.
func (s *Session) fillChat(ctx context.Context, c *chatio.Client, chat string, t *chatTrack) error {
	ids, err := s.gapThreads(ctx, c, chat, t)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(len(ids), gapSummaryLimit)
		if err := s.fillThreads(ctx, c, chat, t, ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// gapThreads lists, oldest first, the threads of chat a gap fill reads
// back: t's last delivered thread and the newer ones. It pages through the
// chat's thread summaries (newest first) until it meets the last delivered
// thread, a thread older than it, or the end of the list, reading at most
// maxGapThreads: when the last delivered thread is older than those, the
// newest maxGapThreads are read back and the rest is reported left out
// (gapIncomplete); when it is not in the whole list and its order is
// unknown, nothing can be told newer than it, and that is reported too.
func (s *Session) gapThreads(ctx context.Context, c *chatio.Client, chat string, t *chatTrack) ([]string, error) {
	lastOrder, known := t.threads[t.thread]
	var (
		listed []chatio.ThreadSummaryEntry // newest first
		whole  bool                        // the list goes back to it, or to the chat's first thread
	)
	for offset := 0; offset < maxGapThreads && !whole; offset += gapSummaryLimit {
		raw, err := c.GetChatThreadsSummary(ctx, chat, offset, gapSummaryLimit)
		if err != nil {
			return nil, err
		}
		sum, err := chatio.ParseThreadsSummary(raw)
		if err != nil {
			return nil, err
		}
		for _, ts := range sum.Threads {
			o, ok := wireNumber(ts.Order)
			switch {
			case ts.ID == t.thread:
				lastOrder, known, whole = o, ok, true
			case known && ok && o < lastOrder:
				whole = true // older than the last delivered thread: the list is past it
			}
			listed = append(listed, ts)
		}
		total, ok := wireNumber(sum.Total)
		if len(sum.Threads) < gapSummaryLimit || ok && offset+len(sum.Threads) >= int(total) {
			whole = true // the chat's first thread is listed
		}
	}
	switch {
	case !whole:
		// Every thread listed is newer than the last delivered one, its
		// order known or not.
		s.gapIncomplete(gapTooManyThreads, "gap fill: the chat's last delivered thread is older than its newest threads read back; the events of the threads between are not delivered",
			zap.Int("threads_read", len(listed)))
		if !known {
			lastOrder = math.Inf(-1)
		}
	case !known:
		s.gapIncomplete(gapThreadUnknown, "gap fill: the chat's last delivered thread is not among its threads and its order is unknown; its missed events are not delivered",
			zap.Int("threads_read", len(listed)))
		return nil, nil
	}
	var ids []string
	for i := len(listed) - 1; i >= 0; i-- {
		if o, ok := wireNumber(listed[i].Order); ok && o >= lastOrder {
			ids = append(ids, listed[i].ID)
		}
	}
	return ids, nil
}

// fillThreads reads back threads ids of chat (oldest first, at most
// gapSummaryLimit) and publishes what t has not delivered of them.
func (s *Session) fillThreads(ctx context.Context, c *chatio.Client, chat string, t *chatTrack, ids []string) error {
	raw, err := c.GetChatThreads(ctx, chat, ids)
	if err != nil {
		return err
	}
	var wire struct {
		Chat struct {
			Threads []wireThread `json:"threads"`
		} `json:"chat"`
	}
	parsed, err := sdk.ParseChatThreads(raw)
	if err == nil {
		err = json.Unmarshal(raw, &wire)
	}
	if err != nil {
		return &chatio.RequestError{Action: chatio.ActionGetChatThreads, Type: chatio.ErrTypeInvalidAnswer, Message: err.Error()}
	}
	wireByID := make(map[string]wireThread, len(wire.Chat.Threads))
	for _, wt := range wire.Chat.Threads {
		wireByID[wt.ID] = wt
	}

	var evs []sdk.Event
	var newThreads bool
	var steps []*wireDelivery
	for _, th := range parsed { // sorted by order, oldest first
		id := jsonString(th.Raw("id"))
		wt, ok := wireByID[id]
		if !ok {
			continue
		}
		refs := make([]wireEventRef, 0, len(wt.Events))
		for _, e := range wt.Events {
			refs = append(refs, e.ref())
		}
		sortRefs(refs) // the order of the parsed thread's events
		byID := make(map[string]jsonobj.Object)
		for _, pe := range sdk.ThreadEvents(th) {
			byID[jsonString(pe.Raw("id"))] = pe
		}
		isLast := id == t.thread
		d := &wireDelivery{chat: chat, thread: id}
		d.threadOrder, d.hasOrder = wireNumber(wt.Order)
		var threadEvs []sdk.Event
		for _, r := range missedAfter(t, isLast, refs) {
			pe, ok := byID[r.id]
			if !ok {
				continue
			}
			d.events = append(d.events, r)
			threadEvs = append(threadEvs, sdk.Event{Name: sdk.EventNewEvent,
				Data: jsonobj.Object{{Key: "chat", Value: th.Get("chat")}, {Key: "event", Value: pe}}})
		}
		if _, known := t.threads[id]; !known && !isLast {
			newThreads = true
			evs = append(evs, sdk.Event{Name: sdk.EventThreadSummary, Data: sdk.ThreadSummary(th)})
		}
		evs = append(evs, threadEvs...)
		steps = append(steps, d)
	}
	if newThreads {
		if users, err := sdk.ResultEvents(chatio.ActionGetChatThreads, raw); err == nil {
			evs = append(users, evs...)
		}
	}
	for _, d := range steps {
		s.tracker.delivered(d)
	}
	s.publish(evs...)
	return nil
}

// missedAfter picks, from a thread's events sorted by wire order, those not
// delivered yet: in the chat's last delivered thread the ones after the last
// delivered event (by wire order, else by position after its id), in a newer
// thread all of them; never one seen recently.
func missedAfter(t *chatTrack, isLast bool, refs []wireEventRef) []wireEventRef {
	var out []wireEventRef
	after := !isLast || t.eventID == "" // nothing of the last thread delivered yet
	for _, r := range refs {
		if !after {
			switch {
			case t.hasEvOrder && r.hasOrder:
				after = r.order > t.eventOrder
			case r.id == t.eventID:
				after = true
				continue
			}
			if !after {
				continue
			}
		}
		if _, seen := t.seen[r.id]; !seen {
			out = append(out, r)
		}
	}
	return out
}

// jsonString decodes a raw JSON string ("" otherwise).
func jsonString(r json.RawMessage) string {
	var v string
	if json.Unmarshal(r, &v) != nil {
		return ""
	}
	return v
}
