package chatiosim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

const (
	maxQueue     = 256              // outgoing frames queued per socket before it is cut as too slow
	writeTimeout = 10 * time.Second // per frame
	readLimit    = 1 << 20          // max incoming frame
)

// socket is one customer websocket.
//
// Goroutines: the HTTP handler's goroutine reads the socket for its whole
// life. A writer goroutine exists only while frames are queued (started on
// demand, ends when the queue is empty), and a request processor goroutine
// exists only while a request has to wait (stall, latency). An idle socket
// therefore costs one goroutine.
type socket struct {
	s          *Server
	conn       *websocket.Conn
	license    int64
	opened     int64 // unix nanos
	lastActive atomic.Int64
	done       chan struct{} // closed when the read loop has ended

	cust   *customer              // guarded by s.mu; nil until login
	custID atomic.Pointer[string] // the customer's id once logged in (read without s.mu)

	wmu     sync.Mutex
	queue   [][]byte
	writing bool
	closeAt *closeReq // a close frame to send once the queue is written
	dead    bool

	pmu        sync.Mutex
	pending    []*request // read, not yet answered (the first may be in progress)
	processing bool       // someone is draining pending
}

type closeReq struct {
	code   websocket.StatusCode
	reason string
}

type request struct {
	id      json.RawMessage
	action  string
	payload json.RawMessage
	arrived time.Time
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "service_unavailable", "server shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	if until := s.refuseUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		httpError(w, http.StatusServiceUnavailable, "service_unavailable", "connections refused (fault injection)")
		return
	}
	lic, known, status, msg := s.checkLicense(r)
	if status != 0 {
		httpError(w, status, chatio.ErrTypeValidation, msg)
		return
	}

	now := time.Now().UnixNano()
	sk := &socket{s: s, license: lic, opened: now, done: make(chan struct{})}
	sk.lastActive.Store(now)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		OnPingReceived: func(context.Context, []byte) bool {
			sk.touch()
			return !sk.stalled() // a stalled server does not answer pings
		},
	})
	if err != nil {
		s.log.Debug("websocket accept failed", zap.Error(err))
		return
	}
	conn.SetReadLimit(readLimit)
	sk.conn = conn

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.CloseNow()
		return
	}
	s.sockets[sk] = struct{}{}
	s.mu.Unlock()

	if !known {
		// chat.io tells the client why, then closes.
		sk.push(chatio.PushCustomerDisconnected, map[string]string{"reason": "license_not_found"})
		sk.closeWith(websocket.StatusPolicyViolation, "license_not_found")
	}
	sk.readLoop()

	close(sk.done)
	sk.wmu.Lock()
	sk.dead = true
	sk.queue = nil
	sk.wmu.Unlock()
	_ = conn.CloseNow()

	s.mu.Lock()
	delete(s.sockets, sk)
	if c := sk.cust; c != nil {
		for i, x := range c.sockets {
			if x == sk {
				c.sockets = append(c.sockets[:i], c.sockets[i+1:]...)
				break
			}
		}
		if len(c.sockets) == 0 {
			c.sockets = nil
		}
	}
	s.mu.Unlock()
}

func (sk *socket) touch() { sk.lastActive.Store(time.Now().UnixNano()) }

// stalled: the server, or this socket's customer, is stalled.
func (sk *socket) stalled() bool {
	if sk.s.stallFlag.Load() {
		return true
	}
	stalled, _, _ := sk.s.faultStateFor(sk)
	return stalled
}

func (sk *socket) readLoop() {
	for {
		typ, data, err := sk.conn.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				sk.s.log.Debug("socket read ended", zap.Error(err))
			} else if ce.Code == websocket.StatusNormalClosure || ce.Code == websocket.StatusGoingAway {
				sk.wmu.Lock()
				ours := sk.closeAt != nil || sk.dead // we closed (or cut) it first
				sk.wmu.Unlock()
				if !ours {
					sk.s.nClientEnds.Add(1)
				}
			}
			return
		}
		sk.touch()
		if typ != websocket.MessageText {
			sk.closeWith(websocket.StatusUnsupportedData, "text frames only")
			continue
		}
		sk.handleFrame(data)
	}
}

func (sk *socket) handleFrame(data []byte) {
	sk.s.nRequests.Add(1)
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		sk.fail(&request{}, chatio.ErrTypeValidation, "Invalid JSON")
		return
	}
	req := &request{id: env["request_id"], payload: env["payload"], arrived: time.Now()}
	if a, ok := env["action"]; !ok || json.Unmarshal(a, &req.action) != nil || req.action == "" {
		sk.fail(req, chatio.ErrTypeValidation, "action must be a non-empty string")
		return
	}
	sk.submit(req)
}

// submit queues req for processing, answering it at once when nothing has
// to wait (no stall, no latency, nothing queued before it).
func (sk *socket) submit(req *request) {
	sk.pmu.Lock()
	if len(sk.pending) >= sk.s.cfg.MaxPending {
		sk.pmu.Unlock()
		sk.fail(req, chatio.ErrTypePendingRequestsLimit, "Too many pending requests")
		return
	}
	sk.pending = append(sk.pending, req)
	if sk.processing {
		sk.pmu.Unlock()
		return
	}
	sk.processing = true
	sk.pmu.Unlock()
	sk.drain(true)
}

