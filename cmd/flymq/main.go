// Command flymq is the FlyMQ-protocol message broker.
//
//	flymq --config /etc/flymq/flymq.json          run the broker
//	flymq --config /etc/flymq/flymq.json --check  validate and exit 0/1
//	flymq keygen                                  print a fresh encryption key
//	flymq healthcheck                             probe /readyz (container HEALTHCHECK)
//	flymq version
//
// Settings come from, highest first: flags, FLYMQ_* environment variables,
// the JSON file, defaults (see internal/config). The encryption key comes
// only from the environment, a key file or a systemd credential.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flymq/flymq/internal/config"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/tlsutil"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code through cobra without printing
// anything more: the command has already said what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line args and returns the process exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "flymq:", err)
	return 1
}

func newRootCmd() *cobra.Command {
	var (
		configPath      string
		check, dev      bool
		shutdownTimeout time.Duration
	)
	root := &cobra.Command{
		Use:           "flymq",
		Short:         "FlyMQ-protocol message broker",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ld, err := loadConfig(configPath, cmd.Flags())
			if check {
				if err == nil {
					err = checkFiles(ld.Config)
				}
				return printCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), configPath, ld, err)
			}
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: invalid configuration:")
				printErrors(cmd.ErrOrStderr(), err)
				return exitError{code: 1}
			}
			cfg := ld.Config
			if dev && cfg.DataDir == "/var/lib/flymq" {
				return errors.New("--dev refuses to use /var/lib/flymq; give a development data dir")
			}
			log, err := newLogger(cfg.LogLevel, cfg.LogJSON, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if len(ld.Ignored) > 0 {
				log.Warn("ignoring settings this broker does not implement",
					zap.Strings("keys", ld.Ignored))
			}
			var devPath string
			if dev {
				devPath = devKeyPath(cfg.DataDir)
			}
			keys := keySource{getenv: os.Getenv, log: log}
			ring, err := keys.loadKeyring(cfg.Security.EncryptionEnabled, devPath)
			if err != nil {
				log.Error("cannot start", zap.Error(err))
				return exitError{code: 1}
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			defer signal.Stop(sigs)
			err = run(cmd.Context(), runParams{
				Config: cfg, Keyring: ring, Logger: log,
				Signals: sigs, ShutdownTimeout: shutdownTimeout,
			})
			if err != nil {
				log.Error("flymq stopped with an error", zap.Error(err))
				return exitError{code: 1}
			}
			log.Info("flymq stopped")
			return nil
		},
	}
	f := root.Flags()
	f.StringVarP(&configPath, "config", "c", "", "JSON configuration file (old FlyMQ configs load unchanged)")
	f.BoolVar(&check, "check", false, "validate the configuration, print every error, exit 0 or 1")
	f.BoolVar(&dev, "dev", false, "development mode: generate an encryption key beside the data dir if none is set")
	f.DurationVar(&shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long a graceful shutdown may take")
	addSettingFlags(f)

	root.AddCommand(
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "flymq", version)
			},
		},
		&cobra.Command{
			Use:   "keygen",
			Short: "Print a fresh random encryption key (64 hex characters)",
			Long: "Print a fresh random 256-bit encryption key as 64 hex characters.\n" +
				"Store it where only the broker can read it, for example:\n" +
				"  flymq keygen > /etc/flymq/encryption.key && chmod 600 /etc/flymq/encryption.key",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				k, err := crypto.GenerateKeyHex()
				if err != nil {
					return fmt.Errorf("generate key: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), k)
				return nil
			},
		},
		newHealthcheckCmd(),
		newKeysCmd(), newMigrateCmd(),
	)
	return root
}

// printCheck reports the outcome of --check: every error, and the keys that
// would be ignored, then exit 0 or 1.
func printCheck(stdout, stderr io.Writer, path string, ld loaded, err error) error {
	for _, k := range ld.Ignored {
		fmt.Fprintf(stderr, "flymq: warning: %s is not implemented and will be ignored\n", k)
	}
	if err != nil {
		fmt.Fprintln(stderr, "flymq: invalid configuration:")
		printErrors(stderr, err)
		return exitError{code: 1}
	}
	if path == "" {
		path = "defaults"
	}
	fmt.Fprintf(stdout, "flymq: configuration %s is valid\n", path)
	return nil
}

// checkFiles loads what the configuration names on disk the way start-up
// would, so --check (run by the systemd unit before each start) catches a
// missing or unreadable certificate instead of the start failing later.
func checkFiles(cfg config.Config) error {
	if !cfg.Security.TLSEnabled {
		return nil
	}
	tm, err := tlsutil.New(tlsutil.Options{
		CertFile:   cfg.Security.TLSCertFile,
		KeyFile:    cfg.Security.TLSKeyFile,
		CAFile:     cfg.Security.TLSCAFile,
		ClientAuth: cfg.Security.TLSClientAuth,
	})
	if err != nil {
		return fmt.Errorf("security: %w", err)
	}
	return tm.Close()
}

// printErrors prints each joined error on its own line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, "  "+line)
		}
	}
}

// newLogger builds the process logger: JSON (for journald and log
// shippers) or console, at level.
func newLogger(level string, json bool, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if json {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}

func newHealthcheckCmd() *cobra.Command {
	var addr string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the broker's /readyz answers 200 (for container HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.HasPrefix(addr, ":") {
				addr = "127.0.0.1" + addr
			}
			c := &http.Client{Timeout: timeout}
			resp, err := c.Get("http://" + addr + "/readyz")
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: healthcheck:", err)
				return exitError{code: 1}
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: healthcheck: /readyz answered", resp.Status)
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", ":9095", "health endpoint address (observability.health.addr)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "request timeout")
	return cmd
}
