// Package memnet is an in-memory network for tests: a Listener whose
// connections are net.Pipe pairs, made by its Dial. Tests inside a
// testing/synctest bubble serve HTTP (and websockets) over it, because an
// operation on a net.Pipe blocks durably there, so the bubble's fake clock
// moves on when every goroutine waits, and one on a loopback socket does
// not.
//
// # Concurrency
//
// A Listener is safe for concurrent use: Accept, Dial and Close may be
// called from any goroutine. Each connection Dial returns belongs to its
// caller, its other end to the goroutine that accepted it. Nothing runs in
// the background.
package memnet
