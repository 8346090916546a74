package loadgen

import (
	"bytes"
	"errors"
)

// maxSSELine bounds one line of an event stream (the gateway's events are
// far smaller).
const maxSSELine = 1 << 20

var errSSELine = errors.New("event stream line over 1 MiB")

// sseParser splits an event stream into messages, fed in pieces as they
// arrive (a read, a DATA frame), so that a message is handled as soon as
// its last byte is in. Only the event, data and id fields are kept.
type sseParser struct {
	message func(event, data []byte) // called at the blank line ending a message; its arguments are valid during the call

	line   []byte // a line begun in an earlier piece
	event  []byte
	data   []byte
	lastID string // the last event id seen (the id field persists across messages, as in a browser's EventSource)
}

// feed parses the next piece of the stream.
func (p *sseParser) feed(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.line)+len(b) > maxSSELine {
				return errSSELine
			}
			p.line = append(p.line, b...)
			return nil
		}
		line := b[:i]
		if len(p.line) > 0 {
			if len(p.line)+i > maxSSELine {
				return errSSELine
			}
			p.line = append(p.line, line...)
			line = p.line
		}
		b = b[i+1:]
		p.field(bytes.TrimSuffix(line, []byte("\r")))
		p.line = p.line[:0]
	}
	return nil
}

// field handles one whole line.
func (p *sseParser) field(line []byte) {
	switch {
	case len(line) == 0: // end of a message
		if len(p.event) > 0 || len(p.data) > 0 {
			p.message(p.event, p.data)
		}
		p.event, p.data = p.event[:0], p.data[:0]
	case bytes.HasPrefix(line, []byte("event: ")):
		p.event = append(p.event[:0], line[len("event: "):]...)
	case bytes.HasPrefix(line, []byte("id:")):
		p.lastID = string(bytes.TrimPrefix(line[len("id:"):], []byte(" ")))
	case bytes.HasPrefix(line, []byte("data: ")):
		if len(p.data) > 0 {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, line[len("data: "):]...)
	}
}
