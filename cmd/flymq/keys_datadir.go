package main

import (
	"errors"
	"fmt"

	"github.com/flymq/flymq/internal/migrate"
	"github.com/flymq/flymq/internal/storage"
)

// errOldDataDir is returned when the configured data dir belongs to an old
// FlyMQ server: serving it would show clients empty topics and then mix
// our files into it.
var errOldDataDir = errors.New("data dir belongs to an old FlyMQ server")

// refuseOldDataDir fails, naming `flymq migrate`, if dataDir holds an old
// server's files. It only reads.
func refuseOldDataDir(dataDir string) error {
	if reason, old := migrate.LooksOld(dataDir); old {
		return fmt.Errorf("%w (%s): this broker cannot serve it in place; point data_dir at a new, "+
			"empty directory and copy the old data in with "+
			"`flymq migrate --from %s --config FILE` (the old dir is never modified)",
			errOldDataDir, reason, dataDir)
	}
	return nil
}

// openDataDir refuses an old server's data dir, then takes the data dir's
// lock so that no second broker, `flymq keys reseal` or `flymq migrate`
// can write it at the same time. The lock dies with the process.
func openDataDir(dataDir string) (*storage.DirLock, error) {
	if err := refuseOldDataDir(dataDir); err != nil {
		return nil, err
	}
	lock, err := storage.LockDir(dataDir)
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%w: is another broker running, or `flymq keys reseal` or "+
			"`flymq migrate`?", err)
	}
	return lock, err
}
