package chatiosim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Config configures a Server. The zero value is usable: every license, every
// token (AnyToken), the successor API's timeouts and limits, no bot.
type Config struct {
	Licenses       []int64       // nil → any positive license id is served
	Tokens         TokenPolicy   // nil → AnyToken
	LoginTimeout   time.Duration // 0 → 30s: no login by then → socket closed
	IdleTimeout    time.Duration // 0 → 30s without any frame or ping → socket closed
	RequestTimeout time.Duration // 0 → 15s: a request not answered by then (stall, latency) fails with request_timeout
	MaxPending     int           // 0 → 10 pending requests per socket; the next fails with pending_requests_limit_reached
	MaxFileSize    int64         // 0 → 10 MiB
	Bot            bool          // run the demo agent "Ada (demo agent)"
	// BotDelay is how long the bot shows typing before each message;
	// 0 → a random 0.5–1 s. (An addition to DESIGN.md for fast tests.)
	BotDelay time.Duration
	Logger   *zap.Logger // nil → zap.NewNop()
}

func (c Config) withDefaults() Config {
	if c.Tokens == nil {
		c.Tokens = AnyToken
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = 10 << 20
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// TokenPolicy maps an access token (without "Bearer ") to the customer it
// belongs to. A non-nil error refuses it: login answers an "authentication"
// error with err.Error() as the message, send_file answers 401.
type TokenPolicy func(token string) (customerID string, err error)

// Errors of the built-in token policies.
var (
	//lint:ignore ST1005 chat.io's own text, as its login refusal carries it
	ErrTokenInvalid = errors.New("Invalid access token")
	//lint:ignore ST1005 chat.io's own text, as its login refusal carries it
	ErrTokenExpired = errors.New("Access token expired")
)

// AnyToken accepts every non-empty token; the customer id is derived from
// the token (CustomerIDForToken), so the same token is always the same
// customer. Tokens starting with "expired:" are refused as expired.
func AnyToken(token string) (string, error) {
	if token == "" {
		return "", ErrTokenInvalid
	}
	if strings.HasPrefix(token, "expired:") {
		return "", ErrTokenExpired
	}
	return CustomerIDForToken(token), nil
}

// FixedTokens accepts exactly the tokens of m (token → customer id).
func FixedTokens(m map[string]string) TokenPolicy {
	cp := make(map[string]string, len(m))
	for k, v := range m {
		cp[k] = v
	}
	return func(token string) (string, error) {
		id, ok := cp[token]
		if !ok || token == "" {
			return "", ErrTokenInvalid
		}
		return id, nil
	}
}

// CustomerIDForToken is the customer id AnyToken derives from a token: the
// first 16 bytes of its SHA-256, written like a UUID
// ("5c2a8e31-7d40-4b9f-b6e2-91f3d0a47c58").
func CustomerIDForToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
