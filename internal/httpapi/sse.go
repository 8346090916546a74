package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/session"
)

// maxBatch is how many bytes of queued events one stream write may carry.
const maxBatch = 64 << 10

// smallBuf is the size a write buffer starts with (most events fit).
const smallBuf = 1 << 10

// errWriteTimedOut: a stream write took longer than WriteTimeout.
var errWriteTimedOut = errors.New("stream write timed out")

// bufs holds the buffers streams build their writes in, taken for one
// write and given back: an idle stream holds none (thousands are open at
// once). One that grew beyond maxBatch for a big snapshot is dropped.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, smallBuf); return &b }}

// getBuf takes an empty buffer from bufs.
func getBuf() *[]byte { return bufs.Get().(*[]byte) }

// putBuf gives b, whose content is written, back to bufs.
func putBuf(b *[]byte) {
	if cap(*b) > 2*maxBatch {
		return
	}
	*b = (*b)[:0]
	bufs.Put(b)
}

// maxLastEventID bounds a Last-Event-ID worth parsing; a longer one is
// ignored (the stream starts with a fresh snapshot).
const maxLastEventID = 64

// events serves GET /v1/events: the session's SDK events as Server-Sent
// Events. Authenticated by the Authorization header or a single-use ticket.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()

	// Who: the Authorization header when there is one (checked now), else
	// a ticket, redeemed only once a stream slot is held so that a stream
	// refused for load does not use the ticket up.
	var token string
	ticket := q.Get("ticket")
	if len(r.Header.Values("Authorization")) > 0 || ticket == "" { // any Authorization header, even empty, is checked
		t, err := bearer(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !s.limitRate(w, r, t) { // a ticket was counted when it was issued
			return
		}
		token, ticket = t, ""
	}
	// The customer id told with the request; a ticket's (told when it was
	// issued) takes its place.
	customerID, idErr := customerIDFromHeader(r.Header)
	if idErr != nil {
		s.writeError(w, r, idErr)
		return
	}
	// The client instance that opened the stream: its own calls' results
	// for the other tabs are left out (session.Origin).
	origin, err := streamOrigin(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	if !s.Ready() {
		s.writeError(w, r, session.ErrDraining)
		return
	}
	if s.streams.Add(1) > int64(s.cfg.MaxStreams) {
		s.streams.Add(-1)
		s.m.streamEnds.WithLabelValues("refused_full").Inc()
		s.writeError(w, r, overloaded("too many open streams; retry later"))
		return
	}
	// The stream slot is released here, unless a streamer holds it (its
	// serve releases it then).
	var st *streamer
	defer func() {
		if st == nil {
			s.streams.Add(-1)
		}
	}()

	if ticket != "" {
		t, err := s.redeem(ctx, ticket)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		token = t.token
		if t.customerID != "" {
			customerID = t.customerID
		}
	}

	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("lastEventId")
	}
	if len(lastID) > maxLastEventID {
		lastID = ""
	}

	var sub *session.Subscriber
	ctx = contextWithCustomerID(ctx, customerID)
	if s.pool.Clustered() {
		// On any replica: the customer's log in the engine (ids are its
		// sequences), the snapshot from the session's owner.
		sub, err = s.pool.Subscribe(ctx, token, customerID, lastID)
	} else {
		err = s.withSession(ctx, token, func(sess *session.Session) error {
			var err error
			sub, err = sess.Subscribe(ctx, lastID)
			return err
		})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	st = &streamer{s: s, ctx: ctx, w: w, r: r, sub: sub, done: ctx.Done(), events: sub.C(), origin: origin}
	if p := parkOf(r); p != nil {
		p.st = st // ServeHTTP serves it once the router has returned (park.go)
		return
	}
	st.serve()
}

// streamer is an open event stream. Its state is here, on the heap, and
// its work in methods, so that serve's frame, where the stream's goroutine
// waits, is small (park.go).
type streamer struct {
	s      *Server
	ctx    context.Context
	w      http.ResponseWriter
	r      *http.Request
	sub    *session.Subscriber
	done   <-chan struct{}        // ctx.Done()
	events <-chan session.Message // sub.C()
	msg    session.Message        // received by serve for send, out of serve's frame
	origin session.Origin         // the client instance that opened the stream (0: none)

	rc        *http.ResponseController
	watchdog  *time.Timer   // cuts a write that takes longer than WriteTimeout
	fired     chan struct{} // closed when watchdog has cut a write
	cut       bool          // a write was cut: the stream cannot go on
	heartbeat *time.Timer
}

// serve writes the headers, the snapshot and then every event of the
// subscription until the client leaves, the server drains or the
// subscription ends, then releases the stream.
func (st *streamer) serve() {
	defer st.release()
	reason := st.start() // why the stream ended (a metric label), "" while it goes on
	for reason == "" {
		// An open stream's goroutine waits here, parked (park.go): what it
		// does when woken is in methods, so that this frame stays small.
		select {
		case <-st.done:
			reason = "client_gone"
		case <-st.s.drain:
			reason = st.draining()
		case m, ok := <-st.events:
			if !ok {
				reason = st.end()
				break
			}
			st.msg = m
			reason = st.send()
		case <-st.heartbeat.C:
			reason = st.beat()
		}
	}
	st.ended(reason)
}

// start counts the stream open and writes the headers and the snapshot. It
// returns why the stream ended, or "" when it goes on.
func (st *streamer) start() string {
	st.s.m.streamsOpen.Inc()
	st.s.m.streamsOpened.Inc()
	st.rc = http.NewResponseController(st.w)
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if st.r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive") // HTTP/2 has no Connection header
	}
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	st.w.WriteHeader(http.StatusOK)

	st.fired = make(chan struct{})
	st.watchdog = time.AfterFunc(time.Hour, st.cutWrite)
	st.watchdog.Stop()

	bp := getBuf()
	buf := append(*bp, st.s.retryField...)
	buf = append(buf, ": connected\n\n"...)
	for _, m := range st.sub.Snapshot() {
		buf = st.appendMessage(buf, m)
	}
	st.sub.ReleaseSnapshot()
	err := st.write(buf)
	*bp = buf
	putBuf(bp)
	if err != nil {
		return "write_failed"
	}
	st.heartbeat = time.NewTimer(st.s.cfg.HeartbeatInterval)
	return ""
}

