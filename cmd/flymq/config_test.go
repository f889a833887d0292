package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/flymq/flymq/internal/config"
)

// cleanEnv removes every FLYMQ_ and credentials variable for the test, so
// the machine's environment cannot leak into the assertions.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FLYMQ_") || name == envCredentialsDir {
			t.Setenv(name, "") // restores the value after the test
			os.Unsetenv(name)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// flags returns the root command's flag set parsed from args.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := newRootCmd().Flags()
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// runCLI runs the real cobra command in-process.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestOldPlainSampleLoads(t *testing.T) {
	cleanEnv(t)
	ld, err := loadConfig("testdata/old-flymq-plain.json", nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	c := ld.Config
	if c.BindAddr != ":9092" || c.DataDir != "/var/lib/flymq" || c.LogLevel != "info" || !c.LogJSON {
		t.Errorf("top-level keys not applied: %+v", c)
	}
	if c.SegmentBytes != 1<<30 || c.RetentionBytes != 1<<30 {
		t.Errorf("segment_bytes=%d retention_bytes=%d, want 1 GiB each", c.SegmentBytes, c.RetentionBytes)
	}
	if c.Security.EncryptionEnabled || c.Security.TLSEnabled || c.Auth.Enabled {
		t.Errorf("explicit false not applied: %+v %+v", c.Security, c.Auth)
	}
	if !c.Observability.Metrics.Enabled || c.Observability.Metrics.Addr != ":9094" ||
		c.Observability.Health.Addr != ":9095" {
		t.Errorf("observability: %+v", c.Observability)
	}
	want := []string{"cluster_addr", "discovery", "grpc", "mqtt",
		"observability.admin", "observability.tracing", "ws"}
	if !slices.Equal(ld.Ignored, want) {
		t.Errorf("ignored = %v, want %v", ld.Ignored, want)
	}
}

