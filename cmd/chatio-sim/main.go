package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/chatio-gateway/chatio-gateway/internal/chatiosim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatio-sim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chatio-sim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "chatio-sim: a chat.io customer protocol v0.5 simulator (websocket %s, file upload, demo agent, /control/v1 API).\n\nUsage: chatio-sim [flags]\n\n",
			"/customer/v0.5/rtm/ws?license_id=N")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8090", "listen address; the base URL is ws://ADDR/customer/v0.5")
	licenses := fs.String("licenses", "", "comma-separated license ids served; empty serves any positive license id")
	tokens := fs.String("tokens", "any", `"any" accepts every non-empty token (customer id derived from it; "expired:..." tokens are refused), or a file of lines "TOKEN [CUSTOMER_ID]" (# comments) accepting only those`)
	bot := fs.Bool("bot", true, `run the demo agent "Ada (demo agent)"`)
	loginTimeout := fs.Duration("login-timeout", 30*time.Second, "close a socket that has not logged in by then")
	idleTimeout := fs.Duration("idle-timeout", 30*time.Second, "close a socket silent (no frame, no ping) for this long")
	requestTimeout := fs.Duration("request-timeout", 15*time.Second, "fail a request not answered by then (stall, latency) with request_timeout")
	maxPending := fs.Int("max-pending", 10, "pending requests per socket; the next one fails with pending_requests_limit_reached")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	var level zapcore.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	log, err := zc.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	cfg := chatiosim.Config{
		Bot:            *bot,
		LoginTimeout:   *loginTimeout,
		IdleTimeout:    *idleTimeout,
		RequestTimeout: *requestTimeout,
		MaxPending:     *maxPending,
		Logger:         log,
	}
	if cfg.Licenses, err = parseLicenses(*licenses); err != nil {
		return fmt.Errorf("-licenses: %w", err)
	}
	if *tokens != "any" {
		m, err := readTokens(*tokens)
		if err != nil {
			return fmt.Errorf("-tokens: %w", err)
		}
		cfg.Tokens = chatiosim.FixedTokens(m)
	}

	sim := chatiosim.New(cfg)
	srv := &http.Server{Addr: *addr, Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("chatio-sim listening", zap.String("base_url", "ws://"+*addr+"/customer/v0.5"), zap.Bool("bot", *bot))

	select {
	case err := <-errc:
		sim.Close()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx) // stop accepting, wait for plain HTTP requests
	sim.Close()              // close the websockets (1001), wait for the simulator's goroutines
	log.Info("stopped")
	return err
}

func parseLicenses(s string) ([]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// readTokens reads lines "TOKEN [CUSTOMER_ID]"; without an id the customer
// id is derived from the token as with "any".
func readTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch len(fields) {
		case 1:
			m[fields[0]] = chatiosim.CustomerIDForToken(fields[0])
		case 2:
			m[fields[0]] = fields[1]
		default:
			return nil, fmt.Errorf("%s:%d: want TOKEN [CUSTOMER_ID]", path, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return m, nil
}
