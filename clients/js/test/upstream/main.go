// Command upstream plays one sdk-oracle scenario (testdata/oracle) as the
// chat.io upstream of a gateway, for clients/js's oracle test
// (test/oracle.test.mjs): it is internal/e2e's scenario upstream
// (e2e.StartUpstream, the one TestGoldenSDK replays with) behind a small
// control API, so that a Node.js test can step it.
//
//	upstream SCENARIO.json
//
// It prints one line of JSON, {"url": "ws://127.0.0.1:P/customer/v0.5",
// "control": "http://127.0.0.1:Q"}, and serves until stdin closes (its
// parent went away) or it gets SIGTERM. Both listen on 127.0.0.1 only.
//
// Control API (POST unless said):
//
//	/step?i=N   the upstream answers from step N's reply lists from now on
//	/push?i=N   step N's frames are pushed to the gateway's socket
//	/drop       the gateway's socket is cut (step N's relogin answers it)
//	GET /requests   the frames the gateway sent since the last look: [{action, payload}]
//	GET /problems   what the upstream could not answer
//
// Test tooling: it links net/http/httptest, which the gateway must not.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/e2e"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: upstream SCENARIO.json")
		os.Exit(2)
	}
	sc, err := e2e.LoadScenario(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	up := e2e.StartUpstream(sc)
	defer up.Close()

	step := func(r *http.Request) (e2e.ScenarioStep, bool) {
		i, err := strconv.Atoi(r.URL.Query().Get("i"))
		if err != nil || i < 0 || i >= len(sc.Steps) {
			return e2e.ScenarioStep{}, false
		}
		return sc.Steps[i], true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /step", func(w http.ResponseWriter, r *http.Request) {
		st, ok := step(r)
		if !ok {
			http.Error(w, "no such step", http.StatusBadRequest)
			return
		}
		up.BeginStep(st)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		st, ok := step(r)
		if !ok || len(st.Push) == 0 {
			http.Error(w, "no such push step", http.StatusBadRequest)
			return
		}
		frames := []json.RawMessage{st.Push}
		if st.Push[0] == '[' {
			frames = nil
			_ = json.Unmarshal(st.Push, &frames)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := up.Push(ctx, frames); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		up.Drop()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		reqs := up.TakeRequests()
		if reqs == nil {
			reqs = []e2e.Request{}
		}
		_ = json.NewEncoder(w).Encode(reqs)
	})
	mux.HandleFunc("GET /problems", func(w http.ResponseWriter, r *http.Request) {
		p := up.Problems()
		if p == nil {
			p = []string{}
		}
		_ = json.NewEncoder(w).Encode(p)
	})

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	out, _ := json.Marshal(map[string]string{"url": up.URL(), "control": "http://" + ln.Addr().String()})
	fmt.Println(string(out))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(gone)
	}()
	select {
	case <-stop:
	case <-gone:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
