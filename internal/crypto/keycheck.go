package crypto

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// KeycheckFile is the name of the key check file in the data dir.
const KeycheckFile = "KEYCHECK"

const (
	keycheckLabel   = "flymq keycheck v1"
	keycheckVersion = 1
)

// keycheck is the JSON content of KEYCHECK. It holds key ids and, per id,
// HMAC-SHA256(key, keycheckLabel): proof that a key is the one with that id
// without revealing the key. Active is the key that sealed the newest data.
type keycheck struct {
	Version int             `json:"version"`
	Active  string          `json:"active"`
	Keys    []keycheckEntry `json:"keys"`
}

type keycheckEntry struct {
	ID  string `json:"id"`
	MAC string `json:"mac"`
}

// CheckDataDir verifies the keyring against dataDir/KEYCHECK before any
// data file is touched:
//
//   - KEYCHECK names sealed data but r is nil: a *KeyError with
//     ErrKeyRequired naming the key id needed.
//   - r lacks the key that sealed the newest data, or a key's MAC does not
//     match: a *KeyError with ErrWrongKey naming the id expected.
//
// Only after that succeeds is KEYCHECK created or updated (atomically) to
// record the ring's keys with the active key first. With r nil and no
// KEYCHECK nothing is written. dataDir is created if missing.
func CheckDataDir(dataDir string, r *Keyring) error {
	path := filepath.Join(dataDir, KeycheckFile)
	old, err := readKeycheck(path)
	if err != nil {
		return err
	}
	if err := verifyKeycheck(old, r); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	next := mergeKeycheck(old, r)
	if old != nil && slices.Equal(old.Keys, next.Keys) && old.Active == next.Active {
		return nil
	}
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("crypto: encode %s: %w", KeycheckFile, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("crypto: create data dir: %w", err)
	}
	return WriteFileAtomic(path, append(data, '\n'), 0o600)
}

func readKeycheck(path string) (*keycheck, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: read %s: %w", KeycheckFile, err)
	}
	var kc keycheck
	if err := json.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("crypto: malformed %s: %w", KeycheckFile, err)
	}
	if kc.Version != keycheckVersion {
		return nil, fmt.Errorf("crypto: %s version %d not supported", KeycheckFile, kc.Version)
	}
	return &kc, nil
}

func verifyKeycheck(kc *keycheck, r *Keyring) error {
	if kc == nil || len(kc.Keys) == 0 {
		return nil
	}
	active, err := parseKeyID(kc.Active)
	if err != nil {
		return fmt.Errorf("crypto: malformed %s: active: %w", KeycheckFile, err)
	}
	if r == nil {
		return &KeyError{ID: active, Err: ErrKeyRequired}
	}
	if _, err := r.Lookup(active); err != nil {
		return &KeyError{ID: active, Err: ErrWrongKey}
	}
	for _, e := range kc.Keys {
		id, err := parseKeyID(e.ID)
		if err != nil {
			return fmt.Errorf("crypto: malformed %s: %w", KeycheckFile, err)
		}
		k, err := r.Lookup(id)
		if err != nil {
			continue // an old key no longer in the ring; storage names it if still needed
		}
		want, err := hex.DecodeString(e.MAC)
		if err != nil || !hmac.Equal(want, k.mac(keycheckLabel)) {
			return &KeyError{ID: id, Err: ErrWrongKey}
		}
	}
	return nil
}

func mergeKeycheck(old *keycheck, r *Keyring) *keycheck {
	next := &keycheck{Version: keycheckVersion, Active: r.ActiveID().String()}
	seen := map[string]bool{}
	for _, id := range r.IDs() {
		k, _ := r.Lookup(id)
		next.Keys = append(next.Keys, keycheckEntry{
			ID: id.String(), MAC: hex.EncodeToString(k.mac(keycheckLabel)),
		})
		seen[id.String()] = true
	}
	if old != nil {
		// Keep ids of retired keys: data sealed with them may still exist.
		for _, e := range old.Keys {
			if !seen[e.ID] {
				next.Keys = append(next.Keys, e)
			}
		}
	}
	return next
}

func parseKeyID(s string) (KeyID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("key id %q is not 16 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("key id %q is not hex", s)
	}
	return KeyID(v), nil
}

// WriteFileAtomic replaces path with data so that after a crash either the
// old or the new content is there, never a mix: write a temporary file in
// the same directory, fsync it, rename it over path, fsync the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("crypto: write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("crypto: chmod temp file: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("crypto: write temp file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("crypto: fsync temp file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("crypto: close temp file: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("crypto: rename temp file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("crypto: open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("crypto: fsync dir: %w", err)
	}
	return nil
}
