package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDirLockExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if locked, err := DirLocked(dir); err != nil || locked {
		t.Fatalf("before: locked=%v err=%v", locked, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("DirLocked created the dir: %v", err)
	}
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if locked, err := DirLocked(dir); err != nil || !locked {
		t.Fatalf("held: locked=%v err=%v", locked, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if locked, err := DirLocked(dir); err != nil || locked {
		t.Fatalf("released: locked=%v err=%v", locked, err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("relock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentNameHelpers(t *testing.T) {
	if n := SegmentFileName(42); n != "00000000000000000042.log" {
		t.Fatalf("name %q", n)
	}
	if b, ok := ParseSegmentName(SegmentFileName(42)); !ok || b != 42 {
		t.Fatalf("parse: %d %v", b, ok)
	}
	if _, ok := ParseSegmentName("00000000000000000042.log.reseal.tmp"); ok {
		t.Fatal("temp file parsed as a segment")
	}
}
