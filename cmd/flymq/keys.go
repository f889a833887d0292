package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
)

// ErrNoKey is returned when encryption is on and no key source is set.
var ErrNoKey = errors.New("encryption is enabled but no key was given: " +
	"set " + envKey + " or " + envKeyFile + " (or a systemd credential named " + credentialKey + "); " +
	"make a key with `flymq keygen`, or set security.encryption_enabled=false to store data unencrypted")

// maxKeyFileSize bounds what is read from a key file: a key is 64 hex
// characters, so anything much larger is the wrong file.
const maxKeyFileSize = 64 << 10

// keySource says where keys come from; getenv is os.Getenv outside tests.
type keySource struct {
	getenv func(string) string
	log    *zap.Logger
}

// loadKeyring builds the keyring from the environment: the active key from
// FLYMQ_ENCRYPTION_KEY, FLYMQ_ENCRYPTION_KEY_FILE or the systemd credential
// (in that order; setting both variables is an error), and older keys from
// FLYMQ_ENCRYPTION_PREVIOUS_KEYS(_FILE). With encryption off it returns nil.
// devKeyPath, when not empty (flymq --dev), is where a missing key is
// generated once and read from later; production paths pass "".
func (s keySource) loadKeyring(encryption bool, devKeyPath string) (*crypto.Keyring, error) {
	if !encryption {
		s.log.Warn("encryption at rest is disabled (security.encryption_enabled=false): " +
			"messages, offsets, users and ACLs are stored readable by anyone who can read the data dir")
		if s.getenv(envKey) != "" || s.getenv(envKeyFile) != "" {
			s.log.Warn("an encryption key is set but encryption is disabled; the key is not used")
		}
		return nil, nil
	}
	active, src, err := s.activeKey()
	if err != nil {
		return nil, err
	}
	if active == nil {
		if devKeyPath == "" {
			return nil, ErrNoKey
		}
		if active, err = devKey(devKeyPath, s.log); err != nil {
			return nil, err
		}
		src = devKeyPath
	}
	previous, err := s.previousKeys()
	if err != nil {
		return nil, err
	}
	ring := crypto.NewKeyring(active, previous...)
	s.log.Info("encryption key loaded", zap.Stringer("key-id", active.ID()),
		zap.String("key-source", src), zap.Int("previous-keys", len(previous)))
	return ring, nil
}

// activeKey returns the active key and a description of where it came
// from (a variable or file name, never the key), or nil if none is set.
func (s keySource) activeKey() (*crypto.Key, string, error) {
	inline, file := s.getenv(envKey), s.getenv(envKeyFile)
	switch {
	case inline != "" && file != "":
		return nil, "", fmt.Errorf("both %s and %s are set; set only one", envKey, envKeyFile)
	case inline != "":
		k, err := crypto.ParseKey(inline)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", envKey, err)
		}
		return k, envKey, nil
	case file != "":
		k, err := s.keyFromFile(file)
		return k, file, err
	}
	if dir := s.getenv(envCredentialsDir); dir != "" {
		path := filepath.Join(dir, credentialKey)
		if _, err := os.Stat(path); err == nil {
			k, err := s.keyFromFile(path)
			return k, path, err
		}
	}
	return nil, "", nil
}

// previousKeys parses the comma- or newline-separated older keys that
// still open data sealed before a rotation.
func (s keySource) previousKeys() ([]*crypto.Key, error) {
	var lists []struct{ src, text string }
	if v := s.getenv(envPreviousKeys); v != "" {
		lists = append(lists, struct{ src, text string }{envPreviousKeys, v})
	}
	files := []string{s.getenv(envPreviousKeysFile)}
	if dir := s.getenv(envCredentialsDir); dir != "" {
		if p := filepath.Join(dir, credentialPrevious); fileExists(p) {
			files = append(files, p)
		}
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		data, err := s.readKeyFile(f)
		if err != nil {
			return nil, err
		}
		lists = append(lists, struct{ src, text string }{f, string(data)})
	}
	var keys []*crypto.Key
	for _, l := range lists {
		fields := strings.FieldsFunc(l.text, func(r rune) bool { return r == ',' || r == '\n' })
		n := 0
		for _, f := range fields {
			if strings.TrimSpace(f) == "" {
				continue
			}
			n++
			k, err := crypto.ParseKey(f)
			if err != nil {
				return nil, fmt.Errorf("%s: key %d: %w", l.src, n, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (s keySource) keyFromFile(path string) (*crypto.Key, error) {
	data, err := s.readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := crypto.ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// readKeyFile reads a key file of at most maxKeyFileSize bytes.
func (s keySource) readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s: larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	return data, nil
}

// devKey reads the development key at path, generating it (mode 0600) on
// first use. Only `flymq --dev` calls it: a production broker that invents
// its own key would seal data with a key nobody has backed up.
func devKey(path string, log *zap.Logger) (*crypto.Key, error) {
	if data, err := os.ReadFile(path); err == nil {
		k, err := crypto.ParseKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("development key file %s: %w", path, err)
		}
		log.Warn("DEVELOPMENT MODE: using the generated development key; never use --dev in production",
			zap.String("key-file", path))
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read development key: %w", err)
	}
	hex, err := crypto.GenerateKeyHex()
	if err != nil {
		return nil, fmt.Errorf("generate development key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create development key dir: %w", err)
	}
	if err := crypto.WriteFileAtomic(path, []byte(hex+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write development key: %w", err)
	}
	log.Warn("DEVELOPMENT MODE: generated a new encryption key; data sealed with it is lost if this file is lost",
		zap.String("key-file", path))
	return crypto.ParseKey(hex)
}

// devKeyPath is where --dev keeps its key: beside the data dir, so that
// deleting the data dir alone keeps the key and a fresh data dir reuses it.
func devKeyPath(dataDir string) string {
	return filepath.Clean(dataDir) + ".key"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
