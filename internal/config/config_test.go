package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Defaults()
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	host, _ := os.Hostname()
	if host != "" && c.NodeID != host {
		t.Errorf("node_id = %q, want host name %q", c.NodeID, host)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"bind_addr", c.BindAddr, ":9092"},
		{"segment_bytes", c.SegmentBytes, int64(64 << 20)},
		{"security.encryption_enabled", c.Security.EncryptionEnabled, true},
		{"security.tls_client_auth", c.Security.TLSClientAuth, ClientAuthNone},
		{"auth.default_public", c.Auth.DefaultPublic, false},
		{"auth.admin_username", c.Auth.AdminUsername, "admin"},
		{"auth.min_password_length", c.Auth.MinPasswordLength, 8},
		{"performance.acks", c.Performance.Acks, AcksLeader},
		{"limits.idle_timeout_ms", c.Limits.IdleTimeoutMS, int64(0)},
		{"observability.metrics.addr", c.Observability.Metrics.Addr, ":9094"},
		{"observability.health.addr", c.Observability.Health.Addr, ":9095"},
		{"audit.log_dir", c.Audit.LogDir, filepath.Join("/var/lib/flymq", "audit")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
}

func TestNormalizeClientAuthFollowsCAFile(t *testing.T) {
	c := Defaults()
	c.Security.TLSCAFile = "/etc/flymq/tls/ca.crt"
	c.Normalize()
	if c.Security.TLSClientAuth != ClientAuthRequire {
		t.Fatalf("tls_client_auth = %q with a CA file, want require", c.Security.TLSClientAuth)
	}

	c = Defaults()
	c.Security.TLSCAFile = "/etc/flymq/tls/ca.crt"
	c.Security.TLSClientAuth = ClientAuthRequest
	c.Normalize()
	if c.Security.TLSClientAuth != ClientAuthRequest {
		t.Fatalf("explicit tls_client_auth overridden: %q", c.Security.TLSClientAuth)
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	c := Defaults()
	c.BindAddr = "nonsense"
	c.LogLevel = "loud"
	c.SegmentBytes = 10
	c.RetentionMS = -1
	c.Security.TLSEnabled = true // without cert and key
	c.Security.TLSClientAuth = "always"
	c.Auth.AdminPassword = "short"
	c.Performance.Acks = "some"
	c.Limits.IdleTimeoutMS = 1000
	c.Limits.MaxPartitions = 0
	c.Observability.Health.Addr = ":99999"
	c.Normalize()

	err := c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate() = %v, want ErrInvalid", err)
	}
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		keys = append(keys, fe.Key)
	}
	want := []string{
		"bind_addr", "log_level", "segment_bytes", "retention_ms",
		"security.tls_cert_file", "security.tls_key_file", "security.tls_client_auth",
		"auth.admin_password", "performance.acks", "limits.idle_timeout_ms",
		"limits.max_partitions", "observability.health.addr",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("error keys =\n %v\nwant\n %v\nfull: %v", keys, want, err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Fatalf("error text reveals the admin password: %v", err)
	}
}

