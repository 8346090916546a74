// Package op is the set of SDK calls the gateway carries out, as plain
// values: one Args type per SDK method with its arguments, each with the
// one Validate of those arguments, and Call, the tagged union of them that
// round-trips through JSON exactly ({"method": name, "args": {...}}).
//
// It is a package of its own, and not part of internal/session, because
// more than the session needs these values and nothing of the session:
// internal/httpapi decodes HTTP into them and validates them before it
// asks for a session (bad input never opens one), and the next step,
// cluster mode, sends a Call to the replica that owns the customer, which
// hands it to session.Session.Run. op imports only internal/jsonobj: it
// knows the SDK's argument shapes, never the chat.io wire (that is
// internal/chatio's), and nothing of HTTP.
//
// The names of the methods (Method*) are the snake_case names the
// gateway's metrics label SDK calls with (the protocol action's name where
// one action carries the method).
//
// Concurrency: the package holds no state but read-only tables built at
// init; its values are plain data, safe to share once built.
package op
