package netpoll

import "errors"

// ErrUnsupported is New's error where there is no epoll.
var ErrUnsupported = errors.New("netpoll: not supported on this system")

// ErrClosed is Add's error once the poller is closed.
var ErrClosed = errors.New("netpoll: poller closed")
