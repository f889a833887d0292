package crypto

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestVerifyDataDirWritesNothing(t *testing.T) {
	dir := t.TempDir()
	a, _ := ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	b, _ := ParseKey("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100")
	if err := VerifyDataDir(dir, NewKeyring(a)); err != nil {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeycheckFile)); !os.IsNotExist(err) {
		t.Fatalf("VerifyDataDir wrote KEYCHECK: %v", err)
	}
	if err := CheckDataDir(dir, NewKeyring(a)); err != nil {
		t.Fatal(err)
	}
	if err := CheckDataDir(dir, NewKeyring(b, a)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, KeycheckFile))
	if err := VerifyDataDir(dir, NewKeyring(b)); err != nil {
		t.Fatalf("active key only: %v", err)
	}
	var ke *KeyError
	if err := VerifyDataDir(dir, NewKeyring(a)); !errors.As(err, &ke) || ke.ID != b.ID() {
		t.Fatalf("old key only: %v, want a KeyError naming %v", err, b.ID())
	}
	after, _ := os.ReadFile(filepath.Join(dir, KeycheckFile))
	if string(before) != string(after) {
		t.Fatal("KEYCHECK changed")
	}
	active, ids, err := KeycheckIDs(dir)
	if err != nil || active != b.ID() || len(ids) != 2 || ids[0] != b.ID() || ids[1] != a.ID() {
		t.Fatalf("KeycheckIDs = %v %v %v", active, ids, err)
	}
}
