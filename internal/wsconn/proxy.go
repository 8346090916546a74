package wsconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// proxyDial returns a dialer that reaches addr through the HTTP proxy
// t.Proxy names for it (HTTPS_PROXY, HTTP_PROXY and NO_PROXY with the
// default transport), with a CONNECT tunnel, as net/http does for
// websockets; directly when there is none. scheme is "http" for ws:// and
// "https" for wss://, which is what the proxy settings are chosen by.
func proxyDial(t *http.Transport, scheme string, next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		pu, err := t.Proxy(&http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: scheme, Host: addr}})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		if pu == nil {
			return next(ctx, network, addr)
		}
		if pu.Scheme != "http" {
			return nil, fmt.Errorf("proxy %s://%s: only http:// proxies are supported for the upstream socket", pu.Scheme, pu.Host)
		}
		host := pu.Host
		if pu.Port() == "" {
			host = net.JoinHostPort(pu.Hostname(), "80")
		}
		conn, err := next(ctx, network, host)
		if err != nil {
			return nil, fmt.Errorf("proxy %s: %w", pu.Host, err)
		}
		if err := connectTunnel(ctx, conn, addr, pu.User); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("proxy %s: %w", pu.Host, err)
		}
		return conn, nil
	}
}

// connectTunnel asks the proxy on conn for a tunnel to addr.
func connectTunnel(ctx context.Context, conn net.Conn, addr string, user *url.Userinfo) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if user != nil {
		pass, _ := user.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+pass)) + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	// One byte at a time: nothing the proxy sends after its answer (the
	// tunnel's first bytes) may be read into a buffer here.
	resp, err := http.ReadResponse(bufio.NewReaderSize(oneByteReader{conn}, 16), &http.Request{Method: http.MethodConnect})
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CONNECT %s: %s", addr, resp.Status)
	}
	return nil
}

// oneByteReader reads at most one byte per call.
type oneByteReader struct{ c net.Conn }

func (r oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return r.c.Read(p)
}
