// Package session is the gateway's pool of customer sessions: exactly one
// upstream chat.io websocket per customer token, its event log, and the
// fan-out of its SDK events to every subscriber (SSE stream) of that
// customer.
//
// # Sessions
//
// Pool.Acquire returns the session of a token, creating it on first use
// (dial, login, get_chats_summary); concurrent first calls share one
// creation; Pool.AcquireAs also passes on the customer id the caller was
// told (X-Customer-Id), which the session echoes when the upstream's login
// does not tell it. Pool.Lookup finds a session without ever creating
// one. A session ends on Disconnect, on Pool.Shutdown, after
// IdleTimeout without subscriber and without call, when a re-login after a
// drop is refused (*chatio.AuthError), or when the upstream disconnects the
// customer with a reason that forbids reconnecting. An ended session has
// left the pool; the next Acquire creates a fresh one.
//
// # Calls
//
// A session carries out the SDK's calls on its socket: one method per SDK
// call, internal/op's arguments in (valid: their Validate has passed) and
// the value the SDK method resolves to out — StartChat, GetChatsSummary,
// GetChatThreads, GetChatThreadsSummary, GetChatHistory (one page),
// SendEvent, SendRating, SetSneakPeek (throttled, fire and forget),
// CloseThread, UpdateChatProperties, UpdateChatThreadProperties,
// UpdateCustomer, UpdateLastSeenTimestamp, Disconnect; and SendFile, the
// one call that is not a value: its form streams upstream as it is read.
// Each runs on Do (the in-flight limit, the wait for a live upstream) and
// sends its requests through chatio's typed methods; an SDK method's
// request is made with chatio.EmitFrom, so that its result also reaches the
// subscribers as the SDK emits it. The events of a call are tagged with
// the Origin of the calling client instance (WithOrigin, carried by a
// forwarded call as fwdRequest.Origin) and with whom they are for: what
// the caller's SDK emits for its call, or what the customer's other tabs
// see of its result push (the new_event of a send_event, say).
// Message.Origin keeps the tag, in the ring and in the engine's log
// (engine.AppendOwnedFrom), and httpapi gives each stream opened by an
// instance what its SDK would emit (Origin.Admits). Run takes the call as an op.Call (one
// that came from another replica), validates it, dispatches it and returns
// the value as JSON; EncodeError and DecodeError carry its error across
// JSON so that errors.Is and errors.As answer on the receiving side as on
// this one.
//
// # Events
//
// Every SDK event of a session gets a strictly rising uint64 sequence number
// (its SSE id), starting at a time-derived base so that ids of an earlier
// incarnation are older than anything buffered. Each event is JSON-encoded
// once (a push from a frame the client checked, chatio.Frame.Checked, is
// validated nowhere after the client's one pass: the gap tracker and the
// conversion split it as it lies, and its data is written without
// validation), kept in a ring of the last events for Last-Event-ID resumption, and
// offered to every subscriber without blocking: a subscriber whose queue
// holds SubscriberBuffer events, or would hold more than
// SubscriberBufferBytes of event data, is cut off with ErrSlowSubscriber;
// the publisher and the other subscribers never wait.
//
// The ring keeps at most ReplayBuffer events and ReplayBufferBytes of event
// data, and the rings of the pool together at most ReplayBudgetBytes: each
// session may keep its even share of half the budget whatever the others
// hold, and one that would overdraw the other half drops its own oldest
// events. The ring only ever drops its oldest events, so a Last-Event-ID is
// either in it (the later events are replayed) or older than it (a fresh
// snapshot, as for a new subscriber): never a silent gap. An event too
// large for the ring is delivered live and empties the ring. The bytes
// counted are len(Message.Data), the encoding every subscriber shares.
//
// A new subscriber without a resumable Last-Event-ID gets a snapshot:
// customer_id, user_data… and connected {chatsSummary, totalChats} carrying
// the sequence number N it was registered at; then every event after N. The
// summary is the session's latest one when no event has been logged since
// it was read (so the first subscriber costs no upstream request, as with
// the SDK), else a fresh get_chats_summary.
//
// When the socket drops the session emits connection_lost, redials with
// jittered exponential backoff (pool-wide at most MaxConcurrentDials dials
// at a time), logs in, sends get_chats_summary as the SDK does, reads back
// what each known chat missed according to that summary (emitted as
// new_event, oldest first, without duplicates; a chat that missed nothing
// costs no request; its threads are paged through back to the last one
// delivered, at most maxGapThreads of them: what a fill cannot read back
// is logged and counted, gateway_gap_fill_incomplete_total, never skipped
// silently), and emits user_data… and connection_restored. A
// chat's read-back that fails for a reason that may pass (a timeout, an
// error answer of the upstream's trouble) fails the restore: the session
// dials again rather than announce connection_restored with a gap unfilled
// (gap.go, fillGaps).
//
// Upstream frames the client ignores (malformed, answers to no request,
// dropped as the SDK drops them) are counted in
// gateway_upstream_frames_ignored_total; a frame the SDK conversion cannot
// take is counted (gateway_events_dropped_total{reason="convert"}) and
// skipped. Neither ends the session — not even a panic in the conversion.
// A stalled socket (no pong; a call's timeout triggers an immediate ping)
// ends its client with chatio.ErrTimeout: calls in flight fail with it
// (TIMEOUT) and the session redials.
//
// # Concurrency
//
// A connected session runs no goroutine of its own, and neither does its
// socket: the pool's event loops (internal/netpoll, Config.ReadLoops) read
// every upstream socket when it has bytes. Stream items are handled on the
// live client's read loop itself (chatio.Config.OnItem, see inbox): no
// hand-off on the way in. Idle eviction runs on a timer;
// when the session ends, a short-lived goroutine closes its client; when a
// client ends (chatio.Config.OnDone), a restore goroutine (restoreAfterDrop) reconnects,
// fills gaps and attaches the new client, and exists only until then.
// The inbox holds a new client's items while Pool.open reads the first
// summary or a recovery restores the session, so the chatTracker is used
// by one goroutine at a time and no push overtakes what a restore
// publishes. The log, the subscribers, the live client and the sneak-peek
// throttle are guarded by Session.mu; the pool's map by Pool.mu. The
// replay budget is one atomic counter of the pool: a session trims only its
// own ring, under its own lock.
//
// Lock order: Pool.mu before Session.mu; inbox.mu before Session.mu (an
// item is handled, and published under Session.mu, while its inbox's lock
// is held). A Subscriber has no lock of its own: its state is its
// session's, under Session.mu. Nothing is logged, dialed or awaited
// upstream while a lock is held.
//
// A subscriber's channel is sent to under Session.mu by the
// session, or by the subscriber's feeder goroutine, which exists only while
// more events are queued than the channel buffers; it is closed exactly
// once, by whichever of the two holds the last word (see endLocked). Every
// exported method of Pool, Session and Subscriber is safe for concurrent
// use. Pool.Shutdown waits for every goroutine the package started but the
// feeders, each of which ends once its consumer has read the queued events
// or closed the subscriber.
//
// # Cluster mode
//
// With Config.Engine set, the pool is one replica of a cluster (API.md,
// "Several replicas"): each customer's session, and so its one upstream
// socket, is held by one replica, its owner, named in the engine. A
// customer's engine key (engine.SID) is the HMAC of license and token
// under the cluster key: no token reaches the engine.
//
// Ownership comes first: Pool.create calls engine.Own before it dials, and
// serves the session (engine.Serve: a handler on the node's one operations
// subscription, no subscription of its own) at once, so that the replicas
// that lose the race forward to it; requests that arrive while it
// dials wait for the session (the entry's ready). A create that fails
// gives the ownership back (engine.Release) once its socket, if any, is
// closed. When the session ends (Disconnect, idle, a refused re-login,
// Shutdown), stop drains its Serve (under Pool.mu: no request reaches it
// once the next session of the token here serves; those it had taken are
// answered ErrSessionClosed, the next ones "not the owner", and the caller
// tries again) and records the release in
// Pool.releasing; end runs it once the socket is closed, on a goroutine
// of its own (end may run on a read loop). The next create of the token
// here waits for it: a Release after this replica's next Own would delete
// the new record.
//
// Calls: Pool.Exec (an op.Call), SessionInfo (GET /v1/session),
// Disconnect and a stream's snapshot run on this replica's session when it
// has one; else they are sent to the owner (fwdRequest: the call, the
// caller's customer id and its timeout; never the token), which answers with the JSON result or
// EncodeError's error, decoded here (DecodeError) so that the HTTP layer
// maps it as a local one. No owner (engine.ErrNoOwner): this replica takes
// the session over (Acquire: Own, dial, login, summary) and runs the call;
// it lost the race for Own (ErrElsewhere): it forwards again, with a short
// backoff, within DialTimeout. An owner answers each forwarded request on
// a goroutine of its own (counted in Pool.wg, added under Pool.mu while
// not draining), and applies the customer's call limit (SetCallLimit: the
// HTTP layer's rate limiter) to a forwarded SDK call before it runs it, so
// that the limit holds cluster-wide (limit.go). Pool.SendFile uploads from the receiving replica, on its
// session's client when it has one, else with chatio.UploadFile and the
// token: an upload needs no socket.
//
// Fencing: a pool goroutine (watchLease, from NewPool to Shutdown) waits
// for engine.LeaseLost and then ends every session owned under the lost
// lease (errFenced, a cause of ErrSessionClosed), which closes its socket;
// a create that finishes after the loss fails (ErrEngine). The engine
// itself refuses a lapsed owner's appends: the appender then ends the
// session too. Either way the session is counted once as fenced
// (stopFenced: by whichever ends it), and each refused append as a fenced
// append. ErrEngine (the engine failed, or this replica's lease is
// not valid) and ErrElsewhere (Acquire of a session another replica owns)
// are 503 with Retry-After.
//
// The log: the owner's session appends each of its events (name and
// encoded data: EncodeLogEvent) to the customer's log in the engine, in
// the order it logs them, one at a time, with no goroutine of its own:
// appendLocked queues the event (logAppender.push, under Session.mu, on
// the read loop) and, when no append of the session is in flight,
// publishes it (engine.AppendOwnedAsync, which does not wait); the
// engine's acknowledgement goroutine hands the answer back (stored), which
// records it, feeds the mirror and publishes the next event. An append
// not acknowledged as stored at once (an error answer, none in time, the
// engine unreachable) is appended the waiting way on a goroutine of its
// own (slow: engine.AppendOwnedFrom with the same message id), retrying
// while the engine is unreachable and giving up when fenced (the
// session ends), which then goes on with the queue. end closes it and waits for it to drain,
// off the read loop, before the ownership is released. A new owner whose
// log holds an earlier session's events (another replica's, gone, or an
// earlier one of its own) seeds its gap tracker with each chat's last
// new_event in the log, and logs connection_lost, the events chat.io
// pushed while nobody held the socket (fillGaps against the first
// summary), user_data… and connection_restored, before any push.
//
// Streams: in cluster mode every stream, the owner's included, reads the
// log, so that its ids are the log's sequences (Pool.Subscribe). A replica
// has one mirror per customer with streams here: a Session used only as
// the container of its Subscribers (mu, subs; no client, not in the
// pool's map, newMirrorSession) and one engine.Cursor, through which each
// live event passes under the mirror's Session.mu before what it yields
// is offered to every Subscriber that has not had it (Subscriber.after).
// The live events come from the session's own appender when this replica
// owns the session (mirror.feeder: logAppender.stored hands the mirror each
// event it appended, with its sequence and its predecessor's, off its
// lock; the owner needs no engine subscription), else from one
// engine.Subscribe (its callback, on the subscription's goroutine). When
// the owned session ends, stop takes the mirror off its appender (which
// still hands it what it had queued) and subscribes it (liveSub): the
// cursor drops what both give, and fills from the log what neither did.
// A session owned here again feeds a mirror that no session here feeds
// (Pool.feedLocked, in create, before its appender starts). With a
// SingleNode engine (the embedded one: no RePublish, no live subjects)
// liveSub subscribes nothing: an unfed mirror waits for the keep round,
// whose SessionInfo owns the session here again and whose catch-up reads
// what the log got meanwhile (only the ended session's queue, which it
// still hands over: no other replica can append).
// A mirror holds no goroutine: one pool goroutine (keepMirrors), every
// keepInterval, touches the sessions that feed mirrors with streams
// (keeping them from idling out: no engine round trip, and nothing to
// catch up), and keeps each other mirror's session alive at its owner
// and catches the mirror's cursor up with the log: one engine.Keep per
// owner for all the sessions whose owner an earlier round learnt (the
// owner's keepOwned touches each and answers its appender's last
// sequence; the cursor reads only when it is behind that), and, for a
// mirror of no known owner or one its owner no longer serves, a
// forwarded keep request (keeping it from idling out, and having it taken
// over when nobody owns it), whose answer names the owner (for the next
// round) and its last sequence. When an owner answers no Keep (killed,
// paused, cut off), the round waits for its lease to lapse (awaitLapse)
// and then takes its sessions over, slowWorkers at a time, instead of
// trying each in vain until the lapse. A request for a customer whose
// owner answers nothing while its lease holds the session waits for that
// lapse too, from its third such round on (route, goneStrikes), looking
// again every second. Both wait on one watch per owner (lapse.go: one
// engine read per twentieth of a lease, at most 100 ms, for all the
// waiters; at most maxLapseWatches owners, past which a waiter looks for
// itself). Pool.Subscribe opens a stream on a goroutine of its own that it
// waits for, so that the deep stack of the opening is not kept by the
// caller's goroutine for the stream's life. A fresh stream
// gets its snapshot from the owner as of the log's sequence N (a
// forwarded snapshot request: the owner waits until its appender has
// appended the event the snapshot is current at, logAppender.seqAt), reads
// the log after N (not when this replica's appender feeds the mirror:
// join reads up to where the feed began, and the feed has the rest), and joins the mirror, reading again while the mirror is
// ahead of it (no round trip under the mirror's lock but the cursor's own).
// A Last-Event-ID within the log resumes from the log (the session is
// looked at first, SessionInfo, so that a resume after its owner's crash
// has it taken over at once); one older than the log, or that the log
// never gave, gets a snapshot. A disconnected event that
// ends the session ends the streams after it. The last stream's end tears
// the mirror down (a goroutine: it takes Pool.mu); Shutdown tears down
// every mirror.
//
// Engine trouble is an answer: a call this replica would forward while
// the engine connection is down is ErrEngine at once, as is a takeover the
// engine refuses; when the engine is not Ready at two rounds of
// keepMirrors in a row, every stream ends with ErrDraining (a retry hint:
// they come back with their Last-Event-ID); an owner that cannot renew
// its lease is fenced (above).
//
// Goroutines in cluster mode, each counted in Pool.wg: watchLease and
// keepMirrors (the pool's life; they end with its context; keepMirrors
// waits for the workers of each round: at most keepWorkers, then
// slowWorkers), one per forwarded request, one per watched owner (a
// lapseWatch, started under Pool.mu while not draining, in Pool.lapses
// until it ends: the lease gone, the engine connection down, a lease TTL
// and a keep interval passed, or the pool's context ended), a
// session appender's step off the acknowledgement goroutine (logAppender.spawn:
// a slow append, an overflow's end, a mirror's gap read; while it runs)
// and the session's release at its end, a
// mirror's teardown, and the opening of a stream (Pool.Subscribe waits
// for it, not counted); a mirror holds a count of its own for its life,
// but no goroutine, and a session's appender neither (the session's own
// count lasts until end has waited for the appender's done): its
// acknowledgements run on the engine's acknowledgement goroutine (logAppender.stored, which must not block: it takes
// logAppender.mu and the mirror's Session.mu, one at a time, and
// publishes). Locks: Pool.mu before Session.mu (a
// mirror's Session.mu included), as ever; the engine's subscriptions are
// stopped or drained under them (a local unsubscribe, no round trip: a
// drained Serve still answers, later, the requests it had taken, so that
// none waits out its timeout); logAppender.mu
// is taken under Session.mu or Pool.mu (feed, unfeed), and nothing under
// it but the engine's publish: the appender feeds a mirror after it let go of it. The only engine round
// trips under a lock are a mirror cursor's reads (Next's gap fill,
// CatchUp), under that mirror's Session.mu, which they serialise. The
// engine is the caller's: Shutdown the pool (which releases what it owns)
// before closing the engine.
//
// The token is kept in memory only: logs carry a short sha256 prefix of it,
// metrics carry no token, customer or chat id.
package session
