package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// RunOptions is everything `flymq-bench run` takes.
type RunOptions struct {
	Target string // "flymq" or "nats"

	// Where the server is: Addr (already running) or Spawn.
	Addr     string
	Spawn    bool
	FlymqBin string

	// Server configuration (spawned servers) and how to connect.
	Encryption   bool
	Acks         string // leader | all | none
	TLS          bool
	Auth         bool
	User         string // for --addr with auth
	Password     string
	TLSCAFile    string // for --addr with TLS; empty = system roots
	SegmentBytes int64

	Workload      Workload
	Topic         string // empty = a fresh name per run
	FetchInflight int
	Verify        bool // fetch everything back and check it (default true)

	TmpDir    string
	Limits    bool          // measure AES / fsync / loopback
	IdleConns int           // open this many idle connections and report broker RSS
	Timeout   time.Duration // whole run; 0 = Duration + 5 min

	Log io.Writer // progress lines; nil = none
}

// ErrUsage marks invalid option combinations.
var ErrUsage = errors.New("invalid options")

// ErrVerify means messages read back differ from what was acknowledged.
var ErrVerify = errors.New("verification failed")

func (o *RunOptions) validate() error {
	w := o.Workload
	switch {
	case o.Target != "flymq" && o.Target != "nats":
		return fmt.Errorf("%w: --target must be flymq or nats, not %q", ErrUsage, o.Target)
	case o.Addr == "" && !o.Spawn:
		return fmt.Errorf("%w: give --addr or --spawn", ErrUsage)
	case o.Addr != "" && o.Spawn:
		return fmt.Errorf("%w: --addr and --spawn exclude each other", ErrUsage)
	case o.Spawn && o.Target == "flymq" && o.FlymqBin == "":
		return fmt.Errorf("%w: --spawn for flymq needs --flymq-bin", ErrUsage)
	case o.Acks != "leader" && o.Acks != "all" && o.Acks != "none":
		return fmt.Errorf("%w: --acks must be leader, all or none", ErrUsage)
	case w.Conns < 1 || w.Inflight < 1 || w.Partitions < 1:
		return fmt.Errorf("%w: --conns, --inflight and --partitions must be at least 1", ErrUsage)
	case w.Partitions > 0xffff:
		return fmt.Errorf("%w: at most 65535 partitions", ErrUsage)
	case w.Size < ValueHeaderSize || w.Size > 16<<20:
		return fmt.Errorf("%w: --size must be %d..%d bytes", ErrUsage, ValueHeaderSize, 16<<20)
	case w.Count < 0 || (w.Count == 0 && w.Duration <= 0):
		return fmt.Errorf("%w: give a positive --duration or --count", ErrUsage)
	case o.IdleConns < 0:
		return fmt.Errorf("%w: --idle-conns must not be negative", ErrUsage)
	}
	return nil
}

