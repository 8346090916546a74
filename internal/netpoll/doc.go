// Package netpoll tells a few goroutines which of many sockets have bytes
// to read, so that an idle socket needs no goroutine of its own.
//
// A Poller runs a small number of loops; each owns an epoll instance and
// one goroutine. A watched socket is armed one-shot: when it becomes
// readable its loop calls the socket's Readable function, which reads what
// is there without blocking and says whether to keep watching. Calls for
// one socket never overlap and come in order. When Readable says stop, the
// loop removes the socket from its epoll set and then calls Ended: only
// then may the socket be closed, so its descriptor number cannot be reused
// while it is still watched.
//
// To end a watched socket from another goroutine, shut it down
// (shutdown(2), see Shutdown) instead of closing it: the loop sees the end
// of the stream, the Readable function reports it, and Ended closes.
//
// The loop goroutine waits in Go's own network poller (the epoll descriptor
// is itself pollable), so a loop parks and wakes like any goroutine reading
// a socket. Linux only: elsewhere New returns ErrUnsupported and callers
// keep a goroutine per socket.
package netpoll
