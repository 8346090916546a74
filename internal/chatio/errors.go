package chatio

import (
	"errors"
	"fmt"
)

// Sentinel errors a caller can branch on with errors.Is.
var (
	// ErrAuthentication: the upstream refused the token (error type
	// "authentication"). *AuthError wraps it.
	ErrAuthentication = errors.New("chatio: authentication failed")
	// ErrConnectionLost: the socket dropped while the call was in flight, or
	// the call was made on a client whose socket is gone.
	ErrConnectionLost = errors.New("chatio: connection lost")
	// ErrTimeout: no answer within the request timeout (or the caller's
	// deadline), or the peer stopped answering pings.
	ErrTimeout = errors.New("chatio: timeout")
	// ErrClosed: the client was closed by its owner.
	ErrClosed = errors.New("chatio: client closed")
	// ErrFileTooLarge: a file upload went past MaxFileSize while streaming.
	//lint:ignore ST1005 the text after the prefix is the SDK's own reason, to the letter
	ErrFileTooLarge = errors.New("chatio: The file is too big (max size is 10.00 MB).")
	// ErrStreamOverflow: Config.OnItem refused an item (its consumer cannot
	// take more); the client closes its socket with it.
	ErrStreamOverflow = errors.New("chatio: push consumer fell behind")

	errNoOnItem = errors.New("chatio: Config.OnItem is required")
)

// AuthError is an upstream "authentication" error. errors.Is(err,
// ErrAuthentication) holds for it.
type AuthError struct {
	Message string
}

func (e *AuthError) Error() string { return "chatio: authentication: " + e.Message }

// Unwrap lets errors.Is match ErrAuthentication.
func (e *AuthError) Unwrap() error { return ErrAuthentication }

// RequestError is any other upstream error answer: the SDK's REQUEST_FAILED
// with the upstream's type and message.
type RequestError struct {
	Action  string
	Type    string
	Message string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("chatio: %s failed: %s: %s", e.Action, e.Type, e.Message)
}

// DisconnectedError is how a client ends after a customer_disconnected push:
// Reason is the pushed reason ("" when none), Retry whether reconnecting
// makes sense (docs/PROTOCOL.md, connection rules). It wraps ErrConnectionLost.
type DisconnectedError struct {
	Reason string
	Retry  bool
}

func (e *DisconnectedError) Error() string {
	return "chatio: disconnected by server: " + e.Reason
}

// Unwrap lets errors.Is match ErrConnectionLost.
func (e *DisconnectedError) Unwrap() error { return ErrConnectionLost }

// noRetryReasons are the customer_disconnected reasons after which
// reconnecting is pointless.
var noRetryReasons = map[string]bool{
	"license_not_found":      true,
	"license_expired":        true,
	"misdirected_connection": true,
	"unsupported_version":    true,
	"too_many_connections":   true,
	"logged_out_remotely":    true,
}

// ShouldReconnect reports whether a customer_disconnected reason allows a
// reconnect. Unknown and empty reasons do (the SDK reconnects on any drop).
func ShouldReconnect(reason string) bool { return !noRetryReasons[reason] }
