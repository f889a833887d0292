// Package config holds the broker's typed configuration: every setting with
// its default, its meaning and what it trades off, plus Validate, which
// reports every problem at once.
//
// One name per setting everywhere: the JSON key is the json tag (nested
// sections joined by "."), and the environment variable is FLYMQ_ followed by
// the key in upper case with "." replaced by "_" (security.tls_cert_file ⇔
// FLYMQ_SECURITY_TLS_CERT_FILE). Reading files, environment and flags is the
// job of cmd/flymq; this package never touches them, so it stays testable
// and free of viper.
//
// The encryption key is deliberately not a setting: it never lives in a
// configuration file (see cmd/flymq).
package config

import (
	"os"
	"path/filepath"
	"time"
)

// Client-certificate modes of security.tls_client_auth.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// Certificate-to-user mappings of security.tls_cert_user_mapping.
const (
	CertUserNone = "none"
	CertUserCN   = "cn"
	CertUserSAN  = "san"
)

// Acknowledgement modes of performance.acks (mirrors storage.ParseAcks,
// which this package must not import).
const (
	AcksLeader = "leader"
	AcksAll    = "all"
	AcksNone   = "none"
)

// MinIdleTimeout is the smallest non-zero limits.idle_timeout_ms. Clients
// such as pyflymq send no keep-alives and consumers sit idle between polls,
// so a short idle timeout would cut healthy connections.
const MinIdleTimeout = 5 * time.Minute

// Config is the whole broker configuration. The zero value is not useful:
// start from Defaults.
type Config struct {
	// BindAddr is the main listener. With security.tls_enabled and no
	// security.tls_bind_addr it speaks TLS, as the old server did.
	BindAddr string `json:"bind_addr"`
	// AdvertisedAddr is the address given to clients in metadata replies;
	// empty means BindAddr. Set it when clients reach the broker through
	// NAT or a container port mapping.
	AdvertisedAddr string `json:"advertised_addr"`
	// NodeID names this broker in metadata and logs; empty means the host
	// name (see Normalize).
	NodeID string `json:"node_id"`
	// DataDir holds every topic, group offset, user and audit file.
	DataDir string `json:"data_dir"`
	// LogLevel is one of debug, info, warn, error. debug is verbose on the
	// hot path; error hides the warnings that precede most incidents.
	LogLevel string `json:"log_level"`
	// LogJSON selects JSON log lines (for journald and log shippers) over
	// the human console format.
	LogJSON bool `json:"log_json"`
	// SegmentBytes is the size at which a partition rolls to a new segment.
	// Retention deletes whole segments only, so larger segments free space
	// in bigger steps; smaller ones mean more files and open descriptors.
	SegmentBytes int64 `json:"segment_bytes"`
	// RetentionBytes caps each partition's size; 0 keeps everything. The
	// cap is enforced a segment at a time, so a partition may exceed it by
	// up to SegmentBytes.
	RetentionBytes int64 `json:"retention_bytes"`
	// RetentionMS deletes segments whose newest record is older than this
	// many milliseconds; 0 keeps everything.
	RetentionMS int64 `json:"retention_ms"`

	Security      SecurityConfig      `json:"security"`
	Auth          AuthConfig          `json:"auth"`
	Audit         AuditConfig         `json:"audit"`
	Performance   PerformanceConfig   `json:"performance"`
	Limits        LimitsConfig        `json:"limits"`
	Observability ObservabilityConfig `json:"observability"`

	Delayed     DelayedConfig     `json:"delayed"`
	Transaction TransactionConfig `json:"transaction"`
	DLQ         DLQConfig         `json:"dlq"`
}

// DelayedConfig covers PRODUCE_DELAYED. Pending messages are always
// persisted (sealed) and delivered after a restart; the old server's
// delayed.enabled switch has no counterpart.
type DelayedConfig struct {
	// MaxDelay is the longest delay in seconds a producer may ask for; 0
	// or less means 604800 (7 days), as in the old server. Longer allows
	// more messages to pile up in the pending store.
	MaxDelay int64 `json:"max_delay"`
}

