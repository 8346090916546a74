package chatiosim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// Server is the simulator: an http.Handler serving the customer socket, the
// file upload and the control API, plus the Go API for the agent side, fault
// injection and observation. Safe for concurrent use. Create with New (or
// Start in tests) and end with Close.
type Server struct {
	cfg      Config
	log      *zap.Logger
	router   http.Handler
	licenses map[int64]bool // nil → any

	mu        sync.Mutex // guards the model and the socket sets
	closed    bool
	customers map[string]*customer
	chats     map[string]*chat
	ids       map[string]struct{}
	agents    map[string]*agentState
	sockets   map[*socket]struct{}
	seq       uint64
	files     map[string]fileInfo
	botAgent  *agentState

	wg      sync.WaitGroup // every goroutine the server starts (socket readers, writers, processors, sweeper, bot)
	closing chan struct{}  // closed by Close

	fmu         sync.Mutex // guards stalled, stalledCust, latency, faultCh
	stalled     bool
	stalledCust map[string]bool // customer ids stalled by StallCustomer
	latency     time.Duration
	faultCh     chan struct{} // closed and replaced whenever stall or latency change
	stallFlag   atomic.Bool
	refuseUntil atomic.Int64 // unix nanos

	watchMu  sync.Mutex
	watchers map[*watcher]struct{}

	nSlow       atomic.Uint64
	nDropped    atomic.Uint64
	nBotDropped atomic.Uint64
	nRequests   atomic.Uint64
	nClientEnds atomic.Uint64
}

// New returns a Server ready to serve (ServeHTTP). It starts one sweeper
// goroutine (login/idle timeouts) and, with cfg.Bot, the bot's worker; both
// end with Close.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		customers: map[string]*customer{},
		chats:     map[string]*chat{},
		ids:       map[string]struct{}{},
		agents:    map[string]*agentState{},
		sockets:   map[*socket]struct{}{},
		files:     map[string]fileInfo{},
		closing:   make(chan struct{}),
		faultCh:   make(chan struct{}),
		watchers:  map[*watcher]struct{}{},
	}
	if cfg.Licenses != nil {
		s.licenses = make(map[int64]bool, len(cfg.Licenses))
		for _, l := range cfg.Licenses {
			s.licenses[l] = true
		}
	}
	s.router = s.routes()
	s.wg.Add(1)
	go s.sweep()
	if cfg.Bot {
		s.startBot()
	}
	return s
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Get("/customer/v0.5/rtm/ws", s.serveSocket)
	r.Post("/customer/v0.5/action/send_file", s.serveSendFile)
	r.Get("/files/{id}/{name}", s.serveFile)
	r.Route("/control/v1", s.controlRoutes)
	return r
}

// ServeHTTP serves /customer/v0.5/rtm/ws, /customer/v0.5/action/send_file,
// /files/{id}/{name} and /control/v1/....
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// Close ends the simulator: new sockets and uploads are refused (503),
// every socket gets a close frame (1001 "server shutting down"; sockets
// still open after a second are cut), and Close returns once every
// goroutine the server started has ended. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.closing)
	s.closeWatchers()
	socks := make([]*socket, 0, len(s.sockets))
	for sk := range s.sockets {
		socks = append(socks, sk)
	}
	s.mu.Unlock()

	for _, sk := range socks {
		sk.closeWith(1001, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	for _, sk := range socks {
		sk.kill()
	}
	<-done
}

// sweep closes sockets that did not log in within LoginTimeout and sockets
// silent for IdleTimeout. One goroutine for all sockets: no timer per socket.
func (s *Server) sweep() {
	defer s.wg.Done()
	every := min(s.cfg.LoginTimeout, s.cfg.IdleTimeout) / 4
	every = max(every, 5*time.Millisecond)
	every = min(every, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case now := <-t.C:
			n := now.UnixNano()
			login := int64(s.cfg.LoginTimeout)
			idle := int64(s.cfg.IdleTimeout)
			s.mu.Lock()
			for sk := range s.sockets {
				switch {
				case sk.cust == nil && n-sk.opened > login:
					sk.closeWith(1008, "login_timeout")
				case n-sk.lastActive.Load() > idle:
					sk.closeWith(1008, "connection_timeout")
				}
			}
			s.mu.Unlock()
		}
	}
}

// faultState returns the current stall flag, latency and the channel that
// is closed on the next change of either.
func (s *Server) faultState() (bool, time.Duration, <-chan struct{}) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.stalled, s.latency, s.faultCh
}

// faultStateFor is faultState for one socket: stalled also when its
// customer is (StallCustomer).
func (s *Server) faultStateFor(sk *socket) (bool, time.Duration, <-chan struct{}) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	stalled := s.stalled
	if id := sk.custID.Load(); id != nil && len(s.stalledCust) > 0 {
		stalled = stalled || s.stalledCust[*id]
	}
	return stalled, s.latency, s.faultCh
}

func (s *Server) faultChanged() {
	close(s.faultCh)
	s.faultCh = make(chan struct{})
}

// checkLicense parses license_id: ok=false with an HTTP status and message
// when it is missing or not a positive integer; known=false when it is well
// formed but not one of Config.Licenses.
func (s *Server) checkLicense(r *http.Request) (lic int64, known bool, status int, msg string) {
	raw := r.URL.Query().Get("license_id")
	if raw == "" {
		return 0, false, http.StatusBadRequest, "license_id is required"
	}
	lic, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || lic <= 0 {
		return 0, false, http.StatusBadRequest, "license_id must be a positive integer"
	}
	if s.licenses != nil && !s.licenses[lic] {
		return lic, false, 0, ""
	}
	return lic, true, 0, ""
}

// httpError writes {"error":{"type","message"}} with status.
func httpError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, chatio.ErrorPayload{Error: chatio.WireError{Type: typ, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"type":"internal","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Stats are counters for tests and the control API.
type Stats struct {
	Sockets       int    `json:"sockets"`        // open customer sockets
	LoggedIn      int    `json:"logged_in"`      // of which logged in
	Customers     int    `json:"customers"`      // customers known
	Chats         int    `json:"chats"`          // chats in memory
	Requests      uint64 `json:"requests"`       // requests read from sockets
	SlowSockets   uint64 `json:"slow_sockets"`   // sockets cut because their outgoing queue overflowed or a write timed out
	WatchDropped  uint64 `json:"watch_dropped"`  // activities not delivered to a full Watch channel
	BotDropped    uint64 `json:"bot_dropped"`    // activities the bot dropped (its queue was full)
	Stalled       bool   `json:"stalled"`        // Stall(true) in force
	LatencyMillis int64  `json:"latency_millis"` // SetLatency
	ClientCloses  uint64 `json:"client_closes"`  // sockets the client closed with a close frame 1000 (normal) or 1001 (going away)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Sockets: len(s.sockets), Customers: len(s.customers), Chats: len(s.chats)}
	for sk := range s.sockets {
		if sk.cust != nil {
			st.LoggedIn++
		}
	}
	s.mu.Unlock()
	st.Requests = s.nRequests.Load()
	st.SlowSockets = s.nSlow.Load()
	st.WatchDropped = s.nDropped.Load()
	st.BotDropped = s.nBotDropped.Load()
	stalled, lat, _ := s.faultState()
	st.Stalled = stalled
	st.LatencyMillis = lat.Milliseconds()
	st.ClientCloses = s.nClientEnds.Load()
	return st
}