// send writes msg and the events queued behind it, so that a burst costs
// one flush.
func (st *streamer) send() string {
	bp := getBuf()
	buf := st.appendMessage(*bp, st.msg)
	st.msg = session.Message{} // not held while the stream waits
	open := true
batch:
	for len(buf) < maxBatch {
		select {
		case m, ok := <-st.events:
			if !ok {
				open = false
				break batch
			}
			buf = st.appendMessage(buf, m)
		default:
			break batch
		}
	}
	var err error
	if len(buf) > 0 { // empty: all were the stream's own calls' (appendMessage)
		err = st.write(buf)
	}
	*bp = buf
	putBuf(bp)
	if err != nil {
		return "write_failed"
	}
	if !open {
		return st.end()
	}
	if !st.heartbeat.Stop() {
		select {
		case <-st.heartbeat.C:
		default:
		}
	}
	st.heartbeat.Reset(st.s.cfg.HeartbeatInterval)
	return ""
}

// draining ends the stream for SetDraining (or a draining pool): see
// retryLater.
func (st *streamer) draining() string {
	return st.retryLater("draining", "\n: draining, reconnect\n\n")
}

// retryLater ends the stream with a retry hint drawn uniformly from
// [RetryHint, 2×RetryHint], in milliseconds, and comment (a comment line
// and the message's end); it returns reason. The streams of a draining
// replica, or of one that lost its engine, all end at once, and their
// clients should not all come back at once.
func (st *streamer) retryLater(reason, comment string) string {
	hint := st.s.cfg.RetryHint.Milliseconds()
	b := make([]byte, 0, 64)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, hint+rand.Int64N(hint+1), 10)
	b = append(b, comment...)
	if st.write(b) != nil {
		return "write_failed"
	}
	return reason
}

// beat writes a heartbeat.
func (st *streamer) beat() string {
	if st.write([]byte(": heartbeat\n\n")) != nil {
		return "write_failed"
	}
	st.heartbeat.Reset(st.s.cfg.HeartbeatInterval)
	return ""
}

