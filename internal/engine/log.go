package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one event of a customer's log. Seq is its stream sequence: it
// rises per customer (not contiguously) and is the SSE id.
type Event struct {
	Seq  uint64
	Data []byte
	// Origin is the opaque tag the event was appended with (AppendFrom;
	// "" for none), kept in a header of its message, beside the data.
	Origin string
}

// Page is what Read returns.
type Page struct {
	// Events are the customer's events after the sequence asked for, in
	// order (owner markers left out).
	Events []Event
	// Last is the highest sequence read (an owner marker's included): the
	// afterSeq of the next Read. It is the afterSeq asked for when nothing
	// was read.
	Last uint64
	// TooOld: the log no longer holds every event after the sequence asked
	// for (the first event it holds was not appended right after it). The
	// caller sends a snapshot instead of Events.
	TooOld bool
	// More: the read stopped at its count or byte bound; read again after
	// Last.
	More bool
}

// Headers the engine writes and reads.
const (
	hdrMsgID      = "Nats-Msg-Id"
	hdrExpSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrSeq        = "Nats-Sequence"
	hdrLastSeq    = "Nats-Last-Sequence"
	hdrNumPending = "Nats-Num-Pending"
	// hdrPrev is the customer's previous sequence, which the append's
	// expected-last-subject-sequence rule made exact. A direct get batch's
	// Nats-Last-Sequence is the previous message of the batch, not of the
	// subject, so reads need this header to see a trimmed gap.
	hdrPrev = "Cgw-Prev"
	// hdrOwner marks an owner marker: the empty event a new owner appends
	// to fence the log (see Own). Readers skip it.
	hdrOwner = "Cgw-Owner"
	// hdrOrigin is an event's origin tag (AppendFrom), opaque here.
	hdrOrigin = "Cgw-Origin"
)

// MaxOriginLen bounds an origin tag (AppendFrom).
const MaxOriginLen = 64

const (
	maxMsgIDLen   = 200
	defaultRead   = 256
	maxReadEvents = 1024
)

func (e *Engine) names(sid SID) (streamNames, error) {
	if !sid.Valid() {
		return streamNames{}, fmt.Errorf("engine: invalid sid %q", sid)
	}
	return e.streams[sid.shard(len(e.streams))], nil
}

type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Error     *apiError `json:"error,omitempty"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code"`
	Description string `json:"description"`
}

func (a *apiError) Error() string {
	return fmt.Sprintf("engine: %s (%d/%d)", a.Description, a.Code, a.ErrCode)
}

// Append appends data to the customer's log if the customer's last
// sequence is expectedLastSeq (0: the log holds nothing for it), and
// returns the event's sequence. msgID identifies the event for the
// engine's duplicate window: an Append retried with the same msgID (by the
// engine after a lost acknowledgement, or by the caller) stores it once
// and answers the same sequence. Empty msgID: the engine makes one for its
// own retries.
//
// ErrFenced (errors.Is): another writer appended after expectedLastSeq, so
// the caller is not this customer's owner any more, or this node's lease
// is not valid. Transient engine errors (leader elections, 10163/10164)
// are retried until ctx ends.
func (e *Engine) Append(ctx context.Context, sid SID, expectedLastSeq uint64, msgID string, data []byte) (uint64, error) {
	return e.AppendFrom(ctx, sid, expectedLastSeq, msgID, "", data)
}

// AppendFrom is Append of an event tagged with origin (opaque, one line,
// at most MaxOriginLen bytes; "" for none): Read, Subscribe and a Cursor
// give it back as the Event's Origin.
func (e *Engine) AppendFrom(ctx context.Context, sid SID, expectedLastSeq uint64, msgID, origin string, data []byte) (uint64, error) {
	if err := e.checkEvent(data, origin); err != nil {
		return 0, err
	}
	return e.append(ctx, sid, expectedLastSeq, msgID, data, "", origin)
}

// checkEvent refuses an event larger than MaxEventBytes, or an origin
// that is too long or not one line.
func (e *Engine) checkEvent(data []byte, origin string) error {
	if len(data) > int(e.cfg.MaxEventBytes) {
		return fmt.Errorf("engine: event of %d bytes, above %d", len(data), e.cfg.MaxEventBytes)
	}
	if len(origin) > MaxOriginLen || strings.ContainsAny(origin, "\r\n") {
		return errors.New("engine: origin too long or not one line")
	}
	return nil
}

// checkOwned refuses an Ownership taken under another node or an earlier
// lease of this one.
func (e *Engine) checkOwned(own Ownership) error {
	if own.Node != e.cfg.NodeID || own.Epoch != e.epoch() {
		return fmt.Errorf("%w (ownership of an earlier lease)", ErrFenced)
	}
	return nil
}

