package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestHalfCloseGetsTheAnswer: a client that sends its whole request, then
// closes its side of the connection (shutdown SHUT_WR), gets the real
// answer, even when net/http has canceled the request's context on
// reading EOF before the upstream answered.
func TestHalfCloseGetsTheAnswer(t *testing.T) {
	e := newEnv(t)
	cust := expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")["customerId"].(string)
	chat, _ := e.startChat("tok")

	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/chats/" + chat + "/messages", `{"text":"sent, then half-closed"}`},
		{"GET", "/v1/chats", ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			canceled := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				go func() {
					<-r.Context().Done()
					close(canceled)
				}()
				e.api.ServeHTTP(w, r)
			}))
			defer srv.Close()

			e.sim.StallCustomer(cust, true) // the upstream answers only once the client has half-closed
			rc := dialRaw(t, srv.URL)
			req := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tok\r\n"
			if tc.body != "" {
				req += "Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(tc.body)) + "\r\n"
			}
			rc.write(req + "\r\n" + tc.body)
			if err := rc.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-canceled: // net/http read EOF
			case <-time.After(10 * time.Second):
				t.Fatal("the request's context was not canceled at EOF")
			}
			e.sim.StallCustomer(cust, false)
			r := rc.answer(tc.method)
			if r.status >= 300 {
				t.Fatalf("half-closed client got %d %s", r.status, r.body)
			}
		})
	}
}

// TestCanceledNeverAnswers499: a canceled context maps to a documented
// status whatever canceled it.
func TestCanceledNeverAnswers499(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/v1/events", nil), httptest.NewRequestWithContext(ctx, "GET", "/v1/events", nil)} {
		st, body, retry := classify(r, &acquireError{context.Canceled})
		if st != 503 || body.Code != CodeConnectionLost || !retry {
			t.Errorf("canceled: %d %s %v", st, body.Code, retry)
		}
	}
}
