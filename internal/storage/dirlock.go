package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the name of the lock file a process holds in a data dir
// while it owns the dir: the broker for its whole run, offline tools
// (flymq keys reseal, flymq migrate) while they write.
const LockFile = "flymq.lock"

// ErrLocked means another process holds the data dir's lock.
var ErrLocked = errors.New("storage: data dir is in use by another flymq process")

// DirLock is an exclusive advisory lock on a data dir. The kernel drops
// it when the process dies, so a crash never leaves a stale lock behind.
type DirLock struct{ f *os.File }

// LockDir takes the exclusive lock of dir (created if missing), failing
// at once with ErrLocked if another process holds it.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create data dir: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: open lock file: %w", err)
	}
	if err := flock(f, true); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w (%s)", ErrLocked, path)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", path, err)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. The file stays: removing it would race with
// a process that has just opened it.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

// DirLocked reports whether some process holds dir's lock, without
// creating or changing anything (for read-only tools such as
// `flymq keys status`). A dir without a lock file is not locked.
func DirLocked(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: open lock file: %w", err)
	}
	defer f.Close()
	// A shared lock conflicts only with the owner's exclusive one.
	if err := flock(f, false); err != nil {
		if errors.Is(err, errWouldBlock) {
			return true, nil
		}
		return false, fmt.Errorf("storage: probe lock: %w", err)
	}
	return false, nil
}
