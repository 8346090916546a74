package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
	"github.com/chatio-gateway/chatio-gateway/internal/jsonobj"
	"github.com/chatio-gateway/chatio-gateway/internal/op"
	"github.com/chatio-gateway/chatio-gateway/internal/sdk"
)

// HistoryEventTarget is the SDK's HISTORY_EVENT_COUNT_TARGET: a page loads
// whole threads, newest first, until it holds at least this many events
// (or its summary batch runs out).
const HistoryEventTarget = 50

// historyBatch is the limit of each get_chat_threads_summary read (the
// SDK's default).
const historyBatch = 25

// HistoryPage is one getChatHistory().next(): events oldest→newest within the
// page, Done once every thread is loaded, Cursor for the next (older) page:
// present exactly when Done is false, so that a client's while (cursor)
// loop ends.
type HistoryPage struct {
	Events []any  `json:"events"`
	Done   bool   `json:"done"`
	Cursor string `json:"cursor,omitempty"`
}

// GetChatHistory returns one page of a chat's history (GET
// /v1/chats/{chat}/history[?cursor=C]): what one next() of the SDK's
// getChatHistory iterator resolves, newest page first; a.Cursor "" is the
// newest page.
//
// Pages are the SDK's (chatHistory.js): thread summaries are read in
// batches of 25, newest first; each page takes, from the newest end of what
// is left of the batch, whole threads until they hold at least 50 events,
// or the rest of the batch. The upstream requests are the SDK's too.
//
// The cursor is stateless and opaque (base64url, HMAC-SHA256-signed with
// CursorKey): any replica with the same key serves it. Its MAC covers the
// chat id and a SHA-256 of the session's token (never the token itself),
// so it is good only for this chat and this customer's token: another
// token's replay is ErrBadCursor, answered without asking the upstream. It
// carries the order of the oldest thread returned so far, how many older
// threads remain, and the ids and sizes of the threads left in the current
// batch. A new batch is located by offset (total threads now minus those
// remaining, as the SDK does) and filtered by order, so threads started
// while paging never shift a page; no page repeats or skips an event. The
// last page (Done) has no cursor: there is nothing to follow.
//
// Like the SDK, each page emits into the session's log user_data for the
// users of the get_chat_threads answer and thread_summary per loaded thread.
//
// Errors: ErrBadCursor (malformed, forged, another chat's or another
// token's cursor), the errors of Do, upstream errors.
func (s *Session) GetChatHistory(ctx context.Context, a op.GetChatHistory) (_ HistoryPage, err error) {
	start := time.Now()
	defer func() { traceDone(ctx, start, err) }()
	chatID, cursor := a.ChatID, a.Cursor
	var cur *historyCursor
	if cursor != "" {
		c, ok := s.decodeCursor(chatID, cursor)
		if !ok {
			return HistoryPage{}, ErrBadCursor
		}
		cur = &c
	}
	var page HistoryPage
	var evs []sdk.Event
	err = s.Do(ctx, func(ctx context.Context, c *chatio.Client) error {
		var next historyCursor
		var err error
		page, next, evs, err = historyPage(ctx, c, chatID, cur)
		if err != nil {
			return err
		}
		if !page.Done {
			page.Cursor = s.encodeCursor(chatID, next)
		}
		return nil
	})
	if err != nil {
		return HistoryPage{}, err
	}
	s.publishFrom(nil, evs, nil, OriginFrom(ctx)) // the calling instance's SDK emits them
	return page, nil
}

// threadSum is one entry of a thread summary.
type threadSum struct {
	id     string
	order  float64
	events int
}

// historyCursor is the state between two pages (there is none after the
// last one).
type historyCursor struct {
	before   float64     // order of the oldest thread returned so far
	left     int         // threads older than before (not loaded yet)
	leftover []threadSum // the current batch's threads not loaded yet, oldest first (order unused)
}

// historyPage loads one page after cur (nil: the first page).
func historyPage(ctx context.Context, c *chatio.Client, chat string, cur *historyCursor) (HistoryPage, historyCursor, []sdk.Event, error) {
	var next historyCursor
	var batch []threadSum
	switch {
	case cur == nil: // loadLatest
		b, total, err := readThreadsSummary(ctx, c, chat, 0)
		if err != nil {
			return HistoryPage{}, next, nil, err
		}
		batch, next.left = b, total
	case len(cur.leftover) > 0: // the rest of the current batch
		batch, next.left, next.before = cur.leftover, cur.left, cur.before
	default: // loadNextSummaryBatch, by offset, then by order
		next.left, next.before = cur.left, cur.before
		_, total, err := readThreadsSummary(ctx, c, chat, 0)
		if err != nil {
			return HistoryPage{}, next, nil, err
		}
		b, _, err := readThreadsSummary(ctx, c, chat, max(total-cur.left, 0))
		if err != nil {
			return HistoryPage{}, next, nil, err
		}
		for _, t := range b {
			if t.order < cur.before {
				batch = append(batch, t)
			}
		}
	}
	leftover, targeted := splitSummary(batch)
	ids := make([]string, len(targeted))
	for i, t := range targeted {
		ids[i] = t.id
	}
	page := HistoryPage{Events: []any{}}
	var evs []sdk.Event
	raw, err := c.GetChatThreads(ctx, chat, ids)
	var threads []jsonobj.Object
	switch {
	case err != nil && len(ids) == 0 && isRequestError(err):
		// The SDK asks for no thread of an empty chat; an upstream that
		// refuses such a request has nothing to give anyway.
	case err != nil:
		return HistoryPage{}, next, nil, err
	default:
		if threads, err = sdk.ParseChatThreads(raw); err != nil {
			return HistoryPage{}, next, nil, &chatio.RequestError{Action: chatio.ActionGetChatThreads, Type: chatio.ErrTypeInvalidAnswer, Message: err.Error()}
		}
		if evs, err = sdk.ResultEvents(chatio.ActionGetChatThreads, raw); err != nil {
			evs = nil
		}
	}
	for _, th := range threads {
		for _, e := range sdk.ThreadEvents(th) {
			page.Events = append(page.Events, e)
		}
		evs = append(evs, sdk.Event{Name: sdk.EventThreadSummary, Data: sdk.ThreadSummary(th)})
	}
	// The oldest loaded thread bounds the next batch. Leftover entries
	// carry no order: take it from the loaded threads themselves.
	oldest := math.Inf(1)
	for _, th := range threads {
		if o, ok := chatio.ThreadOrder(th); ok {
			oldest = min(oldest, o)
		}
	}
	switch {
	case !math.IsInf(oldest, 1):
		next.before = oldest
	case len(targeted) > 0 && cur == nil || cur != nil && len(cur.leftover) == 0 && len(targeted) > 0:
		next.before = targeted[0].order // from a summary read by this page
	}
	next.left -= len(threads)
	next.leftover = leftover
	// done as the SDK has it (nothing left), or when a page could load
	// nothing although something seemed left (never page forever).
	page.Done = next.left <= 0 || len(targeted) == 0
	return page, next, evs, nil
}

