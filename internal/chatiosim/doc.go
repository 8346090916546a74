// Package chatiosim is a faithful, in-memory simulator of the chat.io
// customer protocol v0.5 (described in docs/PROTOCOL.md): the customer
// websocket, the HTTP file upload, an agent side driven from Go or over HTTP,
// a demo agent bot, fault injection and observation helpers. The gateway
// embeds it when no upstream is configured, cmd/chatio-sim serves it
// standalone, the load generator drives it, and the gateway's tests run
// against it (internal/chatio/chatiotest.Start, which keeps testing and
// net/http/httptest out of this package and so out of the gateway).
//
// # Serving
//
// Server is an http.Handler (routes below). New creates one, Close ends it;
// chatiotest.Start runs one on an httptest server bound to 127.0.0.1 for a
// test and returns the base URL "ws://127.0.0.1:PORT/customer/v0.5".
//
//	GET  /customer/v0.5/rtm/ws?license_id=N        customer websocket
//	POST /customer/v0.5/action/send_file?license_id=N   multipart upload (Authorization: Bearer)
//	GET  /files/{id}/{name}                         metadata of an upload (the bytes are not kept)
//	     /control/v1/...                            control API (below)
//
// license_id missing or not a positive integer: HTTP 400 {"error":{...}}
// before the upgrade. A well-formed license that is not in Config.Licenses
// (nil serves any): the socket is accepted, gets the push
// customer_disconnected {"reason":"license_not_found"} and is closed (1008).
// During RefuseConnections and after Close, upgrades get HTTP 503.
//
// # Protocol
//
// Frames, actions, payloads and wire objects are those of docs/PROTOCOL.md; the
// envelope types come from package chatio. Notable choices:
//
//   - The first request must be login {token: "Bearer X", customer}; X goes
//     to Config.Tokens. A refused token answers an "authentication" error and
//     the socket stays open for a retry. Success answers {"customer_id": id}.
//     Other requests before login answer "authentication" ("ping" is allowed).
//     No login within LoginTimeout: close 1008 "login_timeout".
//   - A socket silent for IdleTimeout is closed 1008 "connection_timeout".
//     Data frames and websocket pings (seen through OnPingReceived) count as
//     activity; so does the "ping" action, which answers success {}.
//   - Errors: validation (bad or missing input, unknown action, limits),
//     not_found (unknown chat or thread, or a chat of another customer),
//     authentication, pending_requests_limit_reached (more than MaxPending
//     unanswered requests on a socket), request_timeout (not answered within
//     RequestTimeout because of Stall or SetLatency).
//   - Indirect actions answer an ack {} and then the result push carrying the
//     request id; the customer's other sockets get the same push without it.
//     update_customer answers {"success":true}, then customer_updated
//     {"customer": {...}} with the request id to the caller and without it to
//     the other sockets. send_sneak_peek answers {"success":true}.
//   - Properties are namespaced: {namespace: {key: value}}; an update merges
//     keys within a namespace; the push carries the update as given.
//     Customer fields must be strings; updates merge them.
//   - An event sent to a chat without an active thread opens a new thread:
//     the result is incoming_chat_thread with the whole chat, else
//     incoming_event {chat_id, thread_id, event}. Event ids are
//     "<thread id>_<order>", timestamps unix seconds.
//   - Uploads stream: the file is counted, hashed and only its first 32 KiB
//     kept (type sniffing, image width/height); over MaxFileSize → 413
//     {"error":{"type":"validation","message":"The file is too big (max size
//     is 10.00 MB)."}}. Success answers {"payload":{"url":...}} and adds a
//     file event, pushed to every socket of the customer (no request id).
//
// # Agent side, observation
//
// Server.Agent returns an *Agent whose methods (Join, Leave, Typing,
// SendMessage, SendFile, SendImage, SendEvent, CloseThread,
// UpdateChatProperties, UpdateThreadProperties, MarkSeen) change the state
// and push to every open socket of the chat's customer; writing methods join
// the agent first when needed. With Config.Bot the agent "Ada (demo agent)"
// (BotID) is routed into every new chat and every new customer thread, greets
// and answers each customer message after showing typing; it runs on one
// worker goroutine fed by a bounded queue (drops counted in Stats.BotDropped).
//
// Chats, Chat, Events, OpenSockets, CustomerSockets and Stats read the state;
// Watch streams every customer Activity (bounded, non-blocking, drops
// counted).
//
// # Fault injection
//
// DropAll / DropCustomer cut sockets without a close frame;
// DisconnectCustomer pushes customer_disconnected {reason} and closes with
// 1000; Stall(true) stops answering requests and websocket pings (the
// socket is still read so that the pending limit and request timeouts
// apply), StallCustomer does so for one customer's sockets; SetLatency
// delays every answer; RefuseConnections answers upgrades with 503 for a
// while; InjectFrame sends a customer's sockets any frame, malformed ones
// included. Stats.ClientCloses counts sockets the client closed with a
// normal close frame.
//
// # Control API
//
// JSON in, JSON out; errors are {"error":{"type","message"}} with 400 (bad
// input), 404 (unknown chat or thread) or 409 (no active thread, agent not
// in chat). Agent routes take the agent id in the path and an optional
// "name" in the body.
//
//	GET  /control/v1/stats                          Stats
//	GET  /control/v1/chats[?customer_id=ID]         {"chats":[ChatInfo]}
//	GET  /control/v1/chats/{chat_id}                ChatInfo
//	GET  /control/v1/chats/{chat_id}/events         {"events":[Event]}
//	POST /control/v1/agents/{agent_id}/join         {"chat_id"}
//	POST /control/v1/agents/{agent_id}/leave        {"chat_id"}
//	POST /control/v1/agents/{agent_id}/typing       {"chat_id","is_typing"}
//	POST /control/v1/agents/{agent_id}/message      {"chat_id","text"} → {"event_id"}
//	POST /control/v1/agents/{agent_id}/file         {"chat_id","url","content_type","width"?,"height"?} → {"event_id"}
//	POST /control/v1/agents/{agent_id}/close        {"chat_id"}
//	POST /control/v1/agents/{agent_id}/properties   {"chat_id","thread_id"?,"properties"} (thread_id → thread properties)
//	POST /control/v1/agents/{agent_id}/seen         {"chat_id","timestamp"?} (unix seconds; default now)
//	POST /control/v1/customers/{customer_id}/disconnect  {"reason"} → {"sockets"}
//	POST /control/v1/customers/{customer_id}/drop   → {"sockets"}
//	POST /control/v1/drop                           → {"sockets"}
//	POST /control/v1/stall                          {"on": bool}
//	POST /control/v1/latency                        {"duration":"250ms"} ("0s" turns it off)
//	POST /control/v1/refuse                         {"duration":"5s"}
//
// # Concurrency and cost
//
// Every exported method is safe for concurrent use. One mutex guards the
// model; pushes are queued while it is held, so every socket sees pushes in
// the order the state changed.
//
// Per socket: the HTTP handler's goroutine is its only reader. Writes go
// through a small bounded queue (256 frames) drained by a writer goroutine
// that exists only while frames are waiting; each write has a 10 s
// deadline; a socket whose queue overflows or whose write times out is cut
// (Stats.SlowSockets). Requests are answered inline by the reader unless
// they must wait (stall, latency): then a processor goroutine answers them
// in order and ends. Login and idle timeouts are enforced by one sweeper
// goroutine for all sockets, not by per-socket timers. So an idle socket
// costs one goroutine.
//
// Measured (TestMemoryPerSocket: 2000 idle, logged-in sockets, clients in a
// child process, go1.26 linux/amd64, without -race): 22.7 KiB of heap and
// stack per socket, about 26 KiB of process memory (Sys) — about 230 MiB
// for 10,000 sockets. Most of it is net/http's 4 KiB read and write buffers
// kept by the hijacked connection and the reader goroutine's stack.
//
// Close refuses new work, sends every socket a close frame (1001), cuts
// those still open after a second, closes Watch channels, stops the bot and
// the sweeper, and returns once every goroutine the Server started has
// ended.
package chatiosim
