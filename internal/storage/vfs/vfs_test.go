package vfs

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

func TestCrashFSKeepsOnlySynced(t *testing.T) {
	c := NewCrashFS()
	if err := c.MkdirAll("/d", 0o700); err != nil {
		t.Fatal(err)
	}
	a, _ := c.OpenFile("/d/a", os.O_RDWR|os.O_CREATE, 0o600)
	a.WriteAt([]byte("durable"), 0)
	a.Sync()
	c.SyncDir("/d")
	a.WriteAt([]byte("+lost"), 7)
	b, _ := c.OpenFile("/d/b", os.O_RDWR|os.O_CREATE, 0o600)
	b.WriteAt([]byte("x"), 0)
	b.Sync() // data synced, directory entry not
	c.Crash()
	if _, err := a.WriteAt([]byte("z"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old handle after crash: %v", err)
	}
	names, _ := c.ReadDir("/d")
	if len(names) != 1 || names[0] != "a" {
		t.Fatalf("entries after crash: %v", names)
	}
	a2, _ := c.OpenFile("/d/a", os.O_RDWR, 0)
	if n, _ := a2.Size(); n != 7 {
		t.Fatalf("size after crash %d", n)
	}
}

func TestErrorFS(t *testing.T) {
	e := NewErrorFS(nil)
	f, err := e.OpenFile(t.TempDir()+"/f", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.FailWrites(syscall.ENOSPC, 3)
	n, err := f.WriteAt([]byte("hello"), 0)
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("partial write %d, %v", n, err)
	}
	e.FailSyncs(syscall.EIO)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	e.Heal()
	if _, err := f.WriteAt([]byte("ok"), 0); err != nil || f.Sync() != nil {
		t.Fatal(err)
	}
}
