package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/memnet"
)

// rawConn is a client speaking HTTP/1.1 on its own connection.
type rawConn struct {
	t  *testing.T
	c  net.Conn // a *net.TCPConn from dialRaw
	br *bufio.Reader
}

// dialRaw connects to url over TCP.
func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// rawTo connects to e's gateway: over e's in-memory network in a bubble
// (newBubbleEnv), else over TCP.
func rawTo(t *testing.T, e *env) *rawConn {
	t.Helper()
	if e.dial == nil {
		return dialRaw(t, e.srv.URL)
	}
	c, err := e.dial(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// answer reads one answer, waiting at most 10 s for it.
func (rc *rawConn) answer(method string) resp {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("answer's body: %v", err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// closed reports whether the server closed the connection (after its
// answer).
func (rc *rawConn) closed() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

// bodyTimeoutEnv is a gateway whose bodies must arrive within 300 ms, in
// a synctest bubble (newBubbleEnv).
func bodyTimeoutEnv(t *testing.T) *env {
	return newBubbleEnv(t, func(o *envOptions) {
		o.cfg.BodyTimeout = 300 * time.Millisecond
		o.cfg.UploadBodyTimeout = 300 * time.Millisecond
	})
}

// expectBodyTimeout checks a 408 TIMEOUT answer, 300 ms (the body
// timeout, on the bubble's clock) after the request's head was written,
// after which the server closes the connection.
func expectBodyTimeout(t *testing.T, rc *rawConn, method string) {
	t.Helper()
	sent := time.Now()
	r := rc.answer(method)
	if d := time.Since(sent); d != 300*time.Millisecond {
		t.Errorf("answered %v after the request, want the body timeout, 300ms", d)
	}
	m := expect(t, r, http.StatusRequestTimeout, CodeTimeout)
	if m["message"] != "the request body did not arrive in time" {
		t.Errorf("message %v", m["message"])
	}
	if !rc.closed() {
		t.Error("connection left open after a body timeout")
	}
}

// TestBodyTimeout: a JSON body that stalls is answered 408 TIMEOUT once
// BodyTimeout has passed, and its connection closed. In synctest bubbles.
func TestBodyTimeout(t *testing.T) {
	for name, req := range map[string]string{
		"length":  "Content-Length: 40\r\n\r\n{\"te",
		"chunked": "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"te\r\n",
		"nothing": "Content-Length: 40\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := bodyTimeoutEnv(t)
				chat, _ := e.startChat("tok")
				rc := rawTo(t, e)
				rc.write("POST /v1/chats/" + chat + "/messages HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tok\r\nContent-Type: application/json\r\n" + req)
				expectBodyTimeout(t, rc, "POST")
			})
		})
	}
}

// TestUploadBodyTimeout: an upload whose body stalls, before its file part
// or within it (while it streams upstream), is answered 408 TIMEOUT once
// UploadBodyTimeout has passed. In synctest bubbles.
func TestUploadBodyTimeout(t *testing.T) {
	for name, body := range map[string]string{
		"before the file": "--XX\r\nContent-Disposition: form-data; name=\"customId\"\r\n\r\nab",
		"in the file":     "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello",
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := bodyTimeoutEnv(t)
				chat, _ := e.startChat("tok")
				rc := rawTo(t, e)
				rc.write("POST /v1/chats/" + chat + "/files HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tok\r\n" +
					"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000\r\n\r\n" + body)
				expectBodyTimeout(t, rc, "POST")
			})
		})
	}
}

// h2cClient serves e's gateway over h2c too and returns a client speaking
// only h2c, and the server's URL.
func h2cClient(t *testing.T, e *env) (*http.Client, string) {
	srv := httptest.NewUnstartedServer(e.api.Handler())
	var sp http.Protocols
	sp.SetHTTP1(true)
	sp.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &sp
	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp}
	if e.dial != nil { // in a bubble: over an in-memory network too
		ln := memnet.Listen("h2c.test:80")
		_ = srv.Listener.Close()
		srv.Listener = ln
		tr.DialContext = ln.Dial
	}
	srv.Start()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &http.Client{Transport: tr}, srv.URL
}

// TestBodyTimeoutH2: over HTTP/2 the deadline is the stream's: a stalled
// body is 408 TIMEOUT, and the connection's other streams go on. In a
// synctest bubble.
func TestBodyTimeoutH2(t *testing.T) {
	synctest.Test(t, testBodyTimeoutH2)
}

func testBodyTimeoutH2(t *testing.T) {
	e := bodyTimeoutEnv(t)
	chat, _ := e.startChat("tok")
	client, url := h2cClient(t, e)

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, `{"te`) }() // then nothing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chats/"+chat+"/messages", pr)
	req.Header.Set("Authorization", "Bearer tok")
	sent := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if d := time.Since(sent); d != 300*time.Millisecond {
		t.Errorf("answered %v after the request, want the body timeout, 300ms", d)
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("answered over %s", res.Proto)
	}
	expect(t, resp{res.StatusCode, res.Header, b}, http.StatusRequestTimeout, CodeTimeout)

	req, _ = http.NewRequest("POST", url+"/v1/chats/"+chat+"/messages", strings.NewReader(`{"text":"on time"}`))
	req.Header.Set("Authorization", "Bearer tok")
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	expect(t, resp{res.StatusCode, res.Header, b}, 201, "")
}

// TestPromptBodySlowUpstream: the body deadline bounds the body only: a
// call whose body came in time and whose upstream answers after the
// deadline gets its answer, over HTTP/1.1 and HTTP/2. In a synctest
// bubble: the upstream's second of latency takes no wall time.
func TestPromptBodySlowUpstream(t *testing.T) {
	synctest.Test(t, testPromptBodySlowUpstream)
}

func testPromptBodySlowUpstream(t *testing.T) {
	e := bodyTimeoutEnv(t)
	chat, _ := e.startChat("tok")
	h2, h2URL := h2cClient(t, e)
	e.sim.SetLatency(time.Second)
	defer e.sim.SetLatency(0)
	for name, c := range map[string]struct {
		client *http.Client
		url    string
	}{"http1": {e.client, e.srv.URL}, "h2c": {h2, h2URL}} {
		req, _ := http.NewRequest("POST", c.url+"/v1/chats/"+chat+"/messages", strings.NewReader(`{"text":"slow upstream"}`))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 201 {
			t.Errorf("%s: %d %s", name, res.StatusCode, b)
		}
	}
}

// TestUploadCutShort: an upload whose client half-closes before the end of
// its body (a broken request, answered to a client that can still read)
// is 400 INVALID_ARGS, the JSON calls' answer to a cut body.
func TestUploadCutShort(t *testing.T) {
	e := newEnv(t)
	chat, _ := e.startChat("tok")
	rc := dialRaw(t, e.srv.URL) // TCP: CloseWrite
	rc.write("POST /v1/chats/" + chat + "/files HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer tok\r\n" +
		"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000\r\n\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nsome bytes")
	if err := rc.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	expect(t, rc.answer("POST"), 400, CodeInvalidArgs)
}

func TestBodyTimeoutConfig(t *testing.T) {
	for _, c := range []Config{{BodyTimeout: -1}, {UploadBodyTimeout: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if d := (Config{}).withDefaults(); d.BodyTimeout != DefaultBodyTimeout || d.UploadBodyTimeout != DefaultUploadBodyTimeout {
		t.Fatalf("defaults %v %v", d.BodyTimeout, d.UploadBodyTimeout)
	}
}
