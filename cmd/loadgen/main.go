package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chatio-gateway/chatio-gateway/internal/loadgen"
)

// workerArg makes the binary serve as a client worker (stdin → stdout),
// started by the load generator itself for each mode's clients.
const workerArg = "client-worker"

// relayArg makes the binary serve as the byte relay of -mode relay.
const relayArg = "tcp-relay"

// natsArg makes the binary serve as the nats-server of -replicas.
const natsArg = "nats-server"

func main() {
	if len(os.Args) == 2 && os.Args[1] == workerArg {
		if err := loadgen.ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen worker:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 2 && os.Args[1] == relayArg {
		if err := loadgen.ServeRelay(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen relay:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 2 && os.Args[1] == natsArg {
		if err := loadgen.ServeNATS(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen nats-server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	fs.IntVar(&cfg.K, "k", 100, "customer sessions, each with one open event stream")
	fs.Float64Var(&cfg.Ramp, "ramp", 200, "sessions opened per second")
	fs.Float64Var(&cfg.R, "r", 100, "agent messages per second in total, spread over the sessions")
	fs.Float64Var(&cfg.S, "s", 20, "customer sendMessage calls per second in total")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured phase (≤ 10m)")
	fs.StringVar(&cfg.Proto, "proto", "h2", "gateway protocol: h1 (one connection per stream) or h2 (h2c, multiplexed)")
	fs.IntVar(&cfg.H2Conns, "h2conns", 8, "HTTP/2 connections the streams and calls are spread over")
	fs.StringVar(&cfg.Mode, "mode", "both", "both, gateway, direct, or relay (the direct clients through a byte relay process, then direct: the floor of any process in between)")
	fs.IntVar(&cfg.Callers, "callers", 0, "add a throughput phase with this many back-to-back callers (0: none)")
	fs.DurationVar(&cfg.CallersDuration, "callers-duration", 10*time.Second, "length of the throughput phase")
	fs.StringVar(&cfg.GatewayBin, "gateway-bin", "", "gateway binary (default: go build ./cmd/gateway into a temp dir)")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "turn the gateway's pprof on and save heap and CPU profiles in this directory")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Second, "how long to wait after the measured phase for the pushes still on their way")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "pause after the ramp before memory is read")
	fs.IntVar(&cfg.DirectReadLoops, "direct-read-loops", 0, "event loops reading the direct clients' sockets, as the gateway's GATEWAY_UPSTREAM_READ_LOOPS (-1: a goroutine per socket)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "gateway processes; above 1 a cluster: one nats-server (a child process) with JetStream, a shared GATEWAY_CLUSTER_KEY, each request to a random replica")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 0, "the replicas' GATEWAY_LEASE_TTL (0: the gateway's default)")
	fs.DurationVar(&cfg.KillOwnerAt, "kill-owner-at", 0, "SIGKILL the replica owning the most sessions this long into the measured phase and measure the takeover (needs -replicas ≥ 2)")
	inProc := fs.Bool("clients-inprocess", false, "run the clients in this process, not in a worker (the direct ones only when their sockets fit)")
	gwLog := fs.Bool("gateway-log", false, "pass the gateway's log (level warn) to stderr")
	var env stringList
	fs.Var(&env, "gateway-env", "KEY=VALUE added to the gateway's environment (repeatable)")
	out := fs.String("out", "", "also write the report to this file: .json → JSON, else Markdown")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	quiet := fs.Bool("q", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.GatewayEnv = env
	cfg.ClientsInProcess = *inProc
	if !*quiet {
		cfg.Log = stderr
	}
	if *gwLog {
		cfg.GatewayStderr = stderr
	}
	if exe, err := os.Executable(); err == nil {
		cfg.Worker = []string{exe, workerArg}
		cfg.Relay = []string{exe, relayArg}
		cfg.NATS = []string{exe, natsArg}
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	rep, err := loadgen.Run(ctx, cfg)
	if rep != nil {
		_ = rep.Text(stdout)
		for _, path := range []string{*out, *jsonOut} {
			if path == "" {
				continue
			}
			if path == *jsonOut && !strings.HasSuffix(path, ".json") {
				path += ".json"
			}
			if werr := writeReport(rep, path); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

func writeReport(rep *loadgen.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if strings.HasSuffix(path, ".json") {
		err = rep.JSON(f)
	} else {
		err = rep.Markdown(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
