package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// ErrInvalid marks every error Validate returns, so callers can tell a bad
// setting from an I/O failure with errors.Is.
var ErrInvalid = errors.New("invalid configuration")

// FieldError is one invalid setting, named by its configuration key.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// maxBcryptPassword is bcrypt's input limit; longer passwords are refused
// rather than silently truncated.
const maxBcryptPassword = 72

// minSegmentBytes keeps segments large enough that the header and one
// record fit and that a busy partition does not roll on every write.
const minSegmentBytes = 64 << 10

// Validate checks every setting and returns all problems at once, joined
// with errors.Join (nil when the configuration is usable), so an operator
// fixes a file in one pass. Call Normalize first.
func (c *Config) Validate() error {
	var v validator
	v.addr("bind_addr", c.BindAddr, true)
	if c.AdvertisedAddr != "" {
		v.addr("advertised_addr", c.AdvertisedAddr, false)
	}
	v.require("node_id", c.NodeID)
	v.require("data_dir", c.DataDir)
	v.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	if c.SegmentBytes < minSegmentBytes {
		v.fail("segment_bytes", fmt.Sprintf("must be at least %d, got %d", minSegmentBytes, c.SegmentBytes))
	}
	v.nonNegative("retention_bytes", c.RetentionBytes)
	v.nonNegative("retention_ms", c.RetentionMS)

	s := &c.Security
	if s.TLSBindAddr != "" {
		v.addr("security.tls_bind_addr", s.TLSBindAddr, true)
		if !s.TLSEnabled {
			v.fail("security.tls_bind_addr", "is set but security.tls_enabled is false")
		}
		if s.TLSBindAddr == c.BindAddr && !strings.HasSuffix(c.BindAddr, ":0") {
			v.fail("security.tls_bind_addr", "must differ from bind_addr")
		}
	}
	if s.TLSEnabled {
		v.require("security.tls_cert_file", s.TLSCertFile)
		v.require("security.tls_key_file", s.TLSKeyFile)
	}
	v.oneOf("security.tls_client_auth", s.TLSClientAuth,
		ClientAuthNone, ClientAuthRequest, ClientAuthRequire)
	if (s.TLSClientAuth == ClientAuthRequest || s.TLSClientAuth == ClientAuthRequire) && s.TLSCAFile == "" {
		v.fail("security.tls_client_auth", s.TLSClientAuth+" needs security.tls_ca_file to verify client certificates")
	}
	v.oneOf("security.tls_cert_user_mapping", s.TLSCertUserMapping, CertUserNone, CertUserCN, CertUserSAN)
	if s.TLSCertUserMapping != CertUserNone && s.TLSClientAuth == ClientAuthNone {
		v.fail("security.tls_cert_user_mapping", "needs security.tls_client_auth request or require")
	}

	a := &c.Auth
	if a.Enabled {
		v.require("auth.admin_username", a.AdminUsername)
	}
	if a.MinPasswordLength < 1 || a.MinPasswordLength > maxBcryptPassword {
		v.fail("auth.min_password_length", fmt.Sprintf("must be between 1 and %d, got %d", maxBcryptPassword, a.MinPasswordLength))
	}
	if n := len(a.AdminPassword); n > 0 && (n < a.MinPasswordLength || n > maxBcryptPassword) {
		// The length is safe to report; the password itself never is.
		v.fail("auth.admin_password", fmt.Sprintf("must be %d to %d bytes long, got %d", a.MinPasswordLength, maxBcryptPassword, n))
	}
	v.nonNegative("auth.max_failed_auth", int64(a.MaxFailedAuth))
	if a.MaxFailedAuth > 0 && a.FailedAuthWindowMS <= 0 {
		v.fail("auth.failed_auth_window_ms", "must be positive when auth.max_failed_auth is set")
	} else {
		v.nonNegative("auth.failed_auth_window_ms", a.FailedAuthWindowMS)
	}

	if c.Audit.Enabled && c.Audit.MaxFileSize <= 0 {
		v.fail("audit.max_file_size", "must be positive")
	}
	v.nonNegative("audit.retention_days", int64(c.Audit.RetentionDays))

	p := &c.Performance
	v.oneOf("performance.acks", p.Acks, AcksLeader, AcksAll, AcksNone)
	if p.Acks == AcksLeader && p.SyncIntervalMS <= 0 {
		v.fail("performance.sync_interval_ms", "must be positive with performance.acks leader")
	} else {
		v.nonNegative("performance.sync_interval_ms", p.SyncIntervalMS)
	}

	l := &c.Limits
	v.nonNegative("limits.max_connections", int64(l.MaxConnections))
	v.nonNegative("limits.max_connections_per_ip", int64(l.MaxConnectionsPerIP))
	if l.IdleTimeoutMS != 0 && l.IdleTimeout() < MinIdleTimeout {
		v.fail("limits.idle_timeout_ms", fmt.Sprintf("must be 0 (no timeout) or at least %d, got %d", MinIdleTimeout.Milliseconds(), l.IdleTimeoutMS))
	}
	v.nonNegative("limits.read_timeout_ms", l.ReadTimeoutMS)
	if l.MaxPartitions < 1 {
		v.fail("limits.max_partitions", fmt.Sprintf("must be at least 1, got %d", l.MaxPartitions))
	}

	// Ten years keeps seconds → time.Duration far from overflow.
	const maxSeconds = 10 * 365 * 86_400
	if c.Delayed.MaxDelay > maxSeconds {
		v.fail("delayed.max_delay", fmt.Sprintf("must be at most %d seconds, got %d", maxSeconds, c.Delayed.MaxDelay))
	}
	if t := c.Transaction.Timeout; t < 1 || t > 86_400 {
		v.fail("transaction.timeout", fmt.Sprintf("must be between 1 and 86400 seconds, got %d", t))
	}
	if s := c.DLQ.TopicSuffix; s == "" || len(s) > 32 || strings.ContainsAny(s, "\\\x00") || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		v.fail("dlq.topic_suffix", "must be 1 to 32 bytes without '\\', NUL or control characters")
	}

	o := &c.Observability
	if o.Metrics.Enabled {
		v.addr("observability.metrics.addr", o.Metrics.Addr, true)
	}
	v.nonNegative("observability.metrics.max_topic_labels", int64(o.Metrics.MaxTopicLabels))
	if o.Health.Enabled {
		v.addr("observability.health.addr", o.Health.Addr, true)
	}
	return errors.Join(v.errs...)
}

// validator collects FieldErrors in the order the settings are checked.
type validator struct{ errs []error }

func (v *validator) fail(key, reason string) {
	v.errs = append(v.errs, &FieldError{Key: key, Reason: reason})
}

func (v *validator) require(key, value string) {
	if value == "" {
		v.fail(key, "must be set")
	}
}

func (v *validator) nonNegative(key string, n int64) {
	if n < 0 {
		v.fail(key, fmt.Sprintf("must not be negative, got %d", n))
	}
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.fail(key, fmt.Sprintf("must be one of %v, got %q", allowed, value))
}

// addr checks host:port; listen addresses may leave the host empty and use
// port 0 (tests do), advertised ones may not.
func (v *validator) addr(key, value string, listen bool) {
	if value == "" {
		v.fail(key, "must be set")
		return
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		v.fail(key, fmt.Sprintf("must be host:port, got %q", value))
		return
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		v.fail(key, fmt.Sprintf("port must be 0-65535, got %q", port))
		return
	}
	if !listen && (host == "" || n == 0) {
		v.fail(key, fmt.Sprintf("must name a host and a non-zero port, got %q", value))
	}
}
