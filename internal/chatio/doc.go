// Package chatio speaks the chat.io customer protocol v0.5: the wire types,
// a websocket client with one call per protocol action, the HTTP file upload,
// and the conversion of wire objects into the shapes and events the official
// JavaScript SDK (0.9.1) resolves and emits.
//
// Concurrency: a Client owns one websocket (internal/wsconn: no buffer
// held while idle). Its reads are done by one reader for the
// client's whole life: a goroutine started by Dial, or, with
// Config.Poller, an event loop of internal/netpoll that reads the socket
// only when it has bytes (no goroutine waits while it is idle); writes are
// serialised by the wsconn.Conn. Every
// exported Client method is safe for concurrent use. Pushes and
// event-bearing results are delivered, in arrival order, to Config.OnItem
// (required) on the read loop itself; an item it refuses ends the client
// with ErrStreamOverflow. Config.OnDone hears of the client's end.
//
// The conversion functions (sdk.go) are pure: they take wire payloads and
// return values whose JSON encoding equals what the SDK produces.
package chatio