func TestOldSecureSampleLoads(t *testing.T) {
	cleanEnv(t)
	t.Setenv("FLYMQ_AUTH_ADMIN_PASSWORD", "correct-horse-battery")
	ld, err := loadConfig("testdata/old-flymq-secure.json", nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	c := ld.Config
	checks := []struct {
		key       string
		got, want any
	}{
		{"bind_addr", c.BindAddr, ":9093"},
		{"node_id", c.NodeID, "flymq-1"},
		{"segment_bytes", c.SegmentBytes, int64(64 << 20)},
		{"retention_bytes", c.RetentionBytes, int64(10 << 30)},
		{"auth.enabled", c.Auth.Enabled, true},
		{"auth.allow_anonymous", c.Auth.AllowAnonymous, false},
		{"auth.default_public", c.Auth.DefaultPublic, false},
		{"auth.user_file", c.Auth.UserFile, "/var/lib/flymq/users.json"},
		{"auth.acl_file", c.Auth.ACLFile, "/var/lib/flymq/acls.json"},
		{"auth.admin_username", c.Auth.AdminUsername, "admin"},
		{"auth.admin_password", c.Auth.AdminPassword, "correct-horse-battery"},
		{"security.tls_enabled", c.Security.TLSEnabled, true},
		{"security.tls_cert_file", c.Security.TLSCertFile, "/etc/flymq/tls/server.crt"},
		{"security.tls_ca_file", c.Security.TLSCAFile, "/etc/flymq/tls/ca.crt"},
		{"security.tls_client_auth", c.Security.TLSClientAuth, config.ClientAuthRequire},
		{"security.encryption_enabled", c.Security.EncryptionEnabled, true},
		{"audit.enabled", c.Audit.Enabled, true},
		{"audit.log_dir", c.Audit.LogDir, "/var/lib/flymq/audit"},
		{"audit.max_file_size", c.Audit.MaxFileSize, int64(104857600)},
		{"audit.retention_days", c.Audit.RetentionDays, 90},
		{"performance.acks", c.Performance.Acks, "leader"},
		{"performance.sync_interval_ms", c.Performance.SyncIntervalMS, int64(5)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	want := []string{"auth.rbac_enabled", "cluster_addr", "delayed.enabled", "discovery", "dlq.enabled",
		"dlq.max_retries", "dlq.retry_delay", "grpc", "mqtt", "observability.admin", "observability.tracing",
		"partition", "performance.compression", "performance.sync_batch_size", "schema",
		"transaction.enabled", "ttl", "ws"}
	if !slices.Equal(ld.Ignored, want) {
		t.Errorf("ignored =\n %v\nwant\n %v", ld.Ignored, want)
	}
}

func TestCheckReportsIgnoredKeysOnce(t *testing.T) {
	cleanEnv(t)
	t.Setenv("FLYMQ_TYPO_SETTING", "1")
	// --check loads the certificates the sample names; point them at real
	// ones (a self-signed certificate is its own CA).
	cert, key, _ := selfSigned(t, t.TempDir())
	t.Setenv("FLYMQ_SECURITY_TLS_CERT_FILE", cert)
	t.Setenv("FLYMQ_SECURITY_TLS_KEY_FILE", key)
	t.Setenv("FLYMQ_SECURITY_TLS_CA_FILE", cert)
	code, stdout, stderr := runCLI("--config", "testdata/old-flymq-secure.json", "--check")
	if code != 0 {
		t.Fatalf("--check = %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "configuration testdata/old-flymq-secure.json is valid") {
		t.Errorf("stdout = %q", stdout)
	}
	for _, k := range []string{"schema", "dlq.max_retries", "auth.rbac_enabled", "observability.tracing", "env FLYMQ_TYPO_SETTING"} {
		line := "flymq: warning: " + k + " is not implemented and will be ignored\n"
		if n := strings.Count(stderr, line); n != 1 {
			t.Errorf("%q reported %d times in\n%s", k, n, stderr)
		}
	}
	if strings.Contains(stderr, "FLYMQ_TYPO_SETTING=") {
		t.Errorf("env value echoed: %s", stderr)
	}
}

func TestPrecedence(t *testing.T) {
	cleanEnv(t)
	file := writeFile(t, "flymq.json", `{
		"bind_addr": ":1111", "data_dir": "/from/file", "log_level": "warn",
		"security": {"tls_cert_file": "/file.crt"},
		"limits": {"max_partitions": 3},
		"performance": {"acks": "none"}
	}`)

	ld, err := loadConfig(file, flags(t))
	if err != nil {
		t.Fatal(err)
	}
	if ld.Config.BindAddr != ":1111" || ld.Config.Limits.MaxPartitions != 3 ||
		ld.Config.Limits.MaxConnections != config.Defaults().Limits.MaxConnections {
		t.Fatalf("file over defaults: %+v", ld.Config)
	}

	t.Setenv("FLYMQ_BIND_ADDR", ":2222")                       // old short name = canonical
	t.Setenv("FLYMQ_DATA_DIR", "/from/env")                    //
	t.Setenv("FLYMQ_TLS_CERT_FILE", "/legacy.crt")             // old short name
	t.Setenv("FLYMQ_SECURITY_TLS_CERT_FILE", "/canonical.crt") // beats the short one
	t.Setenv("FLYMQ_LIMITS_MAX_PARTITIONS", "7")               // string → int32
	t.Setenv("FLYMQ_PERFORMANCE_ACKS", "all")                  //
	t.Setenv("FLYMQ_OBSERVABILITY_METRICS_ENABLED", "false")   // string → bool
	t.Setenv("FLYMQ_AUTH_DEFAULT_PUBLIC", "true")              //
	ld, err = loadConfig(file, flags(t))
	if err != nil {
		t.Fatal(err)
	}
	c := ld.Config
	if c.BindAddr != ":2222" || c.DataDir != "/from/env" || c.Security.TLSCertFile != "/canonical.crt" ||
		c.Limits.MaxPartitions != 7 || c.Performance.Acks != "all" ||
		c.Observability.Metrics.Enabled || !c.Auth.DefaultPublic || c.LogLevel != "warn" {
		t.Fatalf("env over file: %+v", c)
	}

	os.Unsetenv("FLYMQ_SECURITY_TLS_CERT_FILE")
	ld, err = loadConfig(file, flags(t, "--bind-addr", ":3333", "--log-level", "debug", "--log-format", "console"))
	if err != nil {
		t.Fatal(err)
	}
	c = ld.Config
	if c.BindAddr != ":3333" || c.LogLevel != "debug" || c.LogJSON || c.DataDir != "/from/env" ||
		c.Security.TLSCertFile != "/legacy.crt" {
		t.Fatalf("flags over env: %+v", c)
	}
}

func TestCheckExitCodes(t *testing.T) {
	cleanEnv(t)
	good := writeFile(t, "good.json", `{"data_dir": "/tmp/x", "security": {"encryption_enabled": true}}`)
	if code, out, errs := runCLI("--config", good, "--check"); code != 0 || errs != "" ||
		out != "flymq: configuration "+good+" is valid\n" {
		t.Fatalf("good: %d %q %q", code, out, errs)
	}

	bad := writeFile(t, "bad.json", `{
		"bind_addr": "nowhere", "log_level": "chatty", "segment_bytes": 1,
		"performance": {"acks": "maybe"}, "limits": {"idle_timeout_ms": 10},
		"auth": {"admin_password": "hunter2"}
	}`)
	code, out, errs := runCLI("--config", bad, "--check")
	if code != 1 || out != "" {
		t.Fatalf("bad: code %d stdout %q", code, out)
	}
	for _, want := range []string{
		"flymq: invalid configuration:\n",
		`  bind_addr: must be host:port, got "nowhere"`,
		`  log_level: must be one of [debug info warn error], got "chatty"`,
		"  segment_bytes: must be at least 65536, got 1",
		`  performance.acks: must be one of [leader all none], got "maybe"`,
		"  limits.idle_timeout_ms: must be 0 (no timeout) or at least 300000, got 10",
		"  auth.admin_password: must be 8 to 72 bytes long, got 7",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "hunter2") {
		t.Errorf("password echoed:\n%s", errs)
	}

	t.Setenv("FLYMQ_SEGMENT_BYTES", "big")
	code, _, errs = runCLI("--config", good, "--check")
	if code != 1 || !strings.Contains(errs, "segment_bytes") {
		t.Fatalf("bad env value: %d\n%s", code, errs)
	}
	os.Unsetenv("FLYMQ_SEGMENT_BYTES")

	for name, args := range map[string][]string{
		"missing file": {"--config", filepath.Join(t.TempDir(), "nope.json"), "--check"},
		"broken json":  {"--config", writeFile(t, "broken.json", `{"bind_addr": `), "--check"},
		"bad format":   {"--config", good, "--check", "--log-format", "xml"},
		"bad flag":     {"--no-such-flag"},
	} {
		if code, _, errs := runCLI(args...); code != 1 || errs == "" {
			t.Errorf("%s: code %d, stderr %q", name, code, errs)
		}
	}
}

func TestVersionAndKeygen(t *testing.T) {
	if code, out, _ := runCLI("version"); code != 0 || out != "flymq dev\n" {
		t.Fatalf("version: %d %q", code, out)
	}
	code, a, _ := runCLI("keygen")
	_, b, _ := runCLI("keygen")
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if code != 0 || len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Fatalf("keygen: %d %q %q", code, a, b)
	}
}

// TestCheckLoadsCertificates: --check runs before every systemd start, so
// it must catch a certificate the start would fail to load.
func TestCheckLoadsCertificates(t *testing.T) {
	cleanEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.crt")
	cfg := writeFile(t, "tls.json", `{"data_dir": "/tmp/x", "security": {"tls_enabled": true,
		"tls_cert_file": "`+missing+`", "tls_key_file": "`+missing+`"}}`)
	code, out, errs := runCLI("--config", cfg, "--check")
	if code != 1 || out != "" || !strings.Contains(errs, "security: tlsutil: load certificate: open "+missing) {
		t.Fatalf("code %d stdout %q stderr %q", code, out, errs)
	}
}
