package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
	if r.Header.Get("Authorization") != "" || ticket == "" {
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
	defer s.streams.Add(-1)

	if ticket != "" {
		// Another replica's ticket is proxied to it (ticketroute.go).
		id, issuer, err := s.routeTicket(r, ticket)
		if err != nil {
			s.m.tickets.WithLabelValues("rejected").Inc()
			s.writeError(w, r, err)
			return
		}
		if issuer != "" {
			s.forwardStream(w, r, issuer)
			return
		}
		t, ok := s.tickets.redeem(id)
		if !ok {
			s.m.tickets.WithLabelValues("rejected").Inc()
			s.writeError(w, r, unauthenticated("invalid, expired or already used ticket"))
			return
		}
		s.m.tickets.WithLabelValues("redeemed").Inc()
		token = t
	}

	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("lastEventId")
	}
	if len(lastID) > maxLastEventID {
		lastID = ""
	}

	var sub *session.Subscriber
	err := s.withSession(ctx, token, func(sess *session.Session) error {
		var err error
		sub, err = sess.Subscribe(ctx, lastID)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer sub.Close()

	s.m.streamsOpen.Inc()
	s.m.streamsOpened.Inc()
	defer s.m.streamsOpen.Dec()
	reason := s.stream(ctx, w, r, sub)
	s.m.streamEnds.WithLabelValues(reason).Inc()
	s.log.Debug("stream ended", zap.String("request_id", requestID(ctx)), zap.String("reason", reason))
}

// stream writes the headers, the snapshot and then every event of sub until
// the client leaves, the server drains or the subscription ends. It returns
// why it ended (a metric label).
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, sub *session.Subscriber) string {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive") // HTTP/2 has no Connection header
	}
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	// write sends buf and flushes it within WriteTimeout. A write that takes
	// longer is cut: a timer sets a write deadline in the past, which fails
	// the blocked write (over HTTP/2 it resets the stream). A deadline set
	// and cleared around every write would do the same, but over HTTP/2
	// each SetWriteDeadline is a message to the connection's serve loop:
	// two per event, for every stream of the connection. And a deadline
	// left set resets an idle HTTP/2 stream when it passes, although
	// nothing is being written.
	// The handler waits for a cut to be over: the ResponseWriter must not
	// be touched once the handler has returned (HTTP/2 recycles it).
	fired := make(chan struct{})
	watchdog := time.AfterFunc(time.Hour, func() {
		defer close(fired)
		_ = rc.SetWriteDeadline(time.Unix(1, 0))
	})
	watchdog.Stop()
	cut := false
	write := func(buf []byte) error {
		if cut {
			return errWriteTimedOut
		}
		watchdog.Reset(s.cfg.WriteTimeout)
		_, err := w.Write(buf)
		if err == nil {
			err = rc.Flush()
		}
		if !watchdog.Stop() {
			<-fired
			cut = true
			return errWriteTimedOut
		}
		return err
	}
	bp := getBuf()
	buf := append(*bp, s.retryField...)
	buf = append(buf, ": connected\n\n"...)
	for _, m := range sub.Snapshot() {
		buf = appendMessage(buf, m)
	}
	err := write(buf)
	*bp = buf
	putBuf(bp)
	if err != nil {
		return "write_failed"
	}

	heartbeat := time.NewTimer(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return "client_gone"

		case <-s.drain:
			if write([]byte(s.retryField+": draining, reconnect\n\n")) != nil {
				return "write_failed"
			}
			return "draining"

		case m, ok := <-sub.C():
			if !ok {
				return s.streamEnd(sub, write)
			}
			bp := getBuf()
			buf := appendMessage(*bp, m)
			// Take what is queued already, so a burst costs one flush.
			open := true
		batch:
			for len(buf) < maxBatch {
				select {
				case m, ok := <-sub.C():
					if !ok {
						open = false
						break batch
					}
					buf = appendMessage(buf, m)
				default:
					break batch
				}
			}
			err := write(buf)
			*bp = buf
			putBuf(bp)
			if err != nil {
				return "write_failed"
			}
			if !open {
				return s.streamEnd(sub, write)
			}
			if !heartbeat.Stop() {
				select {
				case <-heartbeat.C:
				default:
				}
			}
			heartbeat.Reset(s.cfg.HeartbeatInterval)

		case <-heartbeat.C:
			if write([]byte(": heartbeat\n\n")) != nil {
				return "write_failed"
			}
			heartbeat.Reset(s.cfg.HeartbeatInterval)
		}
	}
}

// streamEnd handles a subscription the session ended: a cut-off slow
// subscriber and a draining pool get a retry hint (they should come back,
// with Last-Event-ID); an ended session has sent its final event already.
func (s *Server) streamEnd(sub *session.Subscriber, write func([]byte) error) string {
	err := sub.Err()
	switch {
	case errors.Is(err, session.ErrSlowSubscriber):
		if write([]byte(s.retryField+": too slow, reconnect with Last-Event-ID\n\n")) != nil {
			return "write_failed"
		}
		return "slow_subscriber"
	case errors.Is(err, session.ErrDraining):
		if write([]byte(s.retryField+": draining, reconnect\n\n")) != nil {
			return "write_failed"
		}
		return "draining"
	case errors.Is(err, session.ErrSessionClosed):
		return "session_closed"
	default:
		return "ended"
	}
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