// write sends buf and flushes it within WriteTimeout. A write that takes
// longer is cut: the watchdog timer sets a write deadline in the past,
// which fails the blocked write (over HTTP/2 it resets the stream). A
// deadline set and cleared around every write would do the same, but over
// HTTP/2 each SetWriteDeadline is a message to the connection's serve
// loop: two per event, for every stream of the connection. And a deadline
// left set resets an idle HTTP/2 stream when it passes, although nothing
// is being written.
// The stream waits for a cut to be over: the ResponseWriter must not be
// touched once ServeHTTP has returned (HTTP/2 recycles it).
func (st *streamer) write(buf []byte) error {
	if st.cut {
		return errWriteTimedOut
	}
	st.watchdog.Reset(st.s.cfg.WriteTimeout)
	_, err := st.w.Write(buf)
	if err == nil {
		err = st.rc.Flush()
	}
	if !st.watchdog.Stop() {
		<-st.fired
		st.cut = true
		return errWriteTimedOut
	}
	return err
}

// cutWrite is the watchdog's: it fails the write under way.
func (st *streamer) cutWrite() {
	defer close(st.fired)
	_ = st.rc.SetWriteDeadline(time.Unix(1, 0))
}

// end handles a subscription the session ended: a cut-off slow subscriber,
// a draining pool and a replica that lost its engine (engine_unavailable:
// the stream may come back here or elsewhere) get a retry hint (they
// should come back, with Last-Event-ID); an ended session has sent its
// final event already.
func (st *streamer) end() string {
	err := st.sub.Err()
	switch {
	case errors.Is(err, session.ErrSlowSubscriber):
		if st.write([]byte(st.s.retryField+": too slow, reconnect with Last-Event-ID\n\n")) != nil {
			return "write_failed"
		}
		return "slow_subscriber"
	case errors.Is(err, session.ErrEngine):
		return st.retryLater("engine_unavailable", "\n: engine unavailable, reconnect\n\n")
	case errors.Is(err, session.ErrDraining):
		return st.draining()
	case errors.Is(err, session.ErrSessionClosed):
		return "session_closed"
	default:
		return "ended"
	}
}

// ended counts and logs the stream's end.
func (st *streamer) ended(reason string) {
	st.s.m.streamEnds.WithLabelValues(reason).Inc()
	st.s.log.Debug("stream ended", zap.String("request_id", requestID(st.ctx)), zap.String("reason", reason))
}

// release gives back what the stream holds: its heartbeat, its
// subscription and its slot among MaxStreams.
func (st *streamer) release() {
	if st.heartbeat != nil {
		st.heartbeat.Stop()
	}
	st.s.m.streamsOpen.Dec()
	st.sub.Close()
	st.s.streams.Add(-1)
}

// appendMessage is appendMessage for this stream: an event with the
// stream's origin (its instance's own call's result, for the other tabs)
// is left out.
func (st *streamer) appendMessage(buf []byte, m session.Message) []byte {
	if m.Origin != 0 && m.Origin == st.origin {
		return buf
	}
	return appendMessage(buf, m)
}

// appendMessage appends one SSE message. The id and event name keep only
// safe characters; the data is one line of JSON (compacted when it spans
// lines; data that is not JSON is split into data lines, which the client
// joins back with "\n").
func appendMessage(buf []byte, m session.Message) []byte {
	if id := safeField(m.ID); id != "" {
		buf = append(buf, "id: "...)
		buf = append(buf, id...)
		buf = append(buf, '\n')
	}
	if name := safeField(m.Name); name != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, name...)
		buf = append(buf, '\n')
	}
	data := m.Data
	if len(data) == 0 {
		data = []byte("null")
	}
	if bytes.ContainsAny(data, "\r\n") {
		var c bytes.Buffer
		if json.Compact(&c, data) == nil && !bytes.ContainsAny(c.Bytes(), "\r\n") {
			data = c.Bytes()
		}
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		buf = append(buf, "data: "...)
		buf = append(buf, data[:i]...)
		buf = append(buf, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	return append(buf, '\n', '\n')
}

// safeField keeps the characters of an id or event name that cannot break
// the stream's framing or confuse a client: letters, digits, "_-.:".
func safeField(v string) string {
	ok := true
	for i := 0; i < len(v); i++ {
		if !safeByte(v[i]) {
			ok = false
			break
		}
	}
	if ok {
		return v
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if safeByte(v[i]) {
			b = append(b, v[i])
		}
	}
	return string(b)
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':'
}
