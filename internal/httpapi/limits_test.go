package httpapi

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestRateLimitPerToken: a token past its burst is answered 429
// REQUEST_FAILED too_many_requests with a Retry-After; another token is not
// affected; the bucket refills at the configured rate; an event stream
// opened with the header counts too.
func TestRateLimitPerToken(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.cfg.RateLimit, o.cfg.RateBurst = 5, 3 })
	for range 3 {
		expect(t, e.do("GET", "/v1/session", "busy", nil), 200, "")
	}
	r := e.do("GET", "/v1/session", "busy", nil)
	m := expect(t, r, http.StatusTooManyRequests, CodeRequestFailed)
	if m["type"] != "too_many_requests" {
		t.Fatalf("type %v", m["type"])
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// a refused request never reached the handler: a bad body is not even read
	expect(t, e.do("POST", "/v1/chats", "busy", `{bad`), http.StatusTooManyRequests, CodeRequestFailed)
	_, r = e.tryStream("/v1/events", "busy")
	expect(t, r, http.StatusTooManyRequests, CodeRequestFailed)

	expect(t, e.do("GET", "/v1/session", "calm", nil), 200, "") // another customer

	time.Sleep(250 * time.Millisecond) // 5/s: one more request
	expect(t, e.do("GET", "/v1/session", "busy", nil), 200, "")
}

// TestRateLimiterBounded: the limiter's table holds at most its bound;
// refilled buckets are swept; a full table refuses new tokens with
// OVERLOADED rather than growing.
func TestRateLimiterBounded(t *testing.T) {
	l := newRateLimiter(10, 2, 3)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if err := l.allow("t" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	err := l.allow("t3")
	if _, ok := err.(*apiError); !ok || err.(*apiError).code != CodeOverloaded {
		t.Fatalf("full table: %v", err)
	}
	if l.len() != 3 {
		t.Fatalf("%d buckets", l.len())
	}
	now = now.Add(time.Second) // every bucket refilled: swept
	if err := l.allow("t3"); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
	if l.len() != 1 {
		t.Fatalf("%d buckets after the sweep", l.len())
	}
	// burst 2, then refused with the wait for one token (100ms at 10/s)
	_ = l.allow("t3")
	err = l.allow("t3")
	rl, ok := err.(*rateLimitedError)
	if !ok || rl.wait <= 0 || rl.wait > 100*time.Millisecond || rl.retryAfter() != "1" {
		t.Fatalf("over the burst: %v", err)
	}
}

// TestInFlightLimit: calls of one session beyond MaxInFlight are answered
// 503 OVERLOADED with Retry-After at once, not queued; the others complete.
func TestInFlightLimit(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.pool.MaxInFlight = 2 })
	expect(t, e.do("GET", "/v1/session", "tok", nil), 200, "")
	e.sim.SetLatency(400 * time.Millisecond)
	defer e.sim.SetLatency(0)
	var wg sync.WaitGroup
	out := make([]resp, 6)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = e.doNoFatal("GET", "/v1/chats", "tok", "")
		}()
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
	if ok < 1 || ok > 2 || over < 4 {
		t.Fatalf("%d answered, %d refused; want at most 2 answered", ok, over)
	}
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
