package e2e

// Operations against the real binary (issue 5): /metrics parsed with the
// Prometheus text parser moves by exactly the workload, labels stay
// bounded, /readyz follows recovery and shutdown, SIGTERM under load keeps
// every acknowledged message and exits 0.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	fbroker "github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/protocol"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/testutil"
	"github.com/flymq/flymq/pkg/client"
)

// opsMetrics is one parsed /metrics scrape.
type opsMetrics map[string]*dto.MetricFamily

// scrape fetches /metrics in the Prometheus text format and parses it with
// the Prometheus text parser, as a Prometheus server would.
func (b *broker) scrapeAll() opsMetrics {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+b.metrics+"/metrics", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		b.t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// find returns the series of family name whose labels include want.
func (m opsMetrics) find(name string, want ...string) []*dto.Metric {
	var out []*dto.Metric
	mf := m[name]
	if mf == nil {
		return nil
	}
next:
	for _, s := range mf.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, lp := range s.GetLabel() {
				if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// has reports whether a series of name with the labels exists.
func (m opsMetrics) has(name string, labels ...string) bool { return len(m.find(name, labels...)) > 0 }

// value is a counter's or gauge's value, or a histogram's sample count, of
// the one series of name with exactly the given labels (absent: 0).
func (m opsMetrics) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	ss := m.find(name, labels...)
	var exact []*dto.Metric
	for _, s := range ss {
		if len(s.GetLabel())*2 == len(labels) {
			exact = append(exact, s)
		}
	}
	switch len(exact) {
	case 0:
		return 0
	case 1:
	default:
		t.Fatalf("%s%v: %d series", name, labels, len(exact))
	}
	s := exact[0]
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	t.Fatalf("%s%v: no value", name, labels)
	return 0
}

// labelValues collects every value label name takes in families named
// with prefix.
func (m opsMetrics) labelValues(prefix, label string) map[string]bool {
	out := map[string]bool{}
	for name, mf := range m {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == label {
					out[lp.GetValue()] = true
				}
			}
		}
	}
	return out
}

