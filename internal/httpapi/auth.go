package httpapi

import (
	"net/http"
	"strings"
)

// maxTokenLen bounds an access token taken from the Authorization header
// (chat.io's are well under 1 KiB).
const maxTokenLen = 2 << 10

// bearer returns the access token of "Authorization: Bearer <token>" (the
// scheme is case-insensitive), or an AUTHENTICATION error. Two
// Authorization headers are refused: a proxy that logs, hashes or routes
// on their joined value would disagree with the gateway about who calls.
func bearer(r *http.Request) (string, error) {
	hs := r.Header.Values("Authorization")
	if len(hs) > 1 {
		return "", unauthenticated("more than one Authorization header")
	}
	if len(hs) == 0 || hs[0] == "" {
		return "", unauthenticated("missing Authorization: Bearer <token> header")
	}
	h := hs[0]
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("the Authorization header must be Bearer <token>")
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen || !printableASCII(token) {
		return "", unauthenticated("invalid bearer token")
	}
	return token, nil
}

// printableASCII: visible ASCII only (RFC 6750 b64token is narrower still).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
