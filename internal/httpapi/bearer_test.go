package httpapi

import (
	"io"
	"net/http"
	"testing"
)

// TestTwoAuthorizationHeaders: a request with two Authorization headers is
// refused, whichever of them is valid.
func TestTwoAuthorizationHeaders(t *testing.T) {
	e := newEnv(t)
	for _, rq := range [][2]string{{"GET", "/v1/session"}, {"POST", "/v1/tickets"}, {"GET", "/v1/events"}, {"POST", "/v1/chats/C/files"}} {
		for _, second := range []string{"Bearer other", "", "Basic dXNlcjpwdw=="} {
			req, _ := http.NewRequest(rq[0], e.srv.URL+rq[1], nil)
			req.Header.Add("Authorization", "Bearer tok")
			req.Header.Add("Authorization", second)
			res, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			expect(t, resp{res.StatusCode, res.Header, b}, 401, CodeAuthentication)
		}
	}
	if n := e.pool.Len(); n != 0 {
		t.Fatalf("%d sessions opened", n)
	}
}
