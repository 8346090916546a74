package wsconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectProxy is a CONNECT-only HTTP proxy on 127.0.0.1 that records
// what it was asked; with refuse it answers 407.
type connectProxy struct {
	ln     net.Listener
	refuse bool
	wg     sync.WaitGroup

	mu   sync.Mutex
	seen []string // "CONNECT host:port auth"
}

func startProxy(t *testing.T, refuse bool) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, refuse: refuse}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.seen = append(p.seen, req.Method+" "+req.Host+" "+req.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	if p.refuse {
		_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		return
	}
	defer up.Close()
	_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() { _, _ = io.Copy(up, br); close(done) }()
	_, _ = io.Copy(c, up)
	c.Close()
	up.Close()
	<-done
}

// The upstream socket goes through the transport's proxy (HTTPS_PROXY
// with the default one) with a CONNECT tunnel, credentials included.
func TestWSThroughProxy(t *testing.T) {
	target := httptest.NewServer(echoOnce)
	defer target.Close()
	host := strings.TrimPrefix(target.URL, "http://")
	u := "ws://" + host + "/rtm/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	p := startProxy(t, false)
	pu := &url.URL{Scheme: "http", Host: p.ln.Addr().String(), User: url.UserPassword("gw", "s3cret")}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	c, err := Dial(ctx, u, hc, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoRoundTrip(t, c)
	want := "CONNECT " + host + " Basic " + base64.StdEncoding.EncodeToString([]byte("gw:s3cret"))
	p.mu.Lock()
	seen := append([]string(nil), p.seen...)
	p.mu.Unlock()
	if len(seen) != 1 || seen[0] != want {
		t.Fatalf("proxy saw %q, want [%q]", seen, want)
	}

	refusing := startProxy(t, true)
	hc = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: refusing.ln.Addr().String()})}}
	if _, err := Dial(ctx, u, hc, 1<<10); err == nil || !strings.Contains(err.Error(), "407") {
		t.Fatalf("through a refusing proxy: %v, want its 407", err)
	}
}