func isRequestError(err error) bool {
	var re *chatio.RequestError
	return errors.As(err, &re)
}

// splitSummary is chatHistory.js splitSummary: from the newest end of an
// oldest-first batch, the threads up to the one that brings the event count
// to HistoryEventTarget (all of them if it is never reached), and the rest.
func splitSummary(batch []threadSum) (leftover, targeted []threadSum) {
	sum := 0
	for i := len(batch) - 1; i >= 0; i-- {
		sum += batch[i].events
		if sum >= HistoryEventTarget {
			return batch[:i:i], batch[i:]
		}
	}
	return nil, batch
}

// readThreadsSummary reads one batch of thread summaries at offset (0 =
// newest), sorted oldest first as the SDK sorts them, with the total.
func readThreadsSummary(ctx context.Context, c *chatio.Client, chat string, offset int) ([]threadSum, int, error) {
	raw, err := c.GetChatThreadsSummary(ctx, chat, offset, historyBatch)
	if err != nil {
		return nil, 0, err
	}
	p, err := chatio.ParseThreadsSummary(raw)
	if err != nil {
		return nil, 0, err
	}
	out := make([]threadSum, 0, len(p.Threads))
	for _, t := range p.Threads {
		o, _ := wireNumber(t.Order)
		n, _ := wireNumber(t.EventsCount)
		out = append(out, threadSum{t.ID, o, int(n)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].order < out[j].order })
	total, _ := wireNumber(p.Total)
	return out, int(total), nil
}

// Cursor layout (base64url, no padding), version 2:
//
//	version(1) before(8, float64 bits) left(uvarint)
//	n(uvarint) n × [idLen(uvarint) id totalEvents(uvarint)]
//	HMAC-SHA256(16) over "history-cursor-v2\0" SHA-256(token) chat "\0"
//	and all of the above.
//
// Version 1 (no token in the MAC, a done flag) is no longer accepted.
const (
	cursorVersion = 2
	cursorMACLen  = 16
	maxCursorLen  = 8 << 10
)

func (s *Session) cursorMAC(chat string, body []byte) []byte {
	m := hmac.New(sha256.New, s.cfg.CursorKey)
	m.Write([]byte("history-cursor-v2\x00"))
	m.Write(s.tokenSum[:])
	m.Write([]byte(chat))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

func (s *Session) encodeCursor(chat string, c historyCursor) string {
	b := make([]byte, 0, 16+len(c.leftover)*16)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.before))
	b = binary.AppendUvarint(b, uint64(max(c.left, 0)))
	b = binary.AppendUvarint(b, uint64(len(c.leftover)))
	for _, t := range c.leftover {
		b = binary.AppendUvarint(b, uint64(len(t.id)))
		b = append(b, t.id...)
		b = binary.AppendUvarint(b, uint64(max(t.events, 0)))
	}
	b = append(b, s.cursorMAC(chat, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Session) decodeCursor(chat, cursor string) (historyCursor, bool) {
	var c historyCursor
	if len(cursor) > maxCursorLen {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+8+2+cursorMACLen || b[0] != cursorVersion {
		return c, false
	}
	body, mac := b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(mac, s.cursorMAC(chat, body)) {
		return c, false
	}
	c.before = math.Float64frombits(binary.BigEndian.Uint64(body[1:9]))
	r := body[9:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	left, ok1 := uv()
	n, ok2 := uv()
	if !ok1 || !ok2 || left > math.MaxInt32 || n > historyBatch || math.IsNaN(c.before) {
		return c, false
	}
	c.left = int(left)
	for range n {
		l, ok := uv()
		if !ok || l > uint64(len(r)) {
			return c, false
		}
		id := string(r[:l])
		r = r[l:]
		ev, ok := uv()
		if !ok || ev > math.MaxInt32 {
			return c, false
		}
		c.leftover = append(c.leftover, threadSum{id: id, events: int(ev)})
	}
	if len(r) != 0 {
		return c, false
	}
	return c, true
}
