package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"hash/fnv"
)

// SID is a customer's id in the engine: 26 characters of lowercase base32,
// the first 128 bits of HMAC-SHA256(ClusterKey, license || 0 || token). It
// is subject-safe, and the token cannot be recovered from it.
type SID string

const sidLen = 26

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CustomerKey derives a customer's SID from the cluster key, the license
// and the customer token. The token goes no further than this function.
func CustomerKey(key []byte, license, token string) SID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(license))
	m.Write([]byte{0})
	m.Write([]byte(token))
	sum := m.Sum(nil)
	return SID(b32.EncodeToString(sum[:16]))
}

// CustomerKey derives a customer's SID with the engine's cluster key.
func (e *Engine) CustomerKey(license, token string) SID {
	return CustomerKey(e.cfg.ClusterKey, license, token)
}

// Valid reports whether s has the form CustomerKey gives (so that it is
// safe in a subject or a key).
func (s SID) Valid() bool {
	if len(s) != sidLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// shard is the sid's log stream: FNV-1a of the sid modulo n, stable
// across processes and releases.
func (s SID) shard(n int) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}

// keyed returns the lowercase-base32 HMAC of a caller's id under the
// cluster key, with a domain prefix, so that ids (tickets) never appear in
// the engine either.
func (e *Engine) keyed(domain, id string) string {
	m := hmac.New(sha256.New, e.cfg.ClusterKey)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(id))
	sum := m.Sum(nil)
	return b32.EncodeToString(sum[:20])
}
