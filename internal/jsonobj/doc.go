// Package jsonobj reads and writes JSON objects the way JavaScript sees
// them: an Object keeps its members in order and encodes in JavaScript's
// property order, the scanner splits a valid object into raw members
// without a decoder, and Check validates a whole document in one pass
// within limits of depth and size.
//
// One pass per byte: CheckCompact validates a document and says whether
// it is compact; what is cut from an accepted document is valid already,
// so EachValidMember and ParseValidObject split it without validating it
// again, and a Checked object (values vouched valid and compact) encodes
// without the validation and compaction encoding/json gives every raw
// value.
//
// It knows nothing of chat.io: the protocol's member names reach it only
// through InternKeys (package chatio gives them at init), so that the
// scanner shares one string per name instead of copying each key.
//
// Concurrency: everything is a pure function of its arguments, or a
// method on values the caller owns, except the table of interned keys,
// which InternKeys replaces whole (an atomic pointer) and every scan reads
// without a lock. An Object and a Builder are not safe for concurrent
// mutation; an Object nobody changes may be read and encoded by any
// number of goroutines. Values returned by ParseValidObject, EachMember
// and EachValidMember are slices of the caller's buffer: the caller keeps
// it unchanged while they are in use.
package jsonobj
