package wsconn

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// BenchmarkRead: a push-sized text message read by Read (the goroutine
// way) from bytes in memory: header decoding and the message's copy.
func BenchmarkRead(b *testing.B) {
	var buf bytes.Buffer
	_ = ws.WriteFrame(&buf, ws.NewTextFrame(bytes.Repeat([]byte("x"), 300)))
	one := buf.Bytes()
	const n = 64
	all := bytes.Repeat(one, n)
	r := bytes.NewReader(all)
	c := &Conn{nc: nopConn{}, r: r, limit: 1 << 20, pongs: make(chan struct{}, 1)}
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r.Reset(all)
		}
		if _, err := c.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
