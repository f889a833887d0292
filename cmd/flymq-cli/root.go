package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// streams are the process's standard streams, injected for tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// app holds the global flags and what every command needs. One app is
// built per run; nothing is global.
type app struct {
	streams
	getenv func(string) string

	addr     string
	useTLS   bool
	caFile   string
	certFile string
	keyFile  string
	insecure bool
	username string
	password string
	timeout  time.Duration
	jsonOut  bool
}

// runError marks a failure that happened while executing a command (as
// opposed to parsing its arguments), so that it maps to exit code 1.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// usageError is a bad flag value or argument found by a command body;
// it maps to exit code 2 like cobra's own parse errors.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// runE adapts a command body so that its errors count as run errors,
// except usage errors, which pass through.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ue *usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return &runError{err}
	}
}

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string, s streams, getenv func(string) string) int {
	a := &app{streams: s, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(s.err, "Error:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var re *runError
	if errors.As(err, &re) {
		return exitError
	}
	return exitUsage // cobra: unknown command, bad flag, wrong argument count
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "flymq-cli",
		Short:         "Command-line client for the FlyMQ message broker",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", envOr(a.getenv, "FLYMQ_ADDR", "localhost:9092"), "broker address host:port (env FLYMQ_ADDR)")
	pf.BoolVar(&a.useTLS, "tls", false, "connect with TLS")
	pf.StringVar(&a.caFile, "ca-file", "", "PEM CA bundle to verify the broker (implies --tls)")
	pf.StringVar(&a.certFile, "cert-file", "", "PEM client certificate (implies --tls)")
	pf.StringVar(&a.keyFile, "key-file", "", "PEM client key (implies --tls)")
	pf.BoolVar(&a.insecure, "insecure", false, "skip broker certificate verification (testing only)")
	pf.StringVar(&a.username, "username", a.getenv("FLYMQ_USERNAME"), "user name for AUTH (env FLYMQ_USERNAME)")
	pf.StringVar(&a.password, "password", "", "password for AUTH (env FLYMQ_PASSWORD)")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "connect and per-request timeout")
	pf.BoolVar(&a.jsonOut, "json", false, "machine-readable JSON output")

	root.AddCommand(a.topicsCmd(), a.produceCmd(), a.consumeCmd(), a.fetchCmd(),
		a.subscribeCmd(), a.groupsCmd(),
		a.usersCmd(), a.aclCmd(), a.rolesCmd(), a.whoamiCmd(), a.auditCmd(),
		a.txnCmd(), a.dlqCmd(), a.schemaCmd())
	return root
}

// groupRunE is the body of commands that only group subcommands: help
// without arguments, a usage error for an unknown subcommand (cobra would
// otherwise print help and exit 0).
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// tlsConfig builds the TLS configuration from the flags, or nil.
func (a *app) tlsConfig() (*tls.Config, error) {
	if !a.useTLS && a.caFile == "" && a.certFile == "" && a.keyFile == "" && !a.insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.insecure}
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", a.caFile)
		}
		cfg.RootCAs = pool
	}
	if (a.certFile == "") != (a.keyFile == "") {
		return nil, usagef("--cert-file and --key-file must be given together")
	}
	if a.certFile != "" {
		cert, err := tls.LoadX509KeyPair(a.certFile, a.keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// dial connects with the global flags.
func (a *app) dial(ctx context.Context) (*client.Client, error) {
	tlsCfg, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	password := a.password
	if password == "" {
		password = a.getenv("FLYMQ_PASSWORD")
	}
	return client.Dial(ctx, a.addr, client.Options{
		TLS:            tlsCfg,
		Username:       a.username,
		Password:       password,
		DialTimeout:    a.timeout,
		RequestTimeout: a.timeout,
	})
}

// withClient dials, runs fn and closes the connection.
func (a *app) withClient(cmd *cobra.Command, fn func(c *client.Client) error) error {
	c, err := a.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}
