// Package engine is the gateway's cluster engine: it wraps NATS JetStream
// (embedded in the process, or external) into a per-customer event log
// with fenced appends, live delivery with gap filling, session ownership
// by lease, requests to a session's owner and one-time ids, and knows
// nothing of sessions or HTTP.
//
// # Use
//
// An owner (the replica holding a customer's upstream socket):
// own := Own(sid), then AppendOwned(own, last, msgID, event) for each
// upstream event, last being the previous append's sequence (first:
// own.LastSeq), or AppendOwnedAsync, which does not wait (its done gets
// the sequence, or ErrRetry: AppendOwned then, with the same msgID); Serve(sid) answers the calls other replicas forward with
// Request (which reads the owner record and asks that node); on ErrFenced, or when LeaseLost's channel closes, it closes the
// socket; Release(sid) when the session ends. Any replica: Request(sid),
// and on ErrNoOwner, Own(sid) and open the socket; Keep(owner, sids): one
// request to the node of an OwnerID for many sessions at once, answered
// by each session's keep function (Serve's) with the log's last sequence. A stream reader:
// Subscribe(sid) first (one per customer on this replica, fanned out to its
// streams), then Read after the client's Last-Event-ID until !More (on
// TooOld: a snapshot), then feed the live events to a Cursor started at the
// last sequence read (Next drops what the Read already gave), and CatchUp
// once, against the leader. An event's Seq is its SSE id. Stream tickets:
// Once(ticket, ttl).
//
// # Concurrency contract
//
// The Engine owns three goroutines: the node lease's renewal loop, the
// sweep of appends without an answer in time (AppendOwnedAsync: ErrRetry),
// and, unless SingleNode, the watch on the other nodes' leases that feeds
// the sightings table (reap.go: at most 1024 nodes; its lock is taken
// alone; the connection's reconnect handler signals it, through a channel
// of capacity 1 that never blocks, to watch again), all started by Start
// and stopped by Close (which cancels them
// and waits for them; the sweep fails every append still waiting as it
// stops). It also
// owns what it started: the embedded nats-server (its goroutines end with
// Shutdown in Close) and the NATS connection, whose goroutines (reader,
// flusher, one per asynchronous subscription: each Subscribe, the
// node's one operations subscription, made by Start, which hands every
// Serve's requests to their handlers, and the acknowledgements
// subscription, made by Start, which hands every AppendOwnedAsync its
// answer) end when Close drains it. Close first deletes the node lease, so other nodes
// may take this node's sessions over at once; callers Release their
// sessions before. Close is idempotent and bounded by its context.
//
// Every Engine method is safe for concurrent use. A Subscribe callback
// runs on its subscription's goroutine, one message at a time, in order;
// it must not block for long (Subscribe's queue is bounded, and what
// overflows is dropped, then filled in by a Cursor). A Serve handler runs
// on the node's operations goroutine, shared by every session the node
// serves, one request at a time: it must not block at all (it hands the
// request to a goroutine of its own); so does a Serve keep function, each
// of a Keep's sessions in turn (it takes short locks only). A Cursor is not
// safe for concurrent use: one goroutine per Cursor. Every engine round
// trip is bounded by the caller's context, or by Config.OpTimeout when
// that context has no deadline; transient engine errors (no responders
// while a leader is elected, 10158/10163/10164, 503) are retried with
// backoff within that bound, and so is an attempt left without an answer
// for 2 s (a request to a stream whose leader was killed is dropped).
//
// # Layout
//
//	CGW_EV_<n>          log streams, n = FNV-1a(sid) mod Streams
//	  cgw.ev.<n>.<sid>    a customer's events (file storage, R = Replicas)
//	cgw.live.<n>.<sid>  core subject each stored event is republished to
//	cgw.op.<node>       core request/reply subject of a node: requests to the
//	                    sessions it owns (headers Cgw-Sid, Cgw-Epoch), and
//	                    Keeps (Cgw-Keep, Cgw-Epoch; sids one per line)
//	KV cgw_nodes        key NodeID, value the node's epoch; MaxAge LeaseTTL;
//	                    deleted by another node at its revision once that
//	                    revision is older than its node's own deadline
//	                    plus a grace (reap.go)
//	KV cgw_owners       key sid, value "<node> <epoch>"; MaxAge MaxAge
//	KV cgw_once         key HMAC(id), per-key TTL (1s..24h)
//
// A sid (CustomerKey) is the first 128 bits of HMAC-SHA256(ClusterKey,
// license || 0 || token) in lowercase base32: 26 subject-safe characters.
// Tokens never reach the engine (subjects, keys, payloads, headers), nor do
// one-time ids (Once keys them with the cluster key too).
//
// # Why each engine feature
//
//   - File storage even when embedded: memory storage scans linearly on
//     per-subject reads (CLUSTER.md: 38.9 ms against 0.42 ms).
//   - One subject per customer, several streams: per-subject limits make
//     the replay ring (MaxMsgsPerSubject), and each stream has its own
//     leader, so no single stream is the cluster's ceiling.
//   - MaxAge and MaxBytes bound the store; DenyDelete and DenyPurge keep
//     "the events after S are all there" provable (only limits remove
//     events, oldest first); a short Duplicates window (20s, nats-server
//     #8485: the server keeps each append's id for the window, 40,000
//     ids at 2,000 appends/s against 240,000 at its 2m default). A lost
//     acknowledgement is retried within OpTimeout (each attempt at most
//     2s), and a retry the window no longer covers is answered "wrong
//     last sequence" and recognised by the customer's last event (on a
//     single server that check comes first anyway), so the window only
//     saves that look.
//   - Nats-Expected-Last-Subject-Sequence on every append: it chains a
//     customer's events and fences writers (10071: ErrFenced).
//     Nats-Msg-Id (prefixed by the sid: the duplicate window is per stream)
//     makes a retried append store once.
//   - RePublish to a core subject: live delivery with no consumer (a
//     consumer costs milliseconds and a server object each); one core
//     subscription per customer that has streams on a replica that does
//     not own it (the owner hands its appends to its own streams). Not
//     with Config.SingleNode (the embedded engine: no other replica can
//     exist, every stream here is fed by its owner here): an append then
//     costs the process 37 allocations instead of 53 (BenchmarkAppend).
//   - Direct batch get (next_by_subj, batch, max_bytes) for reads: no
//     consumer either, bounded in count and bytes, in order.
//   - KV with bucket MaxAge for the node lease and CAS (revision) updates
//     for renewals and owner records; KV per-key TTL for one-time ids.
//     A KV watch on the leases (one ordered consumer per node, not per
//     session) so that a stopped node's lease is reaped by CAS delete as
//     soon as its own deadline has passed (plus a grace), instead of
//     when the server's expiry timer gets to it (up to a second and more
//     after MaxAge on the measured machine).
//   - Core request/reply for calls to the owner, one subject per node (not
//     per session: a subscription costs a goroutine in nats.go and a
//     server object): Request reads the owner record and sends to its
//     node with the record's epoch; "no responders" (the node is gone)
//     and the node's "not the owner" (it serves no such session under
//     that epoch) both come back at once and mean nobody owns the
//     session (ErrNoOwner). A paused node answers nothing: the caller
//     watches the node lease while it waits.
//
// # What the engine's code showed (and where the design changed)
//
// Gap detection. A republished event's Nats-Last-Sequence is the previous
// sequence of the same subject (stream.go loads the subject's last message
// before storing; 0 for the first), so a live reader sees its own
// customer's gaps: Cursor.Next compares it with the last sequence it
// delivered and reads the missing events from the log. But in a direct
// get batch, Nats-Last-Sequence is the previous message of the batch, not
// of the subject: it cannot tell whether events after S were trimmed. So
// every append also carries Cgw-Prev, the customer's previous sequence,
// made exact by the expected-last-subject-sequence rule, and Read reports
// TooOld when the first event it finds does not name afterSeq as its
// predecessor. That is exact when afterSeq itself was trimmed but its
// successor kept (no snapshot needed), and conservative when a customer's
// whole log aged out (a snapshot). A resume ahead of the log (a forged
// Last-Event-ID) is the caller's to refuse: it signs its cursors.
//
// Origins. AppendFrom keeps an opaque tag with an event, as the header
// Cgw-Origin (the stream's republish keeps headers), and Read, Subscribe
// and a Cursor give it back as Event.Origin: the session's hash of the
// client instance whose call the event reports.
//
// Lost acknowledgements. On a single, non-clustered server the
// expected-last-subject-sequence check runs before the duplicate check
// (stream.go, processJetStreamMsgWithBatch), so a retried append whose
// first attempt was stored is answered 10071, not "duplicate"; a clustered
// stream checks duplicates first (checkMsgHeadersPreClusteredProposal).
// Append therefore resolves a 10071 by asking the stream leader for the
// customer's last message: when it carries this append's Nats-Msg-Id, the
// append succeeded and its sequence is returned. TestEngineTruths pins this.
//
// 10163. nats-server v2.15.3 no longer answers 10163 ("temporarily
// unavailable"); a clustered stream answers 10164 (wrong last sequence,
// without a sequence: another proposal for the subject is in flight) and
// 10158 (the same message id is in flight). All three are retried; the
// retry ends in success or in a definite 10071.
//
// Fencing needs a marker. The expected-sequence rule alone does not fence
// a stale owner: if it wakes up and appends before the new owner's first
// append, both expected the same last sequence, the stale append wins and
// the rightful owner is refused. So Own, once it holds the owner record,
// appends an empty owner marker (header Cgw-Owner) after the customer's
// last event; from then on any append of a previous owner is refused by
// the engine. Readers skip markers (Read leaves them out of Events, a
// Cursor consumes them); they occupy a sequence and a slot of the ring.
// An owner also stops by itself: Append refuses while LeaseValid is false
// (AppendOwned also when the Ownership was taken under an earlier epoch)
// (the local monotonic deadline, 70 % of LeaseTTL, counted from the
// sending of the last successful renewal), and LeaseLost's channel closes
// then, for the caller to close its upstream sockets.
//
// Epochs, not revisions. The node lease's revision changes at every
// renewal, so an owner record names the node and a random epoch taken
// when the lease is (re)acquired; the owner is alive while cgw_nodes holds
// that epoch for that node. A node that lost its lease takes a new epoch
// by itself (its old records are then dead and taken over by CAS); a
// restarted node replaces its previous incarnation's epoch at once (Put),
// so NodeID must be unique per replica.
//
// Owner records age. cgw_owners has MaxAge = Config.MaxAge so that
// forgotten sessions go; Own refreshes a record older than MaxAge/2, and
// should a record expire under a live owner anyway, the next owner's
// marker fences the old one (its next append is refused).
//
// Reads may lag. Direct gets are answered by any replica (AllowDirect), so
// a Read can miss the newest events on a lagging follower; LastSeq asks the
// stream leader ($JS.API.STREAM.MSG.GET), and Cursor.CatchUp reads until
// the leader's last sequence. Live events are also lost while the
// connection reconnects (core subjects), and when a stream leader dies
// between storing an event and republishing it: the next event's
// predecessor shows the gap, but a lost last event shows only to CatchUp.
// So after Config.OnState reports StateConnected callers CatchUp their
// cursors, and a caller that wants a bound on how late such an event can
// be runs CatchUp periodically too (at its SSE heartbeat, say).
//
// Live before ack. The server queues the republished event before the
// publisher's acknowledgement, so a subscriber may see an event before its
// Append returns (BenchmarkAppendLive's p50 is below BenchmarkAppend's).
//
// Replicas. A client cannot read the engine cluster's size directly; the
// default counts the servers the connection knows (configured URLs and
// those the cluster announced) when connected to a named cluster.
//
// Streams must not change for an existing store: a customer's stream is
// its sid's hash modulo Streams.
package engine
