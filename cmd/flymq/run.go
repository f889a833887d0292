package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/config"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/observe"
	"github.com/flymq/flymq/internal/server"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/tlsutil"
)

// runParams is everything run needs; main fills it from flags, the
// environment and the signal channel, tests fill it directly.
type runParams struct {
	Config  config.Config
	Keyring *crypto.Keyring // nil = encryption off
	Logger  *zap.Logger
	// Signals delivers SIGTERM/SIGINT (shut down) and SIGHUP (reload).
	Signals <-chan os.Signal
	// ShutdownTimeout bounds the graceful shutdown; connections still
	// open after it are closed hard.
	ShutdownTimeout time.Duration
	// OnReady, if set, is called once the broker is ready, with the bound
	// broker and observability addresses (tests use port 0).
	OnReady func(broker, observe []net.Addr)
}

// defaultShutdownTimeout bounds a graceful shutdown when runParams gives
// none; the systemd unit's TimeoutStopSec and compose's stop_grace_period
// sit above it.
const defaultShutdownTimeout = 30 * time.Second

// reloader is anything that can re-read its files on SIGHUP.
type reloader interface{ Reload() error }

// run opens the broker, serves until ctx ends or a shutdown signal
// arrives, then shuts down within ShutdownTimeout. It returns nil after a
// clean shutdown.
func run(ctx context.Context, p runParams) (err error) {
	cfg, log := &p.Config, p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if p.ShutdownTimeout <= 0 {
		p.ShutdownTimeout = defaultShutdownTimeout
	}
	log.Info("starting flymq", zap.String("version", version), zap.String("node-id", cfg.NodeID),
		zap.String("data-dir", cfg.DataDir), zap.Any("config", cfg.Redacted()))

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	// Before anything is created in it: refuse an old server's data dir
	// and a second process on ours.
	lock, err := openDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	reg.MustRegister(observe.NewDiskCollector(cfg.DataDir))

	// The observability endpoints come up first so a long recovery is
	// visible (healthy, not ready) rather than a dead port.
	var readyCheck atomic.Pointer[func() bool] // nil until serving, and again while stopping
	obs, err := observe.Start(observe.Options{
		MetricsAddr: enabledAddr(cfg.Observability.Metrics.Enabled, cfg.Observability.Metrics.Addr),
		HealthAddr:  enabledAddr(cfg.Observability.Health.Enabled, cfg.Observability.Health.Addr),
		Gatherer:    reg,
		Pprof:       cfg.Observability.Metrics.Pprof,
		Ready: func() bool {
			f := readyCheck.Load()
			return f != nil && (*f)()
		},
		Logger: log.Named("observe"),
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.ShutdownTimeout)
		defer cancel()
		err = errors.Join(err, obs.Close(ctx))
	}()

	// No data file is touched before the key is proven right.
	if err := crypto.CheckDataDir(cfg.DataDir, p.Keyring); err != nil {
		return fmt.Errorf("check encryption key: %w", err)
	}
	acks, err := storage.ParseAcks(cfg.Performance.Acks)
	if err != nil {
		return fmt.Errorf("performance.acks: %w", err)
	}
	b, err := broker.Open(broker.Options{
		DataDir:              cfg.DataDir,
		Keyring:              p.Keyring,
		SegmentBytes:         cfg.SegmentBytes,
		RetentionBytes:       cfg.RetentionBytes,
		RetentionAge:         cfg.RetentionAge(),
		Acks:                 acks,
		SyncInterval:         cfg.Performance.SyncInterval(),
		AutoCreatePartitions: 1,
		MaxPartitions:        cfg.Limits.MaxPartitions,
		MaxTopicLabels:       cfg.Observability.Metrics.MaxTopicLabels,
		MaxDelay:             cfg.Delayed.MaxDelayDuration(),
		TxnTimeout:           cfg.Transaction.TimeoutDuration(),
		DLQSuffix:            cfg.DLQ.TopicSuffix,
		Logger:               log.Named("broker"),
		Registerer:           reg,
	})
	if err != nil {
		return fmt.Errorf("open broker: %w", err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close broker: %w", cerr))
		}
	}()

	var trail *audit.Log // nil records nothing
	if cfg.Audit.Enabled {
		trail, err = audit.Open(audit.Options{
			Dir:           cfg.Audit.LogDir,
			MaxFileSize:   cfg.Audit.MaxFileSize,
			RetentionDays: cfg.Audit.RetentionDays,
			NodeID:        cfg.NodeID,
			Logger:        log.Named("audit"),
		})
		if err != nil {
			return fmt.Errorf("open audit trail: %w", err)
		}
		defer func() {
			if cerr := trail.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close audit trail: %w", cerr))
			}
		}()
	}

	var store *auth.Store
	if cfg.Auth.Enabled {
		aopts := auth.Options{
			Enabled:           true,
			AllowAnonymous:    cfg.Auth.AllowAnonymous,
			DefaultPublic:     cfg.Auth.DefaultPublic,
			AdminUsername:     cfg.Auth.AdminUsername,
			AdminPassword:     cfg.Auth.AdminPassword,
			MinPasswordLength: cfg.Auth.MinPasswordLength,
			UserFile:          cfg.Auth.UserFile,
			ACLFile:           cfg.Auth.ACLFile,
			Dir:               filepath.Join(cfg.DataDir, "auth"),
			Keyring:           p.Keyring,
			MaxFailures:       cfg.Auth.MaxFailedAuth,
			FailureWindow:     cfg.Auth.FailedAuthWindow(),
			Logger:            log.Named("auth"),
			Registerer:        reg,
			NodeID:            cfg.NodeID,
		}
		if trail != nil {
			// A nil *audit.Log inside the interface would not be nil.
			aopts.Audit = trail
		}
		store, err = auth.Open(aopts)
		if err != nil {
			return fmt.Errorf("open auth store: %w", err)
		}
	}

	var reloaders []reloader // SIGHUP hooks
	sopts := server.Options{
		Addr:           cfg.BindAddr,
		Broker:         b,
		Auth:           store,
		Audit:          trail,
		NodeID:         cfg.NodeID,
		AdvertisedAddr: cfg.AdvertisedAddr,
		IdleTimeout:    cfg.Limits.IdleTimeout(),
		ReadTimeout:    cfg.Limits.ReadTimeout(),
		MaxConns:       cfg.Limits.MaxConnections,
		MaxConnsPerIP:  cfg.Limits.MaxConnectionsPerIP,
		Logger:         log.Named("server"),
		Registerer:     reg,
	}
	if cfg.Security.TLSEnabled {
		tm, err := tlsutil.New(tlsutil.Options{
			CertFile:   cfg.Security.TLSCertFile,
			KeyFile:    cfg.Security.TLSKeyFile,
			CAFile:     cfg.Security.TLSCAFile,
			ClientAuth: cfg.Security.TLSClientAuth,
			Logger:     log.Named("tls"),
			Registerer: reg,
		})
		if err != nil {
			return fmt.Errorf("load tls: %w", err)
		}
		defer tm.Close()
		reloaders = append(reloaders, tm)
		sopts.TLSConfig = tm.Config()
		if m := cfg.Security.TLSCertUserMapping; m != config.CertUserNone {
			sopts.CertUser = func(st tls.ConnectionState) (string, bool) { return tlsutil.CertUser(st, m) }
		}
		if cfg.Security.TLSBindAddr != "" {
			sopts.TLSAddr = cfg.Security.TLSBindAddr
		} else {
			sopts.MainTLS = true
		}
	}
	srv, err := server.New(sopts)
	if err != nil {
		return fmt.Errorf("create server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.ShutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(ctx); serr != nil {
			if errors.Is(serr, context.DeadlineExceeded) {
				// The bound closed connections still busy (say, a consumer
				// not reading its replies). Their handlers have returned, and
				// the broker is still fsynced and closed below, so nothing
				// acknowledged is lost: a clean stop, exit 0.
				log.Warn("shutdown bound reached; closed the connections still busy",
					zap.Duration("bound", p.ShutdownTimeout))
				return
			}
			err = errors.Join(err, fmt.Errorf("shut down server: %w", serr))
		}
	}()

	// Readiness follows the broker from here: a partition fenced after a
	// failed fsync turns /readyz false until a restart re-runs recovery.
	check := func() bool { return b.Ready() && srv.Listening() }
	readyCheck.Store(&check)
	// Deferred last, so it runs first: not ready before anything closes.
	defer readyCheck.Store(nil)
	log.Info("flymq ready", zap.Stringers("addrs", srv.Addrs()))
	if p.OnReady != nil {
		p.OnReady(srv.Addrs(), obs.Addrs())
	}

	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", zap.String("reason", "context done"))
			return nil
		case sig := <-p.Signals:
			if sig == syscall.SIGHUP {
				reload(reloaders, log)
				continue
			}
			log.Info("shutting down", zap.Stringer("signal", sig))
			return nil
		}
	}
}

// reload runs every reload hook; a failure keeps the old settings and is
// logged, never fatal: a typo in a renewed certificate must not stop a
// running broker.
func reload(rs []reloader, log *zap.Logger) {
	log.Info("reloading on SIGHUP", zap.Int("hooks", len(rs)))
	for _, r := range rs {
		if err := r.Reload(); err != nil {
			log.Error("reload failed; previous settings kept", zap.Error(err))
		}
	}
}

func enabledAddr(enabled bool, addr string) string {
	if !enabled {
		return ""
	}
	return addr
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "flymq_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	g.Set(1)
	return g
}
