// Command flymq-bench measures a FlyMQ broker, or NATS JetStream for
// comparison, on this machine: N connections each keep W PRODUCE requests
// pipelined, every message is fetched back and verified byte for byte, and
// the machine's own limits (AES-256-GCM seal rate, fsync rate, loopback
// round trip) are measured in the same run so the report can say how close
// to them the broker gets. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "flymq-bench",
		Short:         "Benchmark FlyMQ (and NATS JetStream) with every message verified",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newCompareCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "flymq-bench:", err)
		if errors.Is(err, ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// onOff is a boolean flag spelled on/off, as the issue writes it.
type onOff bool

func (b *onOff) String() string {
	if *b {
		return "on"
	}
	return "off"
}

func (b *onOff) Set(s string) error {
	switch s {
	case "on", "true", "1":
		*b = true
	case "off", "false", "0":
		*b = false
	default:
		return fmt.Errorf("want on or off, not %q", s)
	}
	return nil
}

func (b *onOff) Type() string { return "on|off" }

func newRunCmd() *cobra.Command {
	var (
		o          RunOptions
		encryption = onOff(true)
		noVerify   bool
		noLimits   bool
		jsonOnly   bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "One benchmark run: produce, fetch back, verify, report",
		Long: `One benchmark run against --target flymq or nats.

The server is either already running (--addr) or started for this run
(--spawn): flymq from --flymq-bin with a temp data dir, a generated JSON
config and a fresh random FLYMQ_ENCRYPTION_KEY; nats as an embedded
nats-server v2.15.3 with JetStream file storage (cipher aes).

Output: a human-readable report, then exactly one JSON line (the last line
of stdout). Exit status 1 if any message read back differs from what was
acknowledged, or if any request failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Encryption = bool(encryption)
			o.Verify = !noVerify
			o.Limits = !noLimits
			if !jsonOnly {
				o.Log = cmd.ErrOrStderr()
			}
			res, err := Run(cmd.Context(), o)
			if res != nil {
				if !jsonOnly {
					res.WriteText(cmd.OutOrStdout())
				}
				if jerr := res.WriteJSON(cmd.OutOrStdout()); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Target, "target", "flymq", "broker under test: flymq or nats")
	f.StringVar(&o.Addr, "addr", "", "address of an already running server (host:port, or a nats:// URL)")
	f.BoolVar(&o.Spawn, "spawn", false, "start a fresh server for this run")
	f.StringVar(&o.FlymqBin, "flymq-bin", "", "broker binary for --target flymq --spawn (go build -o /tmp/flymq ./cmd/flymq)")
	f.Var(&encryption, "encryption", "encryption at rest of the spawned server: on or off")
	f.StringVar(&o.Acks, "acks", "leader", "leader (ack after the OS write), all (ack after fsync; nats: sync_interval always) or none")
	f.BoolVar(&o.TLS, "tls", false, "TLS (spawn: a throw-away CA and server cert are generated)")
	f.BoolVar(&o.Auth, "auth", false, "authentication (spawn: an admin with a random password); the client sends AUTH first")
	f.StringVar(&o.User, "user", "admin", "user name for --auth with --addr")
	f.StringVar(&o.Password, "password", os.Getenv("FLYMQ_BENCH_PASSWORD"), "password for --auth with --addr (default $FLYMQ_BENCH_PASSWORD)")
	f.StringVar(&o.TLSCAFile, "tls-ca", "", "CA file to trust for --tls with --addr (default: system roots)")
	f.Int64Var(&o.SegmentBytes, "segment-bytes", 64<<20, "segment_bytes of the spawned flymq broker")
	f.IntVar(&o.Workload.Conns, "conns", 8, "producing connections")
	f.IntVar(&o.Workload.Inflight, "inflight", 32, "requests pipelined per connection")
	f.IntVar(&o.Workload.Size, "size", 1024, "message (value) size in bytes, at least 16")
	f.DurationVar(&o.Workload.Duration, "duration", 10*time.Second, "how long to produce (ignored with --count)")
	f.Int64Var(&o.Workload.Count, "count", 0, "produce exactly this many messages in total instead of for --duration")
	f.IntVar(&o.Workload.Partitions, "partitions", 1, "partitions (nats: subjects of one stream); connection c sends message s to partition (c+s) mod P")
	f.StringVar(&o.Topic, "topic", "", "topic (default: a fresh bench-XXXXXXXX per run)")
	f.IntVar(&o.FetchInflight, "fetch-inflight", 4, "FETCH requests pipelined per partition in the fetch phase")
	f.BoolVar(&noVerify, "no-verify", false, "skip the fetch-back and verification phase")
	f.BoolVar(&noLimits, "no-limits", false, "skip measuring AES, fsync and loopback limits")
	f.StringVar(&o.TmpDir, "tmpdir", "", "parent of the temp dirs for data and the fsync probe (default $TMPDIR or /tmp)")
	f.IntVar(&o.IdleConns, "idle-conns", 0, "after the run, open this many idle connections and report the spawned broker's RSS")
	f.DurationVar(&o.Timeout, "timeout", 0, "abort the run after this long (default: duration + 5m)")
	f.BoolVar(&jsonOnly, "json", false, "print only the JSON line")
	return cmd
}
