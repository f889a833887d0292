package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/keys"
	"github.com/flymq/flymq/internal/storage"
)

func TestPreviousKeysFileWithSeveralKeys(t *testing.T) {
	f := filepath.Join(t.TempDir(), "previous.keys")
	if err := os.WriteFile(f, []byte(hexB+",\n"+hexC+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := source(map[string]string{envKey: hexA, envPreviousKeysFile: f,
		envPreviousKeys: hexC}).loadKeyring(true, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := ring.IDs()
	if len(ids) != 3 || ids[0] != keyID(t, hexA) || ids[1] != keyID(t, hexC) || ids[2] != keyID(t, hexB) {
		t.Fatalf("ring ids %v", ids)
	}
}

func TestRefuseOldDataDirNamesMigrate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "__consumer_offsets"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := openDataDir(dir)
	if !errors.Is(err, errOldDataDir) || !strings.Contains(err.Error(), "flymq migrate --from "+dir) {
		t.Fatalf("old dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, storage.LockFile)); !os.IsNotExist(err) {
		t.Fatal("a lock file was created in the old dir")
	}
	ours := t.TempDir()
	l, err := openDataDir(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := openDataDir(ours); !errors.Is(err, storage.ErrLocked) ||
		!strings.Contains(err.Error(), "another broker running") {
		t.Fatalf("second open: %v", err)
	}
}

func TestKeysStatusOutput(t *testing.T) {
	a, b := mustParse(t, hexA), mustParse(t, hexB)
	dir := t.TempDir()
	if err := crypto.CheckDataDir(dir, crypto.NewKeyring(a)); err != nil {
		t.Fatal(err)
	}
	p, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "topics", "t-x", "0"), Topic: "x",
		Keyring: crypto.NewKeyring(a)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append([]storage.Record{{Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	st, err := keys.GetStatus(dir, crypto.NewKeyring(b, a))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := writeStatusText(&text, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{a.ID().String() + "  previous         1", b.ID().String() + "    active         0",
		"run `flymq keys reseal`"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := writeStatusJSON(&js, st); err != nil {
		t.Fatal(err)
	}
	var out statusJSON
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.ActiveKeyID != b.ID().String() || len(out.Keys) != 2 || out.Keys[1].State != "previous" ||
		out.Keys[1].Segments != 1 || len(out.Missing) != 0 {
		t.Fatalf("json: %s", js.String())
	}

	// Without A, its id is MISSING and the command exits 1.
	st, err = keys.GetStatus(dir, crypto.NewKeyring(b))
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	_ = writeStatusText(&text, st)
	if !strings.Contains(text.String(), "MISSING: data is sealed under "+a.ID().String()) {
		t.Fatalf("text:\n%s", text.String())
	}
	cfg := filepath.Join(t.TempDir(), "flymq.json")
	if err := os.WriteFile(cfg, []byte(`{"data_dir":"`+dir+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envKey, hexB)
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), []string{"keys", "status", "--config", cfg}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), "MISSING") {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
}

func mustParse(t *testing.T, h string) *crypto.Key {
	t.Helper()
	k, err := crypto.ParseKey(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
