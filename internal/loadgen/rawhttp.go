package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rawClient is the leanest HTTP/1.1 client: the calling goroutine writes
// the request and reads the answer itself, over a kept-alive connection.
// net/http's client hands the write and the read to goroutines of its own
// (two more wake-ups per call, ≈ 0.06 ms each on a small virtual machine),
// as the direct baseline's client does not: calls made with both, in turn,
// show how much of the REST latency is the gateway's and how much the
// client's.
type rawClient struct {
	addr string // host:port
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle []*rawConn // guarded by mu; at most rawMaxIdle
}

type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

const rawMaxIdle = 64

func (c *rawClient) get(ctx context.Context) (*rawConn, bool, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rc, true, nil
	}
	c.mu.Unlock()
	nc, err := c.dial(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	return &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}, false, nil
}

func (c *rawClient) put(rc *rawConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= rawMaxIdle {
		_ = rc.nc.Close()
		return
	}
	c.idle = append(c.idle, rc)
}

// do makes one request and returns the answer's status (the body is read
// and dropped). A kept-alive connection the server has closed meanwhile
// is replaced once.
func (c *rawClient) do(ctx context.Context, method, path, token, body string) (int, error) {
	for attempt := 0; ; attempt++ {
		rc, reused, err := c.get(ctx)
		if err != nil {
			return 0, err
		}
		status, keep, err := rc.roundTrip(ctx, c.addr, method, path, token, body)
		if err != nil {
			_ = rc.nc.Close()
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return 0, err
		}
		if keep {
			c.put(rc)
		} else {
			_ = rc.nc.Close()
		}
		return status, nil
	}
}

func (rc *rawConn) roundTrip(ctx context.Context, host, method, path, token, body string) (status int, keep bool, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = rc.nc.SetDeadline(deadline)
	req := make([]byte, 0, 256+len(body))
	req = append(req, method...)
	req = append(req, ' ')
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nAuthorization: Bearer "...)
	req = append(req, token...)
	if body != "" {
		req = append(req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
	}
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	if _, err := rc.nc.Write(req); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	if rc.br.Buffered() > 0 {
		return 0, false, errors.New("bytes after the answer")
	}
	return resp.StatusCode, !resp.Close, nil
}

func (c *rawClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.idle {
		_ = rc.nc.Close()
	}
	c.idle = nil
}