// labelHolding names the first series with a label value containing s,
// or returns "".
func (m opsMetrics) labelHolding(s string) string {
	for name, mf := range m {
		for _, sr := range mf.GetMetric() {
			for _, lp := range sr.GetLabel() {
				if strings.Contains(lp.GetValue(), s) {
					return fmt.Sprintf("%s{%s=%q}", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	return ""
}

// merged returns family name from m, or from o when m lacks it (a vector
// with no child yet is not exposed).
func (m opsMetrics) merged(o opsMetrics, name string) *dto.MetricFamily {
	if mf := m[name]; mf != nil {
		return mf
	}
	return o[name]
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// opsDelta is one expected change of a series between two scrapes.
type opsDelta struct {
	name   string
	labels []string
	want   float64
}

func checkOpsDeltas(t *testing.T, before, after opsMetrics, ds []opsDelta) {
	t.Helper()
	for _, d := range ds {
		got := after.value(t, d.name, d.labels...) - before.value(t, d.name, d.labels...)
		if got != d.want {
			t.Errorf("%s%v moved by %v, want %v", d.name, d.labels, got, d.want)
		}
	}
}

// reconfigure merges extra into the broker's config file, recursing into
// objects, so a test can add keys under "observability" or "security"
// without losing the addresses newBroker chose.
func (b *broker) reconfigure(extra map[string]any) {
	b.t.Helper()
	raw, err := os.ReadFile(b.configPath)
	if err != nil {
		b.t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		b.t.Fatal(err)
	}
	mergeConfig(cfg, extra)
	if raw, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(b.configPath, raw, 0o600); err != nil {
		b.t.Fatal(err)
	}
}

func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeConfig(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 valid until
// notAfter, and its key.
func writeCert(t *testing.T, dir string, notAfter time.Time) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return testutil.SelfSignedCert(t, dir, "flymq-e2e", notAfter)
}

// segmentFiles counts the segment files (*.log) under the data dir's
// topics/ and adds up their sizes.
func segmentFiles(t *testing.T, dataDir string) (n int, bytes int64) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dataDir, "topics"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		bytes += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, bytes
}

// opsEventually polls cond until it holds or 10 s pass; connection counts
// change on the broker's side after the client has moved on.
func opsEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 10s", what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsCountWhatWasDone scrapes /metrics around a known workload on
// a broker with authentication, a TLS listener beside the plaintext one and
// a cap of 3 topic labels, and checks that every counter moved by exactly
// what was done and that no label carries a client string past the cap.
func TestMetricsCountWhatWasDone(t *testing.T) {
	b := newBroker(t, nil)
	certFile, keyFile, pool := writeCert(t, b.dir, time.Now().Add(30*24*time.Hour))
	tlsAddr := freeAddr(t)
	const password = "e2e-admin-password"
	b.reconfigure(map[string]any{
		"performance": map[string]any{"acks": "all"},
		"auth":        map[string]any{"enabled": true, "admin_password": password},
		"security": map[string]any{
			"tls_enabled": true, "tls_bind_addr": tlsAddr,
			"tls_cert_file": certFile, "tls_key_file": keyFile,
		},
		"observability": map[string]any{"metrics": map[string]any{"max_topic_labels": 3}},
	})
	b.start()
	admin := client.Options{Username: "admin", Password: password}
	m0 := b.scrapeAll()
	for _, kind := range []string{"plain", "tls"} {
		if v := m0.value(t, "flymq_connections_active", "listener", kind); v != 0 {
			t.Fatalf("connections_active{%s} = %v before any client", kind, v)
		}
	}
	// Every AUTH failure reason is exported at 0 before the first one.
	for _, reason := range []string{"bad_credentials", "disabled", "rate_limited"} {
		if !m0.has("flymq_auth_failures_total", "reason", reason) {
			t.Errorf("flymq_auth_failures_total{reason=%q} not exported before any failure", reason)
		}
	}
	c := b.client(admin) // one plain connection, authenticated
	const topic = "ops/main"
	if err := c.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	m1 := b.scrapeAll()

	// The workload: 20 produces (12 to partition 0, 8 to partition 1), one
	// fetch of 7 messages, one group committing at offset 5 of partition 0.
	const n, m = 20, 7
	var producedBytes, fetchedBytes int
	for i := range n {
		key := []byte(fmt.Sprintf("k%02d", i))
		value := []byte(strings.Repeat("v", 10+i))
		part := int32(0)
		if i >= 12 {
			part = 1
		}
		if _, err := c.ProduceToPartition(topic, part, key, value); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		producedBytes += len(key) + len(value)
	}
	res, err := c.Fetch(topic, 0, 2, m, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != m || res.NextOffset != 2+m {
		t.Fatalf("fetch: %d messages, next %d; want %d, %d", len(res.Messages), res.NextOffset, m, 2+m)
	}
	for _, msg := range res.Messages {
		fetchedBytes += len(msg.Key) + len(msg.Value)
	}
	if _, err := c.Subscribe(topic, "billing", 0, client.ModeEarliest); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(topic, "billing", 0, 5); err != nil {
		t.Fatal(err)
	}

	// One wrong password, and one anonymous produce the gate refuses.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if bad, err := client.Dial(ctx, b.addr, client.Options{Username: "admin", Password: "wrong-password"}); !errors.Is(err, client.ErrAuthFailed) {
		if bad != nil {
			bad.Close()
		}
		t.Fatalf("AUTH with a wrong password: %v", err)
	}
	anon := b.client(client.Options{})
	if _, err := anon.Produce(topic, []byte("anonymous")); err == nil {
		t.Fatal("anonymous produce accepted with auth enabled")
	}
	anon.Close()

	m2 := b.scrapeAll()
	checkOpsDeltas(t, m1, m2, []opsDelta{
		{"flymq_requests_total", []string{"op", "produce"}, n + 1},
		{"flymq_request_errors_total", []string{"op", "produce"}, 1},
		{"flymq_request_duration_seconds", []string{"op", "produce"}, n + 1},
		{"flymq_requests_total", []string{"op", "fetch"}, 1},
		{"flymq_request_errors_total", []string{"op", "fetch"}, 0},
		{"flymq_request_duration_seconds", []string{"op", "fetch"}, 1},
		{"flymq_requests_total", []string{"op", "subscribe"}, 1},
		{"flymq_requests_total", []string{"op", "commit"}, 1},
		{"flymq_requests_total", []string{"op", "auth"}, 1},
		// A refused AUTH is an AUTH_RESPONSE with success false, not an ERROR.
		{"flymq_request_errors_total", []string{"op", "auth"}, 0},
		{"flymq_permission_denials_total", []string{"op", "produce"}, 1},
		{"flymq_auth_failures_total", []string{"reason", "bad_credentials"}, 1},
		{"flymq_auth_success_total", nil, 0},
		{"flymq_broker_produced_messages_total", []string{"topic", topic}, n},
		{"flymq_broker_produced_bytes_total", []string{"topic", topic}, float64(producedBytes)},
		{"flymq_broker_fetched_messages_total", []string{"topic", topic}, m},
		{"flymq_broker_fetched_bytes_total", []string{"topic", topic}, float64(fetchedBytes)},
		{"flymq_storage_records_sealed_total", nil, n},
		{"flymq_storage_records_opened_total", nil, m},
		{"flymq_storage_auth_failures_total", nil, 0},
		{"flymq_tls_handshake_failures_total", nil, 0},
	})
	if got := m2.value(t, "flymq_broker_consumer_lag", "topic", topic, "group", "billing"); got != 12-5 {
		t.Errorf("consumer_lag{billing} = %v, want 7 (LEO 12 - committed 5)", got)
	}
	// Every acks=all produce was made durable by its own fsync: one client
	// sending one at a time shares none.
	if got := m2.value(t, "flymq_storage_fsync_duration_seconds") - m1.value(t, "flymq_storage_fsync_duration_seconds"); got != n {
		t.Errorf("fsync_duration_seconds count moved by %v, want %d", got, n)
	}

	// Connections: 3 plain and 2 TLS open at once; plaintext on the TLS
	// port is a failed handshake that leaves no connection behind.
	tlsOpts := admin
	tlsOpts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	var conns []*client.Client
	for i := range 4 {
		opts := admin
		addr := b.addr
		if i >= 2 {
			opts, addr = tlsOpts, tlsAddr
		}
		cc, err := client.Dial(ctx, addr, opts) // AUTH is a round trip: served by now
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conns = append(conns, cc)
	}
	raw, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Write(protocol.AppendFrame(nil, protocol.OpListTopics, protocol.FlagBinary, nil)); err != nil {
		t.Fatal(err)
	}
	// Reading to EOF waits for the broker's close, which follows the count.
	if _, err := io.Copy(io.Discard, raw); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("plaintext on the TLS port: %v", err)
	}
	raw.Close()
	m3 := b.scrapeAll()
	checkOpsDeltas(t, m2, m3, []opsDelta{
		{"flymq_tls_handshake_failures_total", nil, 1},
		{"flymq_auth_success_total", nil, 4},
	})
	opsEventually(t, "active connections with 3 plain and 2 TLS clients", func() (bool, string) {
		m := b.scrapeAll()
		p, s := m.value(t, "flymq_connections_active", "listener", "plain"), m.value(t, "flymq_connections_active", "listener", "tls")
		return p == 3 && s == 2, fmt.Sprintf("plain=%v tls=%v", p, s)
	})
	if got := m3.value(t, "flymq_tls_cert_expiry_seconds"); got > 30*24*3600 || got < 30*24*3600-300 {
		t.Errorf("tls_cert_expiry_seconds = %v, want about %d (30 days)", got, 30*24*3600)
	}
	for _, cc := range conns {
		cc.Close()
	}
	opsEventually(t, "active connections once the extra clients closed", func() (bool, string) {
		m := b.scrapeAll()
		p, s := m.value(t, "flymq_connections_active", "listener", "plain"), m.value(t, "flymq_connections_active", "listener", "tls")
		return p == 1 && s == 0, fmt.Sprintf("plain=%v tls=%v", p, s)
	})

	// Label cap 3: "ops/main" and the first two of five more topics get
	// their own label; the other three are counted under "_other".
	for i := range 5 {
		if _, err := c.Produce(fmt.Sprintf("cap-%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Four more groups (five in all) commit on partition 0 (LEO 12): three
	// get their own lag series, the rest are summed under "_other".
	for i := range 4 {
		g := fmt.Sprintf("group-%d", i)
		if _, err := c.Subscribe(topic, g, 0, client.ModeEarliest); err != nil {
			t.Fatal(err)
		}
		if err := c.Commit(topic, g, 0, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	m4 := b.scrapeAll()
	var lagSum float64
	lagGroups := map[string]bool{}
	for _, s := range m4.find("flymq_broker_consumer_lag") {
		lagSum += s.GetGauge().GetValue()
		for _, lp := range s.GetLabel() {
			if lp.GetName() == "group" {
				lagGroups[lp.GetValue()] = true
			}
		}
	}
	if want := float64(7 + 11 + 10 + 9 + 8); lagSum != want || len(lagGroups) != 4 || !lagGroups["_other"] {
		t.Errorf("consumer_lag: groups %q summing to %v, want 3 groups and _other summing to %v",
			sortedKeys(lagGroups), lagSum, want)
	}
	checkOpsDeltas(t, m3, m4, []opsDelta{
		{"flymq_broker_produced_messages_total", []string{"topic", "cap-0"}, 1},
		{"flymq_broker_produced_messages_total", []string{"topic", "cap-1"}, 1},
		{"flymq_broker_produced_messages_total", []string{"topic", "_other"}, 3},
		{"flymq_broker_produced_bytes_total", []string{"topic", "_other"}, 3},
		{"flymq_storage_records_sealed_total", nil, 5},
	})
	wantTopics := []string{"_other", "cap-0", "cap-1", topic}
	if got := sortedKeys(m4.labelValues("flymq_", "topic")); strings.Join(got, ",") != strings.Join(wantTopics, ",") {
		t.Errorf("topic label values = %q, want %q", got, wantTopics)
	}
	for _, name := range []string{"cap-2", "cap-3", "cap-4"} {
		if where := m4.labelHolding(name); where != "" {
			t.Errorf("topic %q beyond the cap appears as a label value: %s", name, where)
		}
	}
	if segs, bytes := segmentFiles(t, b.dataDir()); m4.value(t, "flymq_storage_segments") != float64(segs) ||
		m4.value(t, "flymq_storage_bytes") != float64(bytes) {
		t.Errorf("storage gauges segments=%v bytes=%v, files on disk: %d segments, %d bytes",
			m4.value(t, "flymq_storage_segments"), m4.value(t, "flymq_storage_bytes"), segs, bytes)
	}

	// Deleting a labelled topic and a group removes their series; the freed
	// label goes to the next new topic.
	if err := c.DeleteTopic("cap-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(topic, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce("cap-5", []byte("yy")); err != nil {
		t.Fatal(err)
	}
	m5 := b.scrapeAll()
	if where := m5.labelHolding("cap-0"); where != "" {
		t.Errorf("deleted topic cap-0 still has series: %s", where)
	}
	if where := m5.labelHolding("billing"); where != "" {
		t.Errorf("deleted group billing still has series: %s", where)
	}
	checkOpsDeltas(t, m4, m5, []opsDelta{
		{"flymq_broker_produced_messages_total", []string{"topic", "cap-5"}, 1},
		{"flymq_broker_produced_bytes_total", []string{"topic", "cap-5"}, 2},
		{"flymq_broker_produced_messages_total", []string{"topic", "_other"}, 0},
		{"flymq_storage_segments", nil, 0}, // cap-0's one segment gone, cap-5's new
		{"flymq_requests_total", []string{"op", "delete_topic"}, 1},
		{"flymq_requests_total", []string{"op", "delete_group"}, 1},
	})
	if segs, bytes := segmentFiles(t, b.dataDir()); m5.value(t, "flymq_storage_segments") != float64(segs) ||
		m5.value(t, "flymq_storage_bytes") != float64(bytes) {
		t.Errorf("storage gauges segments=%v bytes=%v, files on disk: %d segments, %d bytes",
			m5.value(t, "flymq_storage_segments"), m5.value(t, "flymq_storage_bytes"), segs, bytes)
	}

	// A renewed certificate is served after SIGHUP, and the expiry gauge
	// follows it.
	writeCert(t, b.dir, time.Now().Add(60*24*time.Hour))
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	opsEventually(t, "tls_cert_expiry_seconds after renewal and SIGHUP", func() (bool, string) {
		v := b.scrapeAll().value(t, "flymq_tls_cert_expiry_seconds")
		return v > 59*24*3600 && v <= 60*24*3600, fmt.Sprintf("%v s", v)
	})

	// Every metric the operations issue lists is exposed, with its type.
	for name, typ := range map[string]dto.MetricType{
		"flymq_requests_total":                 dto.MetricType_COUNTER,
		"flymq_request_errors_total":           dto.MetricType_COUNTER,
		"flymq_request_duration_seconds":       dto.MetricType_HISTOGRAM,
		"flymq_broker_produced_messages_total": dto.MetricType_COUNTER,
		"flymq_broker_produced_bytes_total":    dto.MetricType_COUNTER,
		"flymq_broker_fetched_messages_total":  dto.MetricType_COUNTER,
		"flymq_broker_fetched_bytes_total":     dto.MetricType_COUNTER,
		"flymq_connections_active":             dto.MetricType_GAUGE,
		"flymq_tls_handshake_failures_total":   dto.MetricType_COUNTER,
		"flymq_auth_failures_total":            dto.MetricType_COUNTER,
		"flymq_permission_denials_total":       dto.MetricType_COUNTER,
		"flymq_tls_cert_expiry_seconds":        dto.MetricType_GAUGE,
		"flymq_storage_records_sealed_total":   dto.MetricType_COUNTER,
		"flymq_storage_records_opened_total":   dto.MetricType_COUNTER,
		"flymq_storage_auth_failures_total":    dto.MetricType_COUNTER,
		"flymq_storage_fsync_duration_seconds": dto.MetricType_HISTOGRAM,
		"flymq_storage_fsync_errors_total":     dto.MetricType_COUNTER,
		"flymq_storage_bytes":                  dto.MetricType_GAUGE,
		"flymq_storage_segments":               dto.MetricType_GAUGE,
		"flymq_broker_consumer_lag":            dto.MetricType_GAUGE,
		"flymq_data_dir_available_bytes":       dto.MetricType_GAUGE,
		"flymq_data_dir_size_bytes":            dto.MetricType_GAUGE,
		"flymq_build_info":                     dto.MetricType_GAUGE,
	} {
		if mf := m2.merged(m5, name); mf == nil || mf.GetType() != typ {
			t.Errorf("metric %s missing or not a %v", name, typ)
		}
	}
}

// envKeyring is the keyring of the key newBroker put in the environment.
func envKeyring(t *testing.T, env []string) *crypto.Keyring {
	t.Helper()
	for _, kv := range env {
		if hex, ok := strings.CutPrefix(kv, "FLYMQ_ENCRYPTION_KEY="); ok {
			k, err := crypto.ParseKey(hex)
			if err != nil {
				t.Fatal(err)
			}
			return crypto.NewKeyring(k)
		}
	}
	t.Fatal("no FLYMQ_ENCRYPTION_KEY in the broker's environment")
	return nil
}

// recoveryValue is the value of record i of partition p in fillLog.
func recoveryValue(p int32, i int, size int) []byte {
	v := make([]byte, size)
	copy(v, fmt.Sprintf("p%d-r%d-", p, i))
	return v
}

// fillLog writes records×valueSize bytes into each partition of topic
// straight through the broker package, under the key the binary will use:
// far faster than the wire, and the same files.
func fillLog(t *testing.T, dataDir string, ring *crypto.Keyring, topic string, parts int32, records, valueSize int) {
	t.Helper()
	br, err := fbroker.Open(fbroker.Options{DataDir: dataDir, Keyring: ring, Acks: storage.AcksNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.CreateTopic(topic, parts); err != nil {
		t.Fatal(err)
	}
	const batch = 2000
	items := make([]fbroker.ProduceItem, 0, batch)
	for p := range parts {
		for i := 0; i < records; i += batch {
			items = items[:0]
			for j := i; j < min(i+batch, records); j++ {
				items = append(items, fbroker.ProduceItem{Partition: p, Value: recoveryValue(p, j, valueSize)})
			}
			if err := br.ProduceBatch(topic, items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if it.Err != nil {
					t.Fatal(it.Err)
				}
			}
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
}

// launch starts the binary, with extra flags, without waiting for it to be
// ready.
func (b *broker) launch(flags ...string) {
	b.t.Helper()
	b.cmd = exec.Command(flymqBin, append([]string{"--config", b.configPath}, flags...)...)
	b.cmd.Env = b.env
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(b.cmd, b.exited)
}

// httpStatus is the status of GET url, or 0 when nothing answers.
func httpStatus(hc *http.Client, url string) int {
	resp, err := hc.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzFollowsRecoveryAndShutdown starts the binary on a data dir
// holding a large log (about 230 MB in 8 partitions, every record of which
// recovery authenticates) and polls the health endpoint from the first
// moment: /readyz answers 503 while the log is recovered, /healthz 200 all
// along, /readyz 200 once every record is back. Then SIGTERM while a
// consumer that never reads its replies holds a connection: /readyz says
// 503 through the whole drain, before the port closes, and the process
// still exits 0 once the shutdown bound cuts that consumer off.
//
// The data is written in-process through internal/broker under the
// binary's key rather than over the wire: the files are the same, and
// it takes a second instead of ten. Recovery of it takes a few hundred
// milliseconds here, hundreds of polls; a slower machine only widens the
// window. No test hook in the binary is needed.
func TestReadyzFollowsRecoveryAndShutdown(t *testing.T) {
	b := newBroker(t, nil)
	const (
		topic     = "recovery"
		parts     = 8
		records   = 4000
		valueSize = 4000
	)
	t0 := time.Now()
	fillLog(t, b.dataDir(), envKeyring(t, b.env), topic, parts, records, valueSize)
	t.Logf("filled %d MB in %v", parts*records*valueSize>>20, time.Since(t0))

	hc := &http.Client{Timeout: 5 * time.Second}
	health := "http://" + b.healthAddr
	const shutdownBound = time.Second
	b.launch("--shutdown-timeout", shutdownBound.String())
	var notReady, refused int
	var firstNotReady time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-b.exited:
			t.Fatalf("broker exited during recovery: %v", b.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 30s")
		}
		code := httpStatus(hc, health+"/readyz")
		if code == http.StatusOK {
			break
		}
		switch code {
		case 0:
			refused++
			continue
		case http.StatusServiceUnavailable:
			if notReady == 0 {
				firstNotReady = time.Now()
			}
			notReady++
		default:
			t.Fatalf("/readyz answered %d during recovery", code)
		}
		if code := httpStatus(hc, health+"/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz answered %d during recovery, want 200", code)
		}
	}
	t.Logf("/readyz: %d refused, %d x 503 over %v, then 200", refused, notReady, time.Since(firstNotReady))
	if notReady == 0 {
		t.Fatal("/readyz never answered 503 before 200 while a large log was recovered")
	}

	// Every partition is whole: its last offset and its first and last
	// records byte-equal.
	c := b.client(client.Options{})
	for p := range int32(parts) {
		for _, off := range []uint64{0, records - 1} {
			res, err := c.Fetch(topic, p, off, 1, "")
			if err != nil {
				t.Fatalf("fetch p%d@%d: %v", p, off, err)
			}
			if len(res.Messages) != 1 || res.Messages[0].Offset != off ||
				!bytes.Equal(res.Messages[0].Value, recoveryValue(p, int(off), valueSize)) || res.NextOffset != off+1 {
				t.Fatalf("p%d@%d after recovery: %d messages, next %d", p, off, len(res.Messages), res.NextOffset)
			}
		}
		if res, err := c.Fetch(topic, p, records, 1, ""); err != nil || len(res.Messages) != 0 {
			t.Fatalf("p%d: records past %d after recovery: %v %v", p, records, res, err)
		}
	}
	c.Close()

	// A consumer pipelines 100 fetches of about 500 KB each and reads none
	// of the replies: the broker blocks writing to it, so the drain lasts
	// until the shutdown bound.
	stuck, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var reqs []byte
	for range 100 {
		req := protocol.FetchRequest{Topic: topic, Partition: 0, Offset: 0, MaxMessages: 1000}
		reqs = protocol.AppendFrame(reqs, protocol.OpFetch, protocol.FlagBinary, req.AppendTo(nil))
	}
	if _, err := stuck.Write(reqs); err != nil {
		t.Fatal(err)
	}
	opsEventually(t, "the stuck consumer's fetches being served", func() (bool, string) {
		n := b.scrapeAll().value(t, "flymq_requests_total", "op", "fetch")
		return n >= 1, fmt.Sprintf("%v fetches", n)
	})

	code, took, samples := b.terminateWatching(hc)
	notReady = checkShutdownOrder(t, samples)
	drained := 0
	for _, s := range samples {
		if s.ready == http.StatusServiceUnavailable && !s.listening {
			drained++
		}
	}
	t.Logf("exit %d after %v; %d samples, %d saw /readyz 503, %d of them with the port closed", code, took, len(samples), notReady, drained)
	if code != 0 {
		t.Errorf("exit code after SIGTERM with a stuck consumer = %d, want 0", code)
	}
	if drained == 0 {
		t.Error("/readyz never answered 503 while the broker drained its connections")
	}
}

// shutdownSample is one look at a stopping broker: /readyz's status (0 when
// nothing answered) and whether the broker port still accepted.
type shutdownSample struct {
	ready     int
	listening bool
}

// terminateWatching sends SIGTERM and, until the process is gone, samples
// /readyz and then the broker port. It returns the exit code, how long the
// exit took and the samples.
func (b *broker) terminateWatching(hc *http.Client) (code int, took time.Duration, samples []shutdownSample) {
	b.t.Helper()
	start := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case <-b.exited:
			took = time.Since(start)
			code = b.cmd.ProcessState.ExitCode()
			b.cmd = nil
			return code, took, samples
		case <-timeout:
			b.t.Fatal("broker did not stop within 30s of SIGTERM")
		default:
		}
		s := shutdownSample{ready: httpStatus(hc, "http://"+b.healthAddr+"/readyz")}
		if nc, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
			s.listening = true
			nc.Close()
		}
		samples = append(samples, s)
	}
}

// checkShutdownOrder asserts that /readyz stopped saying ready before the
// broker stopped accepting: no sample once the port refused, nor after a
// 503, shows 200. It returns how many samples saw 503.
func checkShutdownOrder(t *testing.T, samples []shutdownSample) (notReady int) {
	t.Helper()
	closed, unready := -1, -1
	for i, s := range samples {
		if s.ready == http.StatusOK && (closed >= 0 || unready >= 0) {
			t.Errorf("sample %d: /readyz 200 after the port closed (sample %d) or it said 503 (sample %d)", i, closed, unready)
		}
		if s.ready == http.StatusServiceUnavailable {
			notReady++
			if unready < 0 {
				unready = i
			}
		}
		// Within one sample /readyz is asked first, so a 200 there with
		// the port refused is only the signal landing in between.
		if !s.listening && closed < 0 {
			closed = i
		}
	}
	return notReady
}

// ackedMsg is a produce the broker acknowledged.
type ackedMsg struct {
	partition  int32
	offset     uint64
	key, value []byte
}

// syncProducer produces one message at a time until an error (the broker
// going away) or stop, and returns what was acknowledged.
func syncProducer(b *broker, topic string, id int, stop <-chan struct{}) []ackedMsg {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.addr, client.Options{})
	if err != nil {
		return nil
	}
	defer c.Close()
	var acked []ackedMsg
	for i := 0; ; i++ {
		select {
		case <-stop:
			return acked
		default:
		}
		key := []byte(fmt.Sprintf("sync-%d-%d", id, i))
		value := []byte(fmt.Sprintf("value of %s %s", key, strings.Repeat("s", i%300)))
		md, err := c.ProduceWithKey(topic, key, value)
		if err != nil {
			return acked
		}
		acked = append(acked, ackedMsg{md.Partition, md.Offset, key, value})
	}
}

// pipeProducer streams produces on one connection without waiting for
// replies (up to 128 outstanding) and pairs replies with requests in order.
func pipeProducer(b *broker, topic string, id int, stop <-chan struct{}) []ackedMsg {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.DialConn(ctx, b.addr, client.Options{})
	if err != nil {
		return nil
	}
	defer conn.Close()
	inflight := make(chan ackedMsg, 128)
	go func() {
		defer close(inflight)
		var buf []byte
		for i := 0; ; i++ {
			select {
			case <-stop:
				conn.Flush()
				return
			default:
			}
			key := []byte(fmt.Sprintf("pipe-%d-%d", id, i))
			value := []byte(fmt.Sprintf("value of %s %s", key, strings.Repeat("p", i%500)))
			req := protocol.ProduceRequest{Topic: topic, Key: key, Value: value, Partition: -1}
			buf = req.AppendTo(buf[:0])
			inflight <- ackedMsg{key: key, value: value}
			if conn.Send(protocol.OpProduce, protocol.FlagBinary, buf) != nil {
				return
			}
			if i%8 == 7 && conn.Flush() != nil {
				return
			}
		}
	}()
	var acked []ackedMsg
	defer func() {
		conn.Close()
		for range inflight { // unblock the sender
		}
	}()
	for m := range inflight {
		h, p, err := conn.Recv()
		if err != nil || h.Op != protocol.OpProduce {
			return acked
		}
		var md protocol.RecordMetadata
		if md.Decode(p) != nil {
			return acked
		}
		m.partition, m.offset = md.Partition, md.Offset
		acked = append(acked, m)
	}
	return acked
}

// TestSigtermUnderLoadKeepsEveryAck produces from several goroutines, one
// message at a time and pipelined, sends SIGTERM mid-load and checks: exit
// code 0 within the shutdown bound, /readyz not ready before the port
// closes, and after a restart every acknowledged message byte-equal at its
// offset. Run with acks=all and acks=leader (a graceful stop fsyncs).
func TestSigtermUnderLoadKeepsEveryAck(t *testing.T) {
	for _, acks := range []string{"all", "leader"} {
		t.Run("acks="+acks, func(t *testing.T) {
			b := newBroker(t, nil)
			b.reconfigure(map[string]any{"performance": map[string]any{"acks": acks}})
			b.start()
			const topic, parts = "load", 4
			if err := b.client(client.Options{}).CreateTopic(topic, parts); err != nil {
				t.Fatal(err)
			}

			stop := make(chan struct{})
			results := make(chan []ackedMsg)
			const syncs, pipes = 4, 2
			for i := range syncs + pipes {
				go func() {
					if i < syncs {
						results <- syncProducer(b, topic, i, stop)
					} else {
						results <- pipeProducer(b, topic, i, stop)
					}
				}()
			}
			// Let the load build up: enough acknowledged produces on
			// the metrics' count before the signal.
			opsEventually(t, "produce load", func() (bool, string) {
				n := b.scrapeAll().value(t, "flymq_requests_total", "op", "produce")
				return n >= 3000, fmt.Sprintf("%v produces", n)
			})
			hc := &http.Client{Timeout: 2 * time.Second}
			code, took, samples := b.terminateWatching(hc)
			close(stop)
			var acked []ackedMsg
			for range syncs + pipes {
				acked = append(acked, <-results...)
			}
			notReady := checkShutdownOrder(t, samples)
			t.Logf("exit %d after %v; %d samples, %d saw /readyz 503; %d acknowledged", code, took, len(samples), notReady, len(acked))
			if code != 0 {
				t.Fatalf("exit code after SIGTERM = %d, want 0", code)
			}

			b.start()
			c := b.client(client.Options{})
			logs := make([][]client.FetchedMessage, parts)
			for p := range int32(parts) {
				for off := uint64(0); ; {
					res, err := c.Fetch(topic, p, off, 1000, "")
					if err != nil {
						t.Fatalf("fetch p%d@%d: %v", p, off, err)
					}
					if len(res.Messages) == 0 {
						break
					}
					logs[p] = append(logs[p], res.Messages...)
					off = res.NextOffset
				}
			}
			for _, m := range acked {
				l := logs[m.partition]
				if m.offset >= uint64(len(l)) {
					t.Fatalf("acknowledged p%d@%d missing after restart (log ends at %d)", m.partition, m.offset, len(l))
				}
				got := l[m.offset]
				if got.Offset != m.offset || !bytes.Equal(got.Key, m.key) || !bytes.Equal(got.Value, m.value) {
					t.Fatalf("p%d@%d after restart = %q=%q, want %q=%q", m.partition, m.offset, got.Key, got.Value, m.key, m.value)
				}
			}
		})
	}
}

// TestTamperedRecordCountsTagFailure changes one byte of a sealed record's
// authentication tag in a rolled segment and fixes up its CRC, as an
// attacker with write access to the disk could: the broker refuses the
// record on FETCH and flymq_storage_auth_failures_total moves by exactly 1.
func TestTamperedRecordCountsTagFailure(t *testing.T) {
	b := newBroker(t, map[string]any{"segment_bytes": 64 << 10})
	b.start()
	c := b.client(client.Options{})
	const topic = "tamper"
	for i := range 100 {
		if _, err := c.ProduceToPartition(topic, 0, nil, recoveryValue(0, i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if code := b.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	var first string
	segs := 0
	filepath.WalkDir(filepath.Join(b.dataDir(), "topics"), func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".log") {
			segs++
			if filepath.Base(path) == "00000000000000000000.log" {
				first = path
			}
		}
		return err
	})
	if first == "" || segs < 2 {
		t.Fatalf("want a rolled first segment: first=%q, %d segments", first, segs)
	}
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	const frameAt = 64 // after the segment header
	body := data[frameAt+8 : frameAt+8+int(binary.BigEndian.Uint32(data[frameAt:]))]
	body[len(body)-1] ^= 0x01 // last byte of the AES-GCM tag
	binary.BigEndian.PutUint32(data[frameAt+4:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(first, data, 0o600); err != nil {
		t.Fatal(err)
	}

	b.start()
	c = b.client(client.Options{})
	m1 := b.scrapeAll()
	if _, err := c.Fetch(topic, 0, 0, 1, ""); err == nil {
		t.Fatal("a record with a forged tag was served")
	}
	res, err := c.Fetch(topic, 0, 99, 1, "")
	if err != nil || len(res.Messages) != 1 || !bytes.Equal(res.Messages[0].Value, recoveryValue(0, 99, 1000)) {
		t.Fatalf("an intact record after the tampered one: %v %v", res, err)
	}
	m2 := b.scrapeAll()
	checkOpsDeltas(t, m1, m2, []opsDelta{
		{"flymq_storage_auth_failures_total", nil, 1},
		{"flymq_storage_records_opened_total", nil, 1},
		{"flymq_request_errors_total", []string{"op", "fetch"}, 1},
	})
}