// validMsgID: a message id the log takes (at most maxMsgIDLen bytes, one
// line).
func validMsgID(id string) bool {
	return len(id) <= maxMsgIDLen && !strings.ContainsAny(id, "\r\n")
}

// appendMsg is the message of an append of data to sid's log in sn after
// expected: the engine-wide message id, the expected last sequence (and
// the same as the predecessor a live reader checks), the owner marker's
// node (owner) and the origin, each when not empty.
func appendMsg(sn streamNames, sid SID, expected uint64, msgID string, data []byte, owner, origin string) *nats.Msg {
	return fillAppendMsg(&nats.Msg{Header: make(nats.Header, 4)}, sn, sid, expected, msgID, data, owner, origin)
}

// fillAppendMsg makes m, a new message or a recycled one (asyncMsg),
// appendMsg's message: the headers it held and the append has not are
// removed, and those it has take their value in the slice already there.
func fillAppendMsg(m *nats.Msg, sn streamNames, sid SID, expected uint64, msgID string, data []byte, owner, origin string) *nats.Msg {
	m.Subject, m.Data = sn.evPfx+string(sid), data
	exp := strconv.FormatUint(expected, 10)
	setHeader(m.Header, hdrMsgID, string(sid)+":"+msgID)
	setHeader(m.Header, hdrExpSubjSeq, exp)
	setHeader(m.Header, hdrPrev, exp)
	setHeader(m.Header, hdrOwner, owner)
	setHeader(m.Header, hdrOrigin, origin)
	return m
}

// setHeader sets h's key to the one value v ("": no key), in the slice
// already there when it has one.
func setHeader(h nats.Header, key, v string) {
	switch vs := h[key]; {
	case v == "":
		delete(h, key)
	case len(vs) == 1:
		vs[0] = v
	default:
		h[key] = []string{v}
	}
}

// AppendOwned is Append for the holder of own: it is refused (ErrFenced)
// when the node's lease is no longer the one own was taken under (the
// lease was lost and taken again: the session may have another owner by
// now, and what the caller read meanwhile must not reach the log).
func (e *Engine) AppendOwned(ctx context.Context, own Ownership, expectedLastSeq uint64, msgID string, data []byte) (uint64, error) {
	return e.AppendOwnedFrom(ctx, own, expectedLastSeq, msgID, "", data)
}

// AppendOwnedFrom is AppendOwned of an event tagged with origin (AppendFrom).
func (e *Engine) AppendOwnedFrom(ctx context.Context, own Ownership, expectedLastSeq uint64, msgID, origin string, data []byte) (uint64, error) {
	if err := e.checkOwned(own); err != nil {
		return 0, err
	}
	return e.AppendFrom(ctx, own.SID, expectedLastSeq, msgID, origin, data)
}

