package httpapi

import (
	"math"
	"net/http"
	"strconv"
)

// Starting is the handler of a gateway whose engine is not reachable yet
// (cmd/gateway serves it while it retries the engine's start): /healthz
// 200, /readyz 503 {"status":"engine_unavailable"}, every other request
// 503 OVERLOADED; each 503 with Retry-After of cfg.RetryHint (0 → 3s).
// Its answers carry the CORS headers of cfg.AllowedOrigins, as the
// Server's do (and preflights are answered), so that a browser client
// reads the 503 and its Retry-After. The rest of cfg is not used.
func Starting(cfg Config) http.Handler {
	retryHint := cfg.RetryHint
	if retryHint <= 0 {
		retryHint = DefaultRetryHint
	}
	retryAfter := strconv.Itoa(int(math.Ceil(retryHint.Seconds())))
	return newCORSPolicy(cfg.AllowedOrigins).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		w.Header().Set("Retry-After", retryAfter)
		if r.URL.Path == "/readyz" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "engine_unavailable"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: CodeOverloaded,
			Message: "the gateway is starting: its engine is not reachable yet; retry later"})
	}))
}
