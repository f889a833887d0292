package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
)

const (
	hexA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	hexB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
	hexC = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func keyID(t *testing.T, hex string) crypto.KeyID {
	t.Helper()
	k, err := crypto.ParseKey(hex)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func source(env map[string]string) keySource {
	return keySource{getenv: func(k string) string { return env[k] }, log: zap.NewNop()}
}

func TestKeyringSources(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "encryption.key")
	if err := os.WriteFile(keyFile, []byte("\n  "+hexB+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, credentialKey), []byte(hexC+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, credentialPrevious), []byte(hexA+"\n"+hexB+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		env      map[string]string
		active   string
		previous []string
	}{
		{"env with whitespace", map[string]string{envKey: "  " + hexA + "\n"}, hexA, nil},
		{"file with newline", map[string]string{envKeyFile: keyFile}, hexB, nil},
		{"systemd credential", map[string]string{envCredentialsDir: creds}, hexC, []string{hexA, hexB}},
		{"env beats credential", map[string]string{envKey: hexA, envCredentialsDir: creds}, hexA, []string{hexA, hexB}},
		{"previous keys", map[string]string{envKey: hexA, envPreviousKeys: " " + hexB + " , " + hexC + ","}, hexA, []string{hexB, hexC}},
		{"previous keys file", map[string]string{envKey: hexC, envPreviousKeysFile: keyFile}, hexC, []string{hexB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := source(tt.env).loadKeyring(true, "")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ring.Active().ID(), keyID(t, tt.active); got != want {
				t.Fatalf("active key %v, want %v", got, want)
			}
			for _, p := range tt.previous {
				if _, err := ring.Lookup(keyID(t, p)); err != nil {
					t.Errorf("previous key %v missing: %v", keyID(t, p), err)
				}
			}
		})
	}
}

func TestKeyringErrors(t *testing.T) {
	malformed := strings.Repeat("zz", 32)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no key", nil, "encryption is enabled but no key was given"},
		{"both set", map[string]string{envKey: hexA, envKeyFile: "/x"}, "both FLYMQ_ENCRYPTION_KEY and FLYMQ_ENCRYPTION_KEY_FILE are set"},
		{"malformed env", map[string]string{envKey: malformed}, "FLYMQ_ENCRYPTION_KEY: "},
		{"short env", map[string]string{envKey: hexA[:62]}, "FLYMQ_ENCRYPTION_KEY: "},
		{"malformed previous", map[string]string{envKey: hexA, envPreviousKeys: hexB + "," + malformed}, "FLYMQ_ENCRYPTION_PREVIOUS_KEYS: key 2: "},
		{"missing file", map[string]string{envKeyFile: "/nonexistent/flymq.key"}, "open key file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := source(tt.env).loadKeyring(true, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			for _, secret := range []string{malformed, hexA, hexB, hexA[:62]} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error echoes key material: %v", err)
				}
			}
		})
	}
	if _, err := source(nil).loadKeyring(true, ""); !errors.Is(err, ErrNoKey) ||
		!strings.Contains(err.Error(), "flymq keygen") {
		t.Fatalf("no key: %v", err)
	}
}

func TestEncryptionDisabledNeedsNoKey(t *testing.T) {
	ring, err := source(map[string]string{envKey: "not even a key"}).loadKeyring(false, "")
	if err != nil || ring != nil {
		t.Fatalf("disabled: %v %v", ring, err)
	}
}

func TestDevKeyGeneratedOnce(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data", "dev")
	path := devKeyPath(dataDir)
	if path != dataDir+".key" {
		t.Fatalf("dev key path %q", path)
	}
	first, err := source(nil).loadKeyring(true, path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("dev key mode %v, want 0600", st.Mode().Perm())
	}
	second, err := source(nil).loadKeyring(true, path)
	if err != nil {
		t.Fatal(err)
	}
	if first.Active().ID() != second.Active().ID() {
		t.Fatal("dev key regenerated on the second start")
	}
	// A key given explicitly wins over the dev key, and nothing is written.
	ring, err := source(map[string]string{envKey: hexA}).loadKeyring(true, path+".unused")
	if err != nil || ring.Active().ID() != keyID(t, hexA) {
		t.Fatalf("explicit key with --dev: %v", err)
	}
	if _, err := os.Stat(path + ".unused"); !os.IsNotExist(err) {
		t.Fatalf("dev key written although a key was given: %v", err)
	}
}
