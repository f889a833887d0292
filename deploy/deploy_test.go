// Package deploy holds no Go code: its tests check the shipped systemd
// unit, container files and Prometheus rules, so a broken deploy file fails
// `make test` rather than a production roll-out.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// directives returns the unit's "Key=value" lines, comments dropped.
func directives(unit string) map[string][]string {
	out := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = append(out[k], v)
	}
	return out
}

func TestSystemdUnitSettings(t *testing.T) {
	d := directives(read(t, "systemd/flymq.service"))
	want := map[string]string{
		"User":                  "flymq",
		"Group":                 "flymq",
		"ExecStart":             "/usr/local/bin/flymq --config /etc/flymq/flymq.json",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"LoadCredential":        "flymq-encryption-key:/etc/flymq/encryption.key",
		"StateDirectory":        "flymq",
		"ReadWritePaths":        "/var/lib/flymq",
		"NoNewPrivileges":       "yes",
		"CapabilityBoundingSet": "",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, got, v)
		}
	}
	for k, vs := range d {
		for _, v := range vs {
			if strings.Contains(strings.ToUpper(k+v), "ENCRYPTION_KEY=") {
				t.Errorf("unit carries key material in %s", k)
			}
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// the binary path pointed at an executable that exists here.
func TestSystemdUnitVerifies(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd); unit not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(read(t, "systemd/flymq.service"), "/usr/local/bin/flymq", self)
	path := filepath.Join(t.TempDir(), "flymq.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "flymq.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

func TestDockerfile(t *testing.T) {
	df := read(t, "docker/Dockerfile")
	for _, want := range []string{
		"CGO_ENABLED=0 go build",
		"\nUSER 65532:65532\n",
		"\nVOLUME /var/lib/flymq\n",
		"\nEXPOSE 9092 9093 9094 9095\n",
		`CMD ["/usr/local/bin/flymq", "healthcheck", "--addr", "127.0.0.1:9095"]`,
		"ENV FLYMQ_ENCRYPTION_KEY_FILE=/run/secrets/flymq-encryption-key",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(df, "\nFROM ") < 2 {
		t.Error("Dockerfile is not multi-stage")
	}
}

func TestCompose(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Secrets     []string          `yaml:"secrets"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "docker/compose.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	s, ok := c.Services["flymq"]
	if !ok {
		t.Fatal("no flymq service")
	}
	if len(s.Secrets) != 1 || s.Secrets[0] != "flymq-encryption-key" ||
		c.Secrets["flymq-encryption-key"].File == "" {
		t.Errorf("key secret not wired: %+v %+v", s.Secrets, c.Secrets)
	}
	if s.Environment["FLYMQ_ENCRYPTION_KEY_FILE"] != "/run/secrets/flymq-encryption-key" {
		t.Errorf("FLYMQ_ENCRYPTION_KEY_FILE = %q", s.Environment["FLYMQ_ENCRYPTION_KEY_FILE"])
	}
	if _, err := os.Stat(filepath.Join("docker", c.Secrets["flymq-encryption-key"].File)); err == nil {
		t.Error("a key file sits in the repository's deploy/docker directory")
	}
}

func TestPrometheusFiles(t *testing.T) {
	var scrape struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "prometheus/prometheus.yml")), &scrape); err != nil {
		t.Fatal(err)
	}
	if len(scrape.ScrapeConfigs) != 1 || scrape.ScrapeConfigs[0].JobName != "flymq" ||
		len(scrape.RuleFiles) != 1 || scrape.RuleFiles[0] != "alerts.yml" {
		t.Errorf("prometheus.yml: %+v", scrape)
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "prometheus/alerts.yml")), &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" {
				t.Errorf("incomplete rule %+v", r)
			}
			exprs[r.Alert] = r.Expr
		}
	}
	// Each operational risk has an alert on the metric that measures it.
	for alert, metric := range map[string]string{
		"FlymqTLSCertificateExpiringSoon": "flymq_tls_cert_expiry_seconds",
		"FlymqFsyncErrors":                "flymq_storage_fsync_errors_total",
		"FlymqAuthFailureRate":            "flymq_auth_failures_total",
		"FlymqDiskNearlyFull":             "flymq_data_dir_available_bytes",
	} {
		if !strings.Contains(exprs[alert], metric) {
			t.Errorf("alert %s: expr %q does not use %s", alert, exprs[alert], metric)
		}
	}
}