// drain answers pending requests in order. Inline (on the read goroutine)
// it hands over to a processor goroutine as soon as a request must wait.
func (sk *socket) drain(inline bool) {
	s := sk.s
	for {
		sk.pmu.Lock()
		if len(sk.pending) == 0 {
			sk.pending = nil
			sk.processing = false
			sk.pmu.Unlock()
			return
		}
		req := sk.pending[0]
		sk.pmu.Unlock()

		now := time.Now()
		stalled, latency, changed := s.faultStateFor(sk)
		deadline := req.arrived.Add(s.cfg.RequestTimeout)
		due := req.arrived.Add(latency)
		switch {
		case !now.Before(deadline):
			sk.fail(req, chatio.ErrTypeRequestTimeout, "Request timed out")
		case !stalled && !now.Before(due):
			s.dispatch(sk, req)
		default:
			if inline {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					sk.drain(false)
				}()
				return
			}
			wake := deadline
			if !stalled && due.Before(wake) {
				wake = due
			}
			t := time.NewTimer(wake.Sub(now))
			select {
			case <-t.C:
			case <-changed:
			case <-sk.done:
			case <-s.closing:
			}
			t.Stop()
			select {
			case <-sk.done:
				sk.abandon()
				return
			case <-s.closing:
				sk.abandon()
				return
			default:
			}
			continue
		}
		sk.pmu.Lock()
		sk.pending[0] = nil
		sk.pending = sk.pending[1:]
		sk.pmu.Unlock()
	}
}

func (sk *socket) abandon() {
	sk.pmu.Lock()
	sk.pending = nil
	sk.processing = false
	sk.pmu.Unlock()
}

// --- writing ---

func encodeFrame(reqID json.RawMessage, action, typ string, success *bool, payload any) []byte {
	var p json.RawMessage
	if payload != nil {
		p = mustJSON(payload)
	}
	return mustJSON(chatio.Frame{RequestID: reqID, Action: action, Type: typ, Success: success, Payload: p})
}

var (
	yes = true
	no  = false
)

// respond sends a successful response to req.
func (sk *socket) respond(req *request, payload any) {
	if payload == nil {
		payload = struct{}{}
	}
	sk.send(encodeFrame(req.id, req.action, chatio.TypeResponse, &yes, payload))
}

// fail sends an error response to req.
func (sk *socket) fail(req *request, typ, msg string) {
	sk.send(encodeFrame(req.id, req.action, chatio.TypeResponse, &no,
		chatio.ErrorPayload{Error: chatio.WireError{Type: typ, Message: msg}}))
}

// push sends a push without request id to this socket only.
func (sk *socket) push(action string, payload any) {
	sk.send(encodeFrame(nil, action, chatio.TypePush, nil, payload))
}

// send queues one frame. It never blocks: a socket whose queue is full is
// cut (a real server drops clients that do not read).
func (sk *socket) send(frame []byte) {
	sk.wmu.Lock()
	defer sk.wmu.Unlock()
	if sk.dead || sk.closeAt != nil {
		return
	}
	if len(sk.queue) >= maxQueue {
		sk.s.nSlow.Add(1)
		sk.s.log.Info("socket cut: outgoing queue full", zap.Int("queued", len(sk.queue)))
		sk.dead = true
		sk.queue = nil
		_ = sk.conn.CloseNow() // does not wait for the peer
		return
	}
	sk.queue = append(sk.queue, frame)
	sk.startWriter()
}

// closeWith sends a close frame once the queued frames are written.
// Frames queued afterwards are dropped. Idempotent.
func (sk *socket) closeWith(code websocket.StatusCode, reason string) {
	sk.wmu.Lock()
	defer sk.wmu.Unlock()
	if sk.dead || sk.closeAt != nil || sk.conn == nil {
		return
	}
	sk.closeAt = &closeReq{code: code, reason: reason}
	sk.startWriter()
}

// kill closes the socket at once, without a close frame; false when it
// was dead already.
func (sk *socket) kill() bool {
	sk.wmu.Lock()
	was := sk.dead
	sk.dead = true
	sk.queue = nil
	sk.wmu.Unlock()
	if sk.conn != nil {
		_ = sk.conn.CloseNow()
	}
	return !was
}

// startWriter starts the writer goroutine if none runs. Called with wmu held.
func (sk *socket) startWriter() {
	if sk.writing {
		return
	}
	sk.writing = true
	sk.s.wg.Add(1)
	go sk.writeLoop()
}

func (sk *socket) writeLoop() {
	defer sk.s.wg.Done()
	for {
		sk.wmu.Lock()
		if sk.dead {
			sk.writing = false
			sk.wmu.Unlock()
			return
		}
		if len(sk.queue) == 0 {
			cr := sk.closeAt
			if cr == nil {
				sk.queue = nil
				sk.writing = false
				sk.wmu.Unlock()
				return
			}
			sk.dead = true
			sk.writing = false
			sk.wmu.Unlock()
			_ = sk.conn.Close(cr.code, cr.reason)
			return
		}
		frame := sk.queue[0]
		sk.queue[0] = nil
		sk.queue = sk.queue[1:]
		sk.wmu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err := sk.conn.Write(ctx, websocket.MessageText, frame)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				sk.s.nSlow.Add(1)
				sk.s.log.Info("socket cut: write timed out")
			}
			sk.kill()
			sk.wmu.Lock()
			sk.writing = false
			sk.wmu.Unlock()
			return
		}
	}
}
