package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Starting is the handler of a gateway whose engine is not reachable yet
// (cmd/gateway serves it while it retries the engine's start): /healthz
// 200, /readyz 503 {"status":"engine_unavailable"}, every other request
// 503 OVERLOADED; each 503 with Retry-After of retryHint (0 → 3s).
func Starting(retryHint time.Duration) http.Handler {
	if retryHint <= 0 {
		retryHint = DefaultRetryHint
	}
	retryAfter := strconv.Itoa(int(math.Ceil(retryHint.Seconds())))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
}