// TransactionConfig covers BEGIN/COMMIT/ABORT_TX.
type TransactionConfig struct {
	// Timeout in seconds after BEGIN_TX aborts a transaction that was not
	// committed. Longer lets slow producers finish; uncommitted messages
	// stay in broker memory that long.
	Timeout int64 `json:"timeout"`
}

// DLQConfig covers the dead-letter queue ops. The old server's retry
// settings (enabled, max_retries, retry_delay) have no counterpart:
// nothing on the client port dead-letters a message.
type DLQConfig struct {
	// TopicSuffix names the dead-letter topic of topic T: T+suffix.
	TopicSuffix string `json:"topic_suffix"`
}

// SecurityConfig covers TLS and encryption at rest.
type SecurityConfig struct {
	// TLSEnabled turns TLS on: on BindAddr itself, or on TLSBindAddr when
	// that is set (plaintext and TLS side by side).
	TLSEnabled bool `json:"tls_enabled"`
	// TLSBindAddr adds a TLS listener (the guide uses ":9093") beside the
	// plaintext BindAddr; empty means BindAddr speaks TLS.
	TLSBindAddr string `json:"tls_bind_addr"`
	// TLSCertFile and TLSKeyFile are the server certificate chain and key
	// (PEM). They are re-read on SIGHUP, so renewals need no restart.
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	// TLSCAFile verifies client certificates. Setting it alone turns on
	// mutual TLS (TLSClientAuth "require"), which the old server only
	// pretended to do.
	TLSCAFile string `json:"tls_ca_file"`
	// TLSClientAuth is none, request (verify a certificate if one is
	// sent) or require (refuse clients without a valid one). Empty means
	// require when TLSCAFile is set and none otherwise. require is safest;
	// request lets clients without certificates still log in with AUTH.
	TLSClientAuth string `json:"tls_client_auth"`
	// TLSCertUserMapping maps a verified client certificate to a user: by
	// subject common name (cn), by the first DNS or email SAN (san), or not
	// at all (none). AUTH keeps working either way.
	TLSCertUserMapping string `json:"tls_cert_user_mapping"`
	// EncryptionEnabled seals every record and small store with AES-256-GCM
	// under the key given through the environment. Turning it off saves a
	// little CPU and the key management, at the cost of a data dir that
	// reveals everything to whoever copies it; the broker warns at every
	// start when it is off.
	EncryptionEnabled bool `json:"encryption_enabled"`
}

// AuthConfig covers authentication and authorization.
type AuthConfig struct {
	// Enabled requires AUTH before any gated operation. Off, every client
	// may do everything, which suits only a trusted network.
	Enabled bool `json:"enabled"`
	// AllowAnonymous lets unauthenticated connections use public topics
	// (reads and, as in the old server, writes).
	AllowAnonymous bool `json:"allow_anonymous"`
	// DefaultPublic makes topics without an ACL readable and writable by
	// every authenticated user. false (here the default, unlike the old
	// server) gives least privilege: a producer-only user cannot read.
	DefaultPublic bool `json:"default_public"`
	// UserFile and ACLFile name an old server's plain JSON stores, imported
	// once into the sealed store in DataDir on first start.
	UserFile string `json:"user_file"`
	ACLFile  string `json:"acl_file"`
	// AdminUsername and AdminPassword create the first admin on first start
	// if no user of that name exists. There is no default password; prefer
	// FLYMQ_AUTH_ADMIN_PASSWORD over writing it here.
	AdminUsername string `json:"admin_username"`
	AdminPassword string `json:"admin_password"`
	// MinPasswordLength rejects shorter new passwords. Longer is harder to
	// guess; bcrypt still caps passwords at 72 bytes.
	MinPasswordLength int `json:"min_password_length"`
	// MaxFailedAuth failed AUTH attempts per peer within FailedAuthWindowMS
	// make further attempts fail until the window passes; 0 disables the
	// limit. Lower slows guessing more, and locks out a mistyping client
	// sooner.
	MaxFailedAuth      int   `json:"max_failed_auth"`
	FailedAuthWindowMS int64 `json:"failed_auth_window_ms"`
}

