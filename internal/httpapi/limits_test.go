package httpapi

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitPerToken: a token past its burst is answered 429
// REQUEST_FAILED too_many_requests with a Retry-After; another token is not
// affected; the bucket refills at the configured rate; an event stream
// opened with the header counts too. In a synctest bubble, on the
// limiter's own clock: the refill comes to the instant.
func TestRateLimitPerToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, func(o *envOptions) { o.cfg.RateLimit, o.cfg.RateBurst = 5, 3 })
		for range 3 {
			expect(t, e.do("GET", "/v1/session", "busy", nil), 200, "")
		}
		r := e.do("GET", "/v1/session", "busy", nil)
		m := expect(t, r, http.StatusTooManyRequests, CodeRequestFailed)
		if m["type"] != "too_many_requests" {
			t.Fatalf("type %v", m["type"])
		}
		if ra := r.header.Get("Retry-After"); ra != "1" { // 200 ms, in whole seconds
			t.Fatalf("Retry-After %q, want 1", ra)
		}
		// a refused request never reached the handler: a bad body is not even read
		expect(t, e.do("POST", "/v1/chats", "busy", `{bad`), http.StatusTooManyRequests, CodeRequestFailed)
		_, r = e.tryStream("/v1/events", "busy")
		expect(t, r, http.StatusTooManyRequests, CodeRequestFailed)

		expect(t, e.do("GET", "/v1/session", "calm", nil), 200, "") // another customer

		// 5/s: one more request 200 ms after the bucket ran dry, not before.
		time.Sleep(200*time.Millisecond - time.Microsecond)
		expect(t, e.do("GET", "/v1/session", "busy", nil), http.StatusTooManyRequests, CodeRequestFailed)
		time.Sleep(time.Microsecond)
		expect(t, e.do("GET", "/v1/session", "busy", nil), 200, "")
		expect(t, e.do("GET", "/v1/session", "busy", nil), http.StatusTooManyRequests, CodeRequestFailed)
	})
}

// TestInFlightLimit: calls of one session beyond MaxInFlight are answered
// 503 OVERLOADED with Retry-After at once, not queued; the others complete.
// In a synctest bubble: the six calls all arrive while the first two wait
// for the upstream (its latency on the bubble's clock), so exactly two are
// answered.
func TestInFlightLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, func(o *envOptions) { o.pool.MaxInFlight = 2 })
		expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
		e.sim.SetLatency(400 * time.Millisecond)
		defer e.sim.SetLatency(0)
		var wg sync.WaitGroup
		out := make([]resp, 6)
		start := time.Now()
		for i := range out {
			wg.Go(func() { out[i] = e.doNoFatal("GET", "/v1/chats", "tok", "") })
		}
		wg.Wait()
		ok, over := 0, 0
		for _, r := range out {
			switch r.status {
			case 200:
				ok++
			case 503:
				if !bytes.Contains(r.body, []byte(CodeOverloaded)) || r.header.Get("Retry-After") == "" {
					t.Errorf("503 without OVERLOADED/Retry-After: %s", r.body)
				}
				over++
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}
		if ok != 2 || over != 4 {
			t.Fatalf("%d answered, %d refused; want 2 answered, 4 refused", ok, over)
		}
		if d := time.Since(start); d != 400*time.Millisecond {
			t.Fatalf("the calls took %v, want the upstream's 400ms (none queued)", d)
		}
	})
}

// TestMaxFileBytes: a smaller file limit is enforced while streaming, with
// the SDK's wording for that limit; a file within it goes through.
func TestMaxFileBytes(t *testing.T) {
	const limit = 1000
	e := newEnv(t, func(o *envOptions) { o.cfg.MaxFileBytes = limit })
	chat, _ := e.startChat("tok")
	send := func(n int) resp {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "f.bin")
		_, _ = fw.Write(bytes.Repeat([]byte("x"), n))
		_ = mw.Close()
		// no Content-Length: the limit is enforced while reading
		return e.do("POST", "/v1/chats/"+chat+"/files", "tok", io.MultiReader(&b), "Content-Type: "+mw.FormDataContentType())
	}
	m := expect(t, send(limit+1), 413, CodeInvalidArgs)
	if m["message"] != "The file is too big (max size is 0.00 MB)." {
		t.Fatalf("message %v", m["message"])
	}
	expect(t, send(limit), 201, "")
	if fileTooBig(10<<20) != fileTooBigMessage {
		t.Fatalf("default wording %q", fileTooBig(10<<20))
	}
	if err := (Config{MaxFileBytes: 11 << 20}).Validate(); err == nil {
		t.Fatal("a file limit above chat.io's accepted")
	}
}