func (e *Engine) append(ctx context.Context, sid SID, expected uint64, msgID string, data []byte, owner, origin string) (uint64, error) {
	sn, err := e.names(sid)
	if err != nil {
		return 0, err
	}
	if e.closed.Load() {
		return 0, ErrClosed
	}
	if !e.LeaseValid() {
		return 0, fmt.Errorf("%w (node lease not valid)", ErrFenced)
	}
	if msgID == "" {
		msgID = randomID()
	} else if !validMsgID(msgID) {
		return 0, errors.New("engine: msgID too long or not one line")
	}
	// The whole append is bounded by ctx's deadline, else by OpTimeout
	// from now; a context for it is made only on the rare paths that need
	// one (a refused append's look at the log): an append that is
	// acknowledged at once makes none (publishOnce).
	deadline, bounded := ctx.Deadline()
	if !bounded {
		deadline = time.Now().Add(e.cfg.OpTimeout)
	}
	var cancel context.CancelFunc
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	opCtx := func() context.Context {
		if bounded {
			return ctx
		}
		var octx context.Context
		octx, cancel = context.WithDeadline(ctx, deadline)
		return octx
	}

	m := appendMsg(sn, sid, expected, msgID, data, owner, origin)
	id := m.Header.Get(hdrMsgID)

	back := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !e.LeaseValid() {
			// Retries stop with the lease; the first attempt may still
			// have been stored (a reader then sees it: it was read while
			// the lease held).
			return 0, fmt.Errorf("%w (node lease lost while retrying)", ErrFenced)
		}
		seq, err := e.publishOnce(ctx, deadline, m)
		if err == nil {
			return seq, nil
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.ErrCode == 10071 {
			// Wrong last sequence. On a single server the expected-sequence
			// check runs before the duplicate check, so a retry of an
			// append that was stored answers 10071 and not "duplicate":
			// look whether the customer's last event is this one. So is
			// a retry after the duplicate window (Config.Duplicates).
			seq, ok, lerr := e.lastIsMsgID(opCtx(), sn, sid, id)
			if lerr != nil {
				return 0, fmt.Errorf("engine: append refused (%s), and the log's last event unknown: %w", ae.Description, lerr)
			}
			if ok {
				return seq, nil
			}
			return 0, fmt.Errorf("%w (%s)", ErrFenced, ae.Description)
		}
		if !transient(err) && !errors.Is(err, errAttemptTimeout) {
			return 0, err
		}
		wait := min(back, time.Until(deadline))
		if wait <= 0 {
			return 0, fmt.Errorf("engine: append: %w (last: %v)", context.DeadlineExceeded, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("engine: append: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
		back = min(back*2, 400*time.Millisecond)
	}
}

var errAttemptTimeout = errors.New("engine: no acknowledgement in time")

// publishOnce makes one publish attempt, bounded by min(OpTimeout, 2s)
// and by deadline (the whole append's) so that a lost acknowledgement is
// retried before the append's time is up. A ctx that cannot end
// (context.Background, the session appenders') takes no context of its
// own: nats.go's timed request pools its timer.
func (e *Engine) publishOnce(ctx context.Context, deadline time.Time, m *nats.Msg) (uint64, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return 0, context.DeadlineExceeded
	}
	d := min(left, e.cfg.OpTimeout, 2*time.Second)
	var (
		resp     *nats.Msg
		err      error
		timedOut bool // the attempt's own bound ran out, not ctx
	)
	if ctx.Done() == nil {
		resp, err = e.nc.RequestMsg(m, d)
		timedOut = errors.Is(err, nats.ErrTimeout)
	} else {
		actx, cancel := context.WithTimeout(ctx, d)
		resp, err = e.nc.RequestMsgWithContext(actx, m)
		timedOut = err != nil && ctx.Err() == nil && actx.Err() != nil // before cancel, which ends actx too
		cancel()
	}
	switch {
	case timedOut && d < left:
		return 0, errAttemptTimeout
	case timedOut:
		return 0, context.DeadlineExceeded
	case err != nil:
		return 0, err
	}
	return decodeAck(resp.Data)
}

// decodeAck is the sequence an append's acknowledgement gives, or its
// error: a jetstream.APIError (which transient() reads), or, for "wrong
// last sequence" (10071), the server's own apiError, which append reads.
func decodeAck(b []byte) (uint64, error) {
	if seq, ok := parsePlainAck(b); ok {
		return seq, nil
	}
	var ack pubAck
	if err := json.Unmarshal(b, &ack); err != nil {
		return 0, fmt.Errorf("engine: bad acknowledgement: %w", err)
	}
	if ack.Error != nil {
		if ack.Error.ErrCode != 10071 {
			return 0, &jetstream.APIError{Code: ack.Error.Code, ErrorCode: jetstream.ErrorCode(ack.Error.ErrCode), Description: ack.Error.Description}
		}
		return 0, ack.Error
	}
	if ack.Seq == 0 {
		return 0, errors.New("engine: acknowledgement without a sequence")
	}
	return ack.Seq, nil
}

// parsePlainAck reads the acknowledgement of a stored append as the
// server writes it from its template, {"stream":"<name>","seq":<n>},
// without encoding/json (its decoder costs several allocations per
// append). Anything else (a duplicate, an error, a domain) is false: the
// caller decodes it in full.
func parsePlainAck(b []byte) (uint64, bool) {
	const pfx, key = `{"stream":"`, `","seq":`
	if !bytes.HasPrefix(b, []byte(pfx)) || len(b) < len(pfx)+len(key)+2 || b[len(b)-1] != '}' {
		return 0, false
	}
	rest := b[len(pfx) : len(b)-1]
	i := bytes.Index(rest, []byte(key))
	if i < 0 || bytes.ContainsAny(rest[:i], `"\`) {
		return 0, false
	}
	digits := rest[i+len(key):]
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var seq uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		seq = seq*10 + uint64(c-'0')
	}
	return seq, seq != 0
}

type storedMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Header  []byte `json:"hdrs,omitempty"`
}

type msgGetResp struct {
	Message *storedMsg `json:"message,omitempty"`
	Error   *apiError  `json:"error,omitempty"`
}

// lastMsg asks the stream leader (not a direct get, which a lagging
// follower may answer) for the customer's last message.
func (e *Engine) lastMsg(ctx context.Context, sn streamNames, sid SID) (*storedMsg, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": sn.evPfx + string(sid)})
	var out msgGetResp
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		resp, err := e.nc.RequestWithContext(ctx, sn.msgGet, req)
		if err != nil {
			return err
		}
		out = msgGetResp{}
		if err := json.Unmarshal(resp.Data, &out); err != nil {
			return fmt.Errorf("engine: bad message get answer: %w", err)
		}
		if out.Error != nil && out.Error.ErrCode != 10037 {
			return &jetstream.APIError{Code: out.Error.Code, ErrorCode: jetstream.ErrorCode(out.Error.ErrCode), Description: out.Error.Description}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Message, nil // nil: no message (10037)
}

// lastIsMsgID reports whether the customer's last message carries the
// message id id (and its sequence).
func (e *Engine) lastIsMsgID(ctx context.Context, sn streamNames, sid SID, id string) (uint64, bool, error) {
	m, err := e.lastMsg(ctx, sn, sid)
	if err != nil {
		return 0, false, err
	}
	if m == nil || len(m.Header) == 0 {
		return 0, false, nil
	}
	// hdrs is the raw "NATS/1.0\r\nKey: value\r\n..." block.
	for _, line := range strings.Split(string(m.Header), "\r\n") {
		if v, ok := strings.CutPrefix(line, hdrMsgID+":"); ok && strings.TrimSpace(v) == id {
			return m.Seq, true, nil
		}
	}
	return 0, false, nil
}

// LastSeq is the sequence of the customer's last event (owner markers
// included; 0 when the log holds none), as the stream leader knows it.
func (e *Engine) LastSeq(ctx context.Context, sid SID) (uint64, error) {
	sn, err := e.names(sid)
	if err != nil {
		return 0, err
	}
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	m, err := e.lastMsg(ctx, sn, sid)
	if err != nil {
		return 0, fmt.Errorf("engine: last sequence: %w", err)
	}
	if m == nil {
		return 0, nil
	}
	return m.Seq, nil
}

type directReq struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// Read returns up to max (default 256, at most 1024) of the customer's
// events after afterSeq, in order, bounded by ReadMaxBytes too, with a
// direct batch get (no consumer). Page.TooOld says that the log no longer
// holds every event after afterSeq. A direct get may be answered by a
// follower that lags: Read can miss the newest events (Cursor.CatchUp
// checks against the leader).
func (e *Engine) Read(ctx context.Context, sid SID, afterSeq uint64, max int) (Page, error) {
	sn, err := e.names(sid)
	if err != nil {
		return Page{}, err
	}
	if max <= 0 {
		max = defaultRead
	}
	max = min(max, maxReadEvents)
	ctx, cancel := e.opCtx(ctx)
	defer cancel()
	body, _ := json.Marshal(directReq{Seq: afterSeq + 1, NextFor: sn.evPfx + string(sid), Batch: max, MaxBytes: e.cfg.ReadMaxBytes})
	var p Page
	err = retryUnavailable(ctx, func(ctx context.Context) error {
		var err error
		p, err = e.readOnce(ctx, sn, body, afterSeq, max)
		return err
	})
	return p, err
}

// readOnce makes one direct batch get of at most batch events. Its answers
// come on a channel subscription sized for the batch and its end marker:
// nats.go's SubscribeSync would make a channel of SubChanLen (64Ki
// pointers, 512 KiB) for every read, which at a few hundred stream opens a
// second was most of the gateway's allocation and so of its GC work.
func (e *Engine) readOnce(ctx context.Context, sn streamNames, body []byte, afterSeq uint64, batch int) (Page, error) {
	p := Page{Last: afterSeq}
	inbox := e.nc.NewRespInbox()
	ch := make(chan *nats.Msg, batch+2)
	sub, err := e.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return p, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.nc.PublishRequest(sn.direct, inbox, body); err != nil {
		return p, err
	}
	first := true
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return p, fmt.Errorf("engine: read: %w", ctx.Err())
		}
		if st := m.Header.Get("Status"); st != "" {
			switch st {
			case "204": // end of batch
				np, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				p.More = np > 0
				return p, nil
			case "404": // nothing after afterSeq
				return p, nil
			case "503":
				return p, nats.ErrNoResponders
			default:
				return p, fmt.Errorf("engine: read: status %s %s", st, m.Header.Get("Description"))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
		if err != nil || seq <= p.Last {
			return p, fmt.Errorf("engine: read: bad sequence %q", m.Header.Get(hdrSeq))
		}
		if first {
			first = false
			prev, err := strconv.ParseUint(m.Header.Get(hdrPrev), 10, 64)
			p.TooOld = err != nil || prev != afterSeq
		}
		p.Last = seq
		if m.Header.Get(hdrOwner) == "" {
			p.Events = append(p.Events, Event{Seq: seq, Data: m.Data, Origin: m.Header.Get(hdrOrigin)})
		}
	}
}
