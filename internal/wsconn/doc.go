// Package wsconn is the client end of a websocket (RFC 6455, no
// extensions): the handshake (through the HTTP client's TLS settings,
// dialer and proxy), whole messages read either by a goroutine or by an
// event loop of internal/netpoll, and frames written whole.
//
// A Conn holds no buffer while idle: a frame is read straight from the
// socket, its header into a few bytes of the Conn and its payload into a
// slice of its own size, and a frame is written whole in one Write.
// (coder/websocket, the simulator's server side, keeps 8 KiB of bufio per
// connection for its life: with thousands of idle customers that was a
// quarter of the gateway's memory.) gobwas/ws does the handshake and
// builds the headers written.
//
// # One frame parser
//
// The headers read are decoded by one function, parseHeader, whichever
// way the Conn is read: Read (a goroutine) reads the header's bytes from
// the socket as many at a time as parseHeader says it needs, ReadSome (an
// event loop) hands it the bytes the loop has read, a frame cut between
// reads waiting for the rest. The same functions then check the header,
// gather fragments and answer control frames on both ways. parseHeader is
// the one kept, not gobwas/ws's ReadHeader, because it works on bytes in
// hand, which the polled way (the gateway's) has and an io.Reader does not
// give without a copy; on Read it costs what ReadHeader did (BenchmarkRead:
// about 145 ns for a 300-byte message either way, six interleaved runs).
// FuzzParseHeader holds it to gobwas/ws's reader, FuzzWSConsume holds the
// polled way to Read.
//
// # Concurrency
//
// A Conn is read by one reader for its whole life, chosen before the first
// read: a goroutine calling Read, or, after SetPolled, the calls of
// ReadSome by one event loop (which never overlap). The read side's state
// (the message being gathered, a frame cut short) belongs to that reader.
// Writes (WriteText, Ping, CloseNormal, and the pongs and close frames the
// read side owes) may come from any goroutine: they are serialised by the
// Conn's write lock, each bounded by a deadline, and a write that fails
// closes the socket. A polled read side never writes on the loop: the
// spawn function given to SetPolled runs its pongs, and the close frame it
// owes waits for EndPolled, which the owner calls off the loop once the
// loop has let the socket go. Close may be called from any goroutine at
// any time: it ends a blocked Read or write at once, and only shuts a
// polled socket down (its loop sees the end).
package wsconn