// AuditConfig covers the audit trail (JSON lines, never message contents).
type AuditConfig struct {
	// Enabled records logins, failures, user/ACL changes, topic
	// creation/deletion and denials. The cost is a write per such event.
	Enabled bool `json:"enabled"`
	// LogDir holds the audit files; empty means DataDir/audit.
	LogDir string `json:"log_dir"`
	// MaxFileSize rolls the current audit file at this many bytes.
	MaxFileSize int64 `json:"max_file_size"`
	// RetentionDays deletes audit files older than this; 0 keeps them all
	// (compliance versus disk).
	RetentionDays int `json:"retention_days"`
}

// PerformanceConfig covers durability versus throughput.
type PerformanceConfig struct {
	// Acks is when a produce is acknowledged: all (after fsync; concurrent
	// produces share one fsync), leader (after the OS write, fsync every
	// SyncIntervalMS: a power loss can lose that window) or none (after
	// the OS write, fsync only when a segment rolls).
	Acks string `json:"acks"`
	// SyncIntervalMS is the background fsync period for Acks "leader":
	// shorter loses less on power loss and costs more fsyncs.
	SyncIntervalMS int64 `json:"sync_interval_ms"`
}

// LimitsConfig protects the broker from clients.
type LimitsConfig struct {
	// MaxConnections caps open client connections; 0 means unlimited.
	// Each connection costs a goroutine and buffers.
	MaxConnections int `json:"max_connections"`
	// MaxConnectionsPerIP caps connections from one address, so one
	// runaway client cannot take them all; 0 means unlimited.
	MaxConnectionsPerIP int `json:"max_connections_per_ip"`
	// IdleTimeoutMS closes connections that send nothing for this long;
	// 0 means never, otherwise at least 5 minutes (see MinIdleTimeout).
	IdleTimeoutMS int64 `json:"idle_timeout_ms"`
	// ReadTimeoutMS bounds how long one started frame may take to arrive
	// and how long a reply may take to be written, against slow-loris
	// clients; 0 means the 30 s default, since no bound at all would let a
	// stalled peer hold a connection forever.
	ReadTimeoutMS int64 `json:"read_timeout_ms"`
	// MaxPartitions is the most partitions CREATE_TOPIC may ask for. Each
	// partition holds open files and memory.
	MaxPartitions int32 `json:"max_partitions"`
}

// ObservabilityConfig covers the HTTP endpoints for Prometheus and probes.
type ObservabilityConfig struct {
	Metrics MetricsConfig `json:"metrics"`
	Health  HealthConfig  `json:"health"`
}

// MetricsConfig is the Prometheus /metrics endpoint.
type MetricsConfig struct {
	// Enabled serves /metrics on Addr.
	Enabled bool   `json:"enabled"`
	Addr    string `json:"addr"`
	// MaxTopicLabels caps how many distinct topics get their own metric
	// label; the rest share one. More labels give finer graphs and cost
	// Prometheus memory per series.
	MaxTopicLabels int `json:"max_topic_labels"`
	// Pprof serves Go's profiles under /debug/pprof/ on Addr. Useful to
	// find where a live broker spends its time; off by default because
	// taking a profile costs CPU and anyone who reaches Addr may take one.
	Pprof bool `json:"pprof"`
}

// HealthConfig is the /healthz and /readyz endpoint; Addr may equal the
// metrics address, and then one listener serves both.
type HealthConfig struct {
	Enabled bool   `json:"enabled"`
	Addr    string `json:"addr"`
}