func TestValidateCrossChecks(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"tls bind addr without tls", func(c *Config) { c.Security.TLSBindAddr = ":9093" },
			"security.tls_bind_addr: is set but security.tls_enabled is false"},
		{"require without ca", func(c *Config) { c.Security.TLSClientAuth = ClientAuthRequire },
			"security.tls_client_auth: require needs security.tls_ca_file to verify client certificates"},
		{"mapping without client certs", func(c *Config) { c.Security.TLSCertUserMapping = CertUserCN },
			"security.tls_cert_user_mapping: needs security.tls_client_auth request or require"},
		{"idle timeout too short", func(c *Config) { c.Limits.IdleTimeoutMS = 299_999 },
			"limits.idle_timeout_ms: must be 0 (no timeout) or at least 300000, got 299999"},
		{"advertised without host", func(c *Config) { c.AdvertisedAddr = ":9092" },
			`advertised_addr: must name a host and a non-zero port, got ":9092"`},
		{"auth enabled without admin name", func(c *Config) { c.Auth.Enabled = true; c.Auth.AdminUsername = "" },
			"auth.admin_username: must be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.edit(&c)
			c.Normalize()
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}

	c := Defaults()
	c.Limits.IdleTimeoutMS = 300_000
	c.Security.TLSEnabled = true
	c.Security.TLSBindAddr = ":9093"
	c.Security.TLSCertFile, c.Security.TLSKeyFile = "a.crt", "a.key"
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid side-by-side TLS config rejected: %v", err)
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	for _, k := range []string{
		"bind_addr", "security.tls_cert_file", "auth.failed_auth_window_ms",
		"observability.metrics.max_topic_labels", "limits.max_partitions",
	} {
		if !slices.Contains(keys, k) {
			t.Errorf("Keys() lacks %q", k)
		}
	}
	if slices.Contains(keys, "security") {
		t.Errorf("Keys() lists the section %q as a setting", "security")
	}
	seen := map[string]string{}
	for _, k := range keys {
		for _, env := range EnvNames(k) {
			if prev, ok := seen[env]; ok {
				t.Errorf("%s maps to both %s and %s", env, prev, k)
			}
			seen[env] = k
		}
	}
	if got := EnvNames("security.tls_cert_file"); !slices.Equal(got,
		[]string{"FLYMQ_SECURITY_TLS_CERT_FILE", "FLYMQ_TLS_CERT_FILE"}) {
		t.Errorf("EnvNames(security.tls_cert_file) = %v", got)
	}
	if got := EnvNames("data_dir"); !slices.Equal(got, []string{"FLYMQ_DATA_DIR"}) {
		t.Errorf("EnvNames(data_dir) = %v", got)
	}
	for k := range legacyEnv {
		if !slices.Contains(keys, k) {
			t.Errorf("legacy env name for unknown key %q", k)
		}
	}
}

func TestIgnored(t *testing.T) {
	got := Ignored([]string{
		"bind_addr", "cluster_addr", "schema.enabled", "schema.registry_dir",
		"auth.rbac_enabled", "auth.enabled", "observability.tracing.enabled",
		"observability.tracing.sample_rate", "observability.metrics.addr",
		"performance.compression", "performance.acks", "dlq.max_retries",
	})
	want := []string{
		"auth.rbac_enabled", "cluster_addr", "dlq.max_retries", "observability.tracing",
		"performance.compression", "schema",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Ignored() = %v, want %v", got, want)
	}
}

func TestRedacted(t *testing.T) {
	c := Defaults()
	c.Auth.AdminPassword = "s3cret-password"
	r := c.Redacted()
	if r.Auth.AdminPassword != "[redacted]" || c.Auth.AdminPassword != "s3cret-password" {
		t.Fatalf("Redacted: copy %q, original %q", r.Auth.AdminPassword, c.Auth.AdminPassword)
	}
	if Defaults().Redacted().Auth.AdminPassword != "" {
		t.Fatal("an unset password should stay visibly unset")
	}
}

func TestAdvancedSettings(t *testing.T) {
	c := Defaults()
	c.Normalize()
	if c.Delayed.MaxDelayDuration() != 24*time.Hour || c.Transaction.TimeoutDuration() != time.Minute || c.DLQ.TopicSuffix != ".dlq" {
		t.Fatalf("defaults: %+v %+v %+v", c.Delayed, c.Transaction, c.DLQ)
	}
	c.Delayed.MaxDelay = 0
	if c.Delayed.MaxDelayDuration() != 7*24*time.Hour {
		t.Fatalf("max_delay 0: %v", c.Delayed.MaxDelayDuration())
	}
	c.Delayed.MaxDelay = 11 * 365 * 86_400
	c.Transaction.Timeout = 0
	c.DLQ.TopicSuffix = "a\\b"
	err := c.Validate()
	for _, key := range []string{"delayed.max_delay", "transaction.timeout", "dlq.topic_suffix"} {
		if err == nil || !strings.Contains(err.Error(), key+": ") {
			t.Errorf("%s not refused: %v", key, err)
		}
	}
}