// Run executes one benchmark run and returns its result. The result is
// returned (with Verified false) even when verification fails, together
// with an error wrapping ErrVerify.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = o.Workload.Duration + 5*time.Minute
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, fmt.Errorf("run took longer than %s", o.Timeout))
	defer cancel()
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if o.FetchInflight < 1 {
		o.FetchInflight = 4
	}
	if o.Topic == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Topic = "bench-" + hex.EncodeToString(b)
	}
	values, err := NewValues(o.Workload.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	tmp, err := mkTemp(o.TmpDir, "flymq-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	res := newResult(o)
	if o.Limits {
		logf("measuring machine limits (AES-256-GCM, fsync, loopback)...")
		l, err := measureLimits(o.Workload.Size, tmp)
		if err != nil {
			return nil, err
		}
		res.setLimits(l)
	}

	var t target
	switch o.Target {
	case "flymq":
		t, err = openFlymq(ctx, o, tmp)
	default:
		t, err = openNATS(ctx, o, tmp)
	}
	if err != nil {
		return nil, err
	}
	defer t.close()
	res.Server = t.describe()

	logf("producing: %d conns x %d in flight, %d B, %s...", o.Workload.Conns, o.Workload.Inflight, o.Workload.Size, res.Workload.Amount())
	pipes, err := t.pipes(ctx, o.Workload)
	if err != nil {
		return nil, err
	}
	ledger := NewLedger(values, len(pipes))
	pr, err := runProduce(ctx, o.Workload, pipes, ledger)
	for _, p := range pipes {
		_ = p.close()
	}
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	res.setProduce(pr, o.Workload.Size)
	logf("produced %d messages in %s", pr.Acked, pr.Elapsed.Round(time.Millisecond))

	var runErr error
	if o.Verify {
		logf("fetching %d messages back and verifying every byte...", pr.Acked)
		fr, err := t.fetch(ctx, o, ledger)
		if err != nil {
			res.Verified = false
			res.Error = err.Error()
			runErr = fmt.Errorf("%w: %w", ErrVerify, err)
		} else {
			res.Verified = true
			res.setFetch(fr, o.Workload.Size)
		}
	}
	if o.IdleConns > 0 && runErr == nil {
		logf("opening %d idle connections...", o.IdleConns)
		if err := t.idle(ctx, o.IdleConns, res); err != nil {
			return res, fmt.Errorf("idle connections: %w", err)
		}
	}
	return res, runErr
}

// target is one broker under test.
type target interface {
	describe() map[string]any
	pipes(ctx context.Context, w Workload) ([]pipe, error)
	fetch(ctx context.Context, o RunOptions, ledger *Ledger) (*FetchResult, error)
	idle(ctx context.Context, n int, res *Result) error
	close()
}

// ---- FlyMQ ----

type flymqTarget struct {
	o     RunOptions
	d     *flymqDialer
	spawn *spawnedFlymq
}

func openFlymq(ctx context.Context, o RunOptions, tmp string) (*flymqTarget, error) {
	t := &flymqTarget{o: o, d: &flymqDialer{addr: o.Addr}}
	if o.Spawn {
		so := flymqSpawnOptions{
			Bin: o.FlymqBin, Dir: tmp, Encryption: o.Encryption, Acks: o.Acks,
			SegmentBytes: o.SegmentBytes, TLS: o.TLS, Auth: o.Auth,
		}
		if o.Auth {
			pw, err := randomPassword()
			if err != nil {
				return nil, err
			}
			so.Password = pw
			t.d.user, t.d.password = "admin", pw
		}
		sp, err := spawnFlymq(ctx, so)
		if err != nil {
			return nil, err
		}
		t.spawn = sp
		t.d.addr = sp.addr
		t.d.tls = sp.clientTLS
	} else {
		if o.TLS {
			cfg, err := clientTLSFromCA(o.TLSCAFile)
			if err != nil {
				return nil, err
			}
			t.d.tls = cfg
		}
		if o.Auth {
			t.d.user, t.d.password = o.User, o.Password
		}
	}
	if err := t.d.createTopic(ctx, o.Topic, o.Workload.Partitions); err != nil {
		t.close()
		return nil, fmt.Errorf("create topic: %w%s", err, t.logTail())
	}
	return t, nil
}

func (t *flymqTarget) logTail() string {
	if t.spawn == nil {
		return ""
	}
	return t.spawn.logTail()
}

func (t *flymqTarget) describe() map[string]any {
	m := map[string]any{"addr": t.d.addr, "spawned": t.spawn != nil}
	if t.spawn != nil {
		m["bin"] = filepath.Base(t.o.FlymqBin)
		m["segment_bytes"] = t.o.SegmentBytes
	}
	return m
}

func (t *flymqTarget) pipes(ctx context.Context, w Workload) ([]pipe, error) {
	ps := make([]pipe, 0, w.Conns)
	for range w.Conns {
		c, err := t.d.dial(ctx)
		if err != nil {
			for _, p := range ps {
				_ = p.close()
			}
			return nil, err
		}
		ps = append(ps, newFlymqPipe(c, t.o.Topic, w.Size))
	}
	return ps, nil
}

func (t *flymqTarget) fetch(ctx context.Context, o RunOptions, ledger *Ledger) (*FetchResult, error) {
	return flymqFetch(ctx, t.d, o.Topic, o.Workload.Partitions, o.FetchInflight, ledger)
}

// idle opens n connections, has each answer one LIST_TOPICS (so the broker
// has really accepted and served it, not just the kernel's backlog), then
// leaves them idle and reads the broker's resident size.
func (t *flymqTarget) idle(ctx context.Context, n int, res *Result) error {
	if t.spawn == nil {
		return fmt.Errorf("%w: --idle-conns needs --spawn (the broker's pid)", ErrUsage)
	}
	before, err := readRSS(t.spawn.pid())
	if err != nil {
		return err
	}
	conns := make([]*flymqConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()
	for range n {
		c, err := t.d.dial(ctx)
		if err != nil {
			return fmt.Errorf("after %d connections: %w", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := c.call(protocol.OpListTopics, nil, protocol.OpListTopics); err != nil {
			return fmt.Errorf("connection %d: %w", len(conns), err)
		}
	}
	time.Sleep(time.Second) // let the broker settle (GC, freed buffers)
	after, err := readRSS(t.spawn.pid())
	if err != nil {
		return err
	}
	res.IdleConns = n
	res.RSSBeforeIdle = before
	res.RSSIdle = after
	return nil
}

func (t *flymqTarget) close() {
	if t.spawn != nil {
		t.spawn.stop()
	}
}

func clientTLSFromCA(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tls ca %s: no certificate found", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// ---- NATS ----

type natsTarget struct {
	o      RunOptions
	client *natsClient
	stop   func()
}

func openNATS(ctx context.Context, o RunOptions, tmp string) (*natsTarget, error) {
	t := &natsTarget{o: o, client: &natsClient{url: o.Addr, stream: natsStreamName(), subject: o.Topic}}
	if o.Spawn {
		no := natsOptions{Dir: filepath.Join(tmp, "jetstream"), Encryption: o.Encryption, SyncAlways: o.Acks == "all"}
		if o.TLS {
			certFile, keyFile, clientTLS, err := writeTestCerts(tmp)
			if err != nil {
				return nil, err
			}
			srvTLS, err := serverTLSConfig(certFile, keyFile)
			if err != nil {
				return nil, err
			}
			no.TLS = srvTLS
			t.client.tls = clientTLS
		}
		if o.Auth {
			pw, err := randomPassword()
			if err != nil {
				return nil, err
			}
			no.User, no.Password = "admin", pw
			t.client.user, t.client.password = "admin", pw
		}
		s, err := startNATS(no)
		if err != nil {
			return nil, err
		}
		t.stop = func() { s.Shutdown(); s.WaitForShutdown() }
		t.client.url = s.ClientURL()
	} else {
		if o.TLS {
			cfg, err := clientTLSFromCA(o.TLSCAFile)
			if err != nil {
				return nil, err
			}
			t.client.tls = cfg
		}
		if o.Auth {
			t.client.user, t.client.password = o.User, o.Password
		}
	}
	if err := t.client.createStream(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *natsTarget) describe() map[string]any {
	return map[string]any{"url": t.client.url, "spawned": t.stop != nil, "stream": t.client.stream,
		"nats_server": "v2.15.3 (embedded)"}
}

func (t *natsTarget) pipes(ctx context.Context, w Workload) ([]pipe, error) {
	ps := make([]pipe, 0, w.Conns)
	for range w.Conns {
		p, err := t.client.newPipe(w.Inflight, w.Partitions)
		if err != nil {
			for _, p := range ps {
				_ = p.close()
			}
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (t *natsTarget) fetch(ctx context.Context, o RunOptions, ledger *Ledger) (*FetchResult, error) {
	return natsFetch(ctx, t.client, ledger)
}

func (t *natsTarget) idle(ctx context.Context, n int, res *Result) error {
	return fmt.Errorf("%w: --idle-conns is measured for a spawned flymq broker only", ErrUsage)
}

func (t *natsTarget) close() {
	if t.stop != nil {
		t.stop()
	}
}
