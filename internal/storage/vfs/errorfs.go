package vfs

import (
	"os"
	"sync"
)

// ErrorFS wraps an FS and injects write and fsync errors, for tests of the
// "no error is ever dropped" rules. The zero budget state injects nothing.
type ErrorFS struct {
	FS FS

	mu          sync.Mutex
	writeErr    error
	writeBudget int64 // bytes still allowed before writeErr; -1 = unlimited
	syncErr     error
	syncs       int
}

// NewErrorFS wraps fs (nil = OS) with no faults armed.
func NewErrorFS(fs FS) *ErrorFS {
	if fs == nil {
		fs = OS()
	}
	return &ErrorFS{FS: fs, writeBudget: -1}
}

// FailWrites makes writes fail with err once after more bytes have been
// written; the write that crosses the budget is partial, as a real ENOSPC
// write can be.
func (e *ErrorFS) FailWrites(err error, after int64) {
	e.mu.Lock()
	e.writeErr, e.writeBudget = err, after
	e.mu.Unlock()
}

// FailSyncs makes every File.Sync and SyncDir fail with err.
func (e *ErrorFS) FailSyncs(err error) {
	e.mu.Lock()
	e.syncErr = err
	e.mu.Unlock()
}

// Heal disarms every fault.
func (e *ErrorFS) Heal() {
	e.mu.Lock()
	e.writeErr, e.writeBudget, e.syncErr = nil, -1, nil
	e.mu.Unlock()
}

// Syncs returns how many successful File.Sync calls were made.
func (e *ErrorFS) Syncs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.syncs
}

// allow returns how many of n bytes may be written and the error to return.
func (e *ErrorFS) allow(n int) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.writeErr == nil || e.writeBudget < 0 {
		return n, nil
	}
	if int64(n) <= e.writeBudget {
		e.writeBudget -= int64(n)
		return n, nil
	}
	k := int(e.writeBudget)
	e.writeBudget = 0
	return k, e.writeErr
}

func (e *ErrorFS) syncFault() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.syncErr == nil {
		e.syncs++
	}
	return e.syncErr
}

// OpenFile opens a file whose writes and syncs are subject to the faults.
func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := e.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &errFile{File: f, fs: e}, nil
}

// Remove passes through.
func (e *ErrorFS) Remove(name string) error { return e.FS.Remove(name) }

// RemoveAll passes through.
func (e *ErrorFS) RemoveAll(name string) error { return e.FS.RemoveAll(name) }

// Rename passes through.
func (e *ErrorFS) Rename(a, b string) error { return e.FS.Rename(a, b) }

// ReadDir passes through.
func (e *ErrorFS) ReadDir(dir string) ([]string, error) { return e.FS.ReadDir(dir) }

// MkdirAll passes through.
func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error { return e.FS.MkdirAll(dir, perm) }

// SyncDir fails while syncs are failing.
func (e *ErrorFS) SyncDir(dir string) error {
	e.mu.Lock()
	err := e.syncErr
	e.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return e.FS.SyncDir(dir)
}

type errFile struct {
	File
	fs *ErrorFS
}

func (f *errFile) WriteAt(p []byte, off int64) (int, error) {
	n, ferr := f.fs.allow(len(p))
	if n > 0 {
		m, err := f.File.WriteAt(p[:n], off)
		if err != nil {
			return m, err
		}
	}
	if ferr != nil {
		return n, &os.PathError{Op: "write", Path: "file", Err: ferr}
	}
	return n, nil
}

func (f *errFile) Sync() error {
	if err := f.fs.syncFault(); err != nil {
		return &os.PathError{Op: "fsync", Path: "file", Err: err}
	}
	return f.File.Sync()
}
