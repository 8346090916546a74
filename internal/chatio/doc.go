// Package chatio is the client of the chat.io customer protocol v0.5: the
// wire types, a Client that sends requests and matches their answers,
// hands pushes on and keeps the socket alive, and the HTTP file upload.
//
// Each protocol action the gateway sends has a typed method (actions.go:
// StartChat, SendEvent, GetChatThreads, ...) that writes its payload: the
// payload's member names are written here and nowhere else in the
// gateway. Call, the generic request under them, is for tests and tools.
//
// The websocket under a Client is internal/wsconn's; what the SDK makes of
// the frames it delivers is internal/sdk's (the pure conversion), and the
// JSON objects both work on are internal/jsonobj's.
//
// Concurrency: a Client owns one websocket, which one reader reads for the
// client's whole life: a goroutine started by Dial, or, with
// Config.Poller, an event loop of internal/netpoll that reads the socket
// only when it has bytes (no goroutine waits while it is idle). Every
// exported Client method is safe for concurrent use; writes are
// serialised by the websocket. Pushes and event-bearing results are
// delivered, in arrival order, to Config.OnItem (required) on the read
// loop itself; an item it refuses ends the client with ErrStreamOverflow.
// Config.OnDone hears of the client's end, on the read loop too. The
// keepalive runs on a timer; a ping's goroutine lives only while it waits
// for its pong. Client.mu (the calls in flight and the cause of the end)
// and Client.kaMu (the keepalive timer) are never held together, and no
// callback runs under either.
//
// Buffers: each message the read loop gets from wsconn is a buffer of its
// own, which nothing reuses. DecodeFrame validates it in one pass and cuts
// the frame's members out of it without a copy, so the StreamItems and
// call results made from a frame share that one buffer and may outlive
// the read; nobody writes into it.
package chatio
