//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package storage

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flock is a no-op where flock(2) is missing: the lock is then advisory
// only by convention.
// TODO(keys): use LockFileEx on Windows if the broker is ever built there.
func flock(*os.File, bool) error { return nil }
