package chatiosim

import (
	"time"

	"github.com/coder/websocket"

	"github.com/chatio-gateway/chatio-gateway/internal/chatio"
)

// DropAll cuts every customer socket at once, without a close frame (the
// client sees the connection vanish). It returns how many this call cut.
func (s *Server) DropAll() int {
	s.mu.Lock()
	socks := make([]*socket, 0, len(s.sockets))
	for sk := range s.sockets {
		socks = append(socks, sk)
	}
	s.mu.Unlock()
	return killAll(socks)
}

// killAll cuts socks and counts those this call cut (a socket cut before
// stays registered until its read loop has noticed).
func killAll(socks []*socket) int {
	n := 0
	for _, sk := range socks {
		if sk.kill() {
			n++
		}
	}
	return n
}

// DropCustomer cuts every socket of one customer like DropAll.
func (s *Server) DropCustomer(customerID string) int {
	s.mu.Lock()
	var socks []*socket
	if c := s.customers[customerID]; c != nil {
		socks = append(socks, c.sockets...)
	}
	s.mu.Unlock()
	return killAll(socks)
}

// DisconnectCustomer pushes customer_disconnected {reason} (no reason field
// when reason is "") to every socket of the customer, then closes them with
// a normal close frame (1000, the reason as close reason). It returns how
// many sockets it closed.
func (s *Server) DisconnectCustomer(customerID, reason string) int {
	payload := map[string]string{}
	if reason != "" {
		payload["reason"] = reason
	}
	closeReason := reason
	if len(closeReason) > 120 {
		closeReason = closeReason[:120]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.customers[customerID]
	if c == nil {
		return 0
	}
	for _, sk := range c.sockets {
		sk.push(chatio.PushCustomerDisconnected, payload)
		sk.closeWith(websocket.StatusNormalClosure, closeReason)
	}
	return len(c.sockets)
}

// Stall makes the simulator hang (on) or recover (off). While stalled,
// sockets are still read, but requests are not answered (they wait; the
// 11th pending one fails with pending_requests_limit_reached, and each
// fails with request_timeout RequestTimeout after it arrived) and
// websocket pings get no pong. Turning it off answers the waiting requests
// in order.
func (s *Server) Stall(on bool) {
	s.stallFlag.Store(on)
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.stalled != on {
		s.stalled = on
		s.faultChanged()
	}
}

// StallCustomer is Stall for the logged-in sockets of one customer: their
// requests wait (and fail with request_timeout after RequestTimeout) and
// their websocket pings get no pong, while pushes still reach them; other
// customers are served as usual. A new socket's login is answered (the
// customer is known only from it); what follows it stalls. Off answers the
// waiting requests in order.
func (s *Server) StallCustomer(customerID string, on bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.stalledCust[customerID] == on {
		return
	}
	if on {
		if s.stalledCust == nil {
			s.stalledCust = make(map[string]bool)
		}
		s.stalledCust[customerID] = true
	} else {
		delete(s.stalledCust, customerID)
	}
	s.faultChanged()
}

// InjectFrame sends frame, as is (it need not be JSON), to every logged-in
// socket of the customer, in order with the other frames of the socket. It
// returns how many sockets it was queued to. For tests of how a client
// copes with frames a faithful server never sends.
func (s *Server) InjectFrame(customerID string, frame []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.customers[customerID]
	if c == nil {
		return 0
	}
	for _, sk := range c.sockets {
		sk.send(append([]byte(nil), frame...))
	}
	return len(c.sockets)
}

// SetLatency delays every answer by d (measured from the request's arrival;
// requests of a socket stay in order). 0 turns it off.
func (s *Server) SetLatency(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.latency != d {
		s.latency = d
		s.faultChanged()
	}
}

// RefuseConnections answers every new socket upgrade with HTTP 503 for the
// next d (0 ends a refusal in force). Open sockets are not touched.
func (s *Server) RefuseConnections(d time.Duration) {
	if d <= 0 {
		s.refuseUntil.Store(0)
		return
	}
	s.refuseUntil.Store(time.Now().Add(d).UnixNano())
}