// Defaults returns the configuration used for every key a file, the
// environment and flags leave unset.
func Defaults() Config {
	return Config{
		BindAddr:     ":9092",
		DataDir:      "/var/lib/flymq",
		LogLevel:     "info",
		LogJSON:      true,
		SegmentBytes: 64 << 20,
		Security: SecurityConfig{
			TLSCertUserMapping: CertUserNone,
			EncryptionEnabled:  true,
		},
		Auth: AuthConfig{
			AdminUsername:      "admin",
			MinPasswordLength:  8,
			MaxFailedAuth:      5,
			FailedAuthWindowMS: 60_000,
		},
		Audit: AuditConfig{
			Enabled:       true,
			MaxFileSize:   100 << 20,
			RetentionDays: 90,
		},
		Performance: PerformanceConfig{
			Acks:           AcksLeader,
			SyncIntervalMS: 5,
		},
		Limits: LimitsConfig{
			MaxConnections:      10_000,
			MaxConnectionsPerIP: 1_000,
			ReadTimeoutMS:       30_000,
			MaxPartitions:       1_024,
		},
		Delayed:     DelayedConfig{MaxDelay: 86_400},
		Transaction: TransactionConfig{Timeout: 60},
		DLQ:         DLQConfig{TopicSuffix: ".dlq"},
		Observability: ObservabilityConfig{
			Metrics: MetricsConfig{Enabled: true, Addr: ":9094", MaxTopicLabels: 100},
			Health:  HealthConfig{Enabled: true, Addr: ":9095"},
		},
	}
}

// Normalize fills the settings whose default depends on others: NodeID
// (the host name), TLSClientAuth (require with a CA file, else none) and
// Audit.LogDir (DataDir/audit). Call it once after loading, before Validate.
func (c *Config) Normalize() {
	if c.NodeID == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.NodeID = h
		} else {
			c.NodeID = "flymq"
		}
	}
	if c.Security.TLSClientAuth == "" {
		c.Security.TLSClientAuth = ClientAuthNone
		if c.Security.TLSCAFile != "" {
			c.Security.TLSClientAuth = ClientAuthRequire
		}
	}
	if c.Security.TLSCertUserMapping == "" {
		c.Security.TLSCertUserMapping = CertUserNone
	}
	if c.Audit.LogDir == "" && c.DataDir != "" {
		c.Audit.LogDir = filepath.Join(c.DataDir, "audit")
	}
}

// Redacted returns a copy safe to log: secrets are replaced by a marker
// that only says whether they were set.
func (c Config) Redacted() Config {
	if c.Auth.AdminPassword != "" {
		c.Auth.AdminPassword = "[redacted]"
	}
	return c
}

// RetentionAge is RetentionMS as a duration (0 = unlimited).
func (c *Config) RetentionAge() time.Duration { return ms(c.RetentionMS) }

// SyncInterval is Performance.SyncIntervalMS as a duration.
func (p *PerformanceConfig) SyncInterval() time.Duration { return ms(p.SyncIntervalMS) }

// IdleTimeout is IdleTimeoutMS as a duration (0 = none).
func (l *LimitsConfig) IdleTimeout() time.Duration { return ms(l.IdleTimeoutMS) }

// ReadTimeout is ReadTimeoutMS as a duration (0 = the server's default).
func (l *LimitsConfig) ReadTimeout() time.Duration { return ms(l.ReadTimeoutMS) }

// MaxDelayDuration is the delayed.max_delay cap (≤ 0 means 7 days).
func (d *DelayedConfig) MaxDelayDuration() time.Duration {
	if d.MaxDelay <= 0 {
		return 604_800 * time.Second
	}
	return time.Duration(d.MaxDelay) * time.Second
}

// TimeoutDuration is transaction.timeout as a duration.
func (t *TransactionConfig) TimeoutDuration() time.Duration {
	return time.Duration(t.Timeout) * time.Second
}

// FailedAuthWindow is FailedAuthWindowMS as a duration.
func (a *AuthConfig) FailedAuthWindow() time.Duration { return ms(a.FailedAuthWindowMS) }

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
