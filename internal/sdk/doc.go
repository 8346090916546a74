// Package sdk converts chat.io wire objects (frames and payloads of
// package chatio) into the values the official JavaScript SDK 0.9.1
// resolves and the events it emits, byte for byte as the SDK's
// JSON.stringify would write them.
//
// sdk.go follows the SDK's own functions (serverDataParser.js,
// sideEffects.js), each named where it is ported; jsvalue.go holds the
// JavaScript value semantics they rely on (truthiness, String(v),
// ToNumber, ===, timestamps); jssort.go is a port of V8's
// Array.prototype.sort, on which the SDK's sorts run, so that even orders
// that are not numbers sort as in the SDK. The golden tests replay the
// SDK's own output (testdata/oracle at the repository's root).
//
// Concurrency: every function is pure, with no state of its own: it may
// be called from any goroutine. The values it returns may share the bytes
// of its input (a payload passed through is returned as is), which the
// caller must not change while they are in use. The payload of a
// chatio.Frame that is Checked is neither validated nor copied again, and
// the object data of its events come back as jsonobj.Checked.
package sdk
