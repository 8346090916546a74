//go:build !linux

package netpoll

import "syscall"

// ScratchSize is the size of the buffer a loop lends to Readable.
const ScratchSize = 64 << 10

// Poller is unavailable here: New returns ErrUnsupported.
type Poller struct{}

// Watch is one watched socket.
type Watch struct{}

// Reader is a loop's scratch space and reader (unavailable here).
type Reader struct{ Buf []byte }

// Read returns ErrUnsupported.
func (r *Reader) Read(syscall.RawConn, []byte) (int, error) { return 0, ErrUnsupported }

// New returns ErrUnsupported.
func New(int) (*Poller, error) { return nil, ErrUnsupported }

// Add returns ErrUnsupported.
func (p *Poller) Add(syscall.Conn, func(*Reader) bool, func()) (*Watch, error) {
	return nil, ErrUnsupported
}

// Len is 0.
func (p *Poller) Len() int { return 0 }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Shutdown returns ErrUnsupported.
func Shutdown(syscall.RawConn) error { return ErrUnsupported }

// Supported reports whether New can work here.
const Supported = false
