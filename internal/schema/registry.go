// Package schema is the broker's schema registry
// (security-and-advanced.md §8): named, versioned JSON Schema, Avro and
// Protobuf schemas, persisted sealed in the data dir, and the validators
// PRODUCE_WITH_SCHEMA and VALIDATE_SCHEMA use.
//
// Each name is one sealed file whose file name is the SHA-256 of the name,
// so no client-chosen byte ever reaches a path; names are validated as well
// (ValidateName) because the old server wrote them into paths unchecked.
// The file keeps the next version number even after every version is
// deleted, so a version number is never reused for different content.
package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
)

// Schema types as sent on the wire; "proto" is an alias of "protobuf"
// whose spelling is kept in replies.
const (
	TypeJSON     = "json"
	TypeAvro     = "avro"
	TypeProtobuf = "protobuf"
	TypeProto    = "proto"
)

// Compatibility is the only mode upstream registers.
const Compatibility = "backward"

// MaxNameLen bounds a schema name; with the SHA-256 file names any
// length would be path-safe, this keeps listings and logs sane.
const MaxNameLen = 255

// fileExt marks registry files; anything else in the directory is ignored.
const fileExt = ".schema"

// Errors. Their texts are the wire texts of §2.3 where one exists.
var (
	// ErrInvalidName: a schema name breaks ValidateName.
	ErrInvalidName = errors.New("invalid schema name")
	// ErrNotFound matches every "schema not found" / "no schema found"
	// error.
	ErrNotFound = errors.New("schema not found")
	// ErrUnsupportedType: a type other than json, avro, protobuf, proto.
	ErrUnsupportedType = errors.New("unsupported schema type")
	// ErrInvalidDefinition: the definition does not parse.
	ErrInvalidDefinition = errors.New("invalid schema definition")
	// ErrIncompatible: the backward compatibility check failed.
	ErrIncompatible = errors.New("schema compatibility check failed")
)

// wireError carries an exact wire text and a sentinel for errors.Is.
type wireError struct {
	text string
	base error
}

func (e *wireError) Error() string { return e.text }
func (e *wireError) Unwrap() error { return e.base }

// Schema is one registered version.
type Schema struct {
	Name          string
	Type          string // as registered: json, avro, protobuf or proto
	Version       uint32
	Definition    []byte
	Compatibility string
	CreatedMs     int64
}

// ID is the "<name>-v<N>" form LIST_SCHEMAS and GET_SCHEMA send.
func (s *Schema) ID() string { return s.Name + "-v" + strconv.FormatUint(uint64(s.Version), 10) }

// Options configures a Registry.
type Options struct {
	// Dir holds the registry files (created if missing).
	Dir string
	// Keyring seals the files; nil stores them unsealed (key id 0).
	Keyring *crypto.Keyring
	Logger  *zap.Logger // nil = nop
}

// Registry is safe for concurrent use.
type Registry struct {
	opts Options
	log  *zap.Logger

	mu    sync.RWMutex
	names map[string]*entry
}

// entry is one name's file content and its compiled validators.
type entry struct {
	Name     string    `json:"name"`
	Next     uint32    `json:"next_version"` // never reused after deletions
	Versions []version `json:"versions"`
	// compiled caches the validator of each version, built on first use.
	compiled map[uint32]validator
}

type version struct {
	Version    uint32 `json:"version"`
	Type       string `json:"type"`
	Definition []byte `json:"definition"`
	Compat     string `json:"compatibility"`
	CreatedMs  int64  `json:"created_ms"`
}

// ValidateName refuses names that are empty, longer than MaxNameLen, not
// UTF-8, or contain '/', '\\', "..", NUL or any control character.
func ValidateName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrInvalidName, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxNameLen))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.ContainsAny(name, `/\`):
		return bad(`contains '/' or '\'`)
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("contains a control character")
		}
	}
	return nil
}

// Open loads every registry file from opts.Dir.
func Open(opts Options) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("schema: create dir: %w", err)
	}
	r := &Registry{opts: opts, log: opts.Logger, names: map[string]*entry{}}
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("schema: read dir: %w", err)
	}
	for _, de := range ents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), fileExt) {
			continue
		}
		blob, err := os.ReadFile(filepath.Join(opts.Dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", de.Name(), err)
		}
		plain, err := crypto.OpenBlob(opts.Keyring, BlobPurpose(de.Name()), blob)
		if err != nil {
			return nil, fmt.Errorf("schema: open %s: %w", de.Name(), err)
		}
		var e entry
		err = json.Unmarshal(plain, &e)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("schema: decode %s: %w", de.Name(), err)
		}
		if ValidateName(e.Name) != nil || fileName(e.Name) != de.Name() {
			return nil, fmt.Errorf("schema: %s does not belong to its name", de.Name())
		}
		r.names[e.Name] = &e
	}
	return r, nil
}

// fileName is the registry file of a name: no name byte reaches the path.
func fileName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:]) + fileExt
}

// BlobPurpose is the sealed-blob purpose of the schema stored in file (a
// name in the registry's directory); it binds the blob to its file name,
// so files cannot be swapped. internal/keys re-seals schemas with it:
// changing it strands every registered schema.
func BlobPurpose(file string) string { return "flymq/schema/v1/" + file }

// save writes e's file atomically (mu held for writing).
func (r *Registry) save(e *entry) error {
	plain, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("schema: encode: %w", err)
	}
	fn := fileName(e.Name)
	blob, err := crypto.SealBlob(r.opts.Keyring, BlobPurpose(fn), plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("schema: seal: %w", err)
	}
	if err := crypto.WriteFileAtomic(filepath.Join(r.opts.Dir, fn), blob, 0o600); err != nil {
		return fmt.Errorf("schema: write: %w", err)
	}
	return nil
}

// checkType reports whether typ is a supported schema type.
func checkType(typ string) error {
	switch typ {
	case TypeJSON, TypeAvro, TypeProtobuf, TypeProto:
		return nil
	}
	return &wireError{"unsupported schema type: " + typ, ErrUnsupportedType}
}

// Register adds a new version of name. Errors carry the §2.3 texts.
func (r *Registry) Register(name, typ string, def []byte) (Schema, error) {
	if err := checkType(typ); err != nil {
		return Schema{}, err
	}
	if err := ValidateName(name); err != nil {
		return Schema{}, err
	}
	const prefix = "failed to register schema: "
	var v validator
	if typ == TypeJSON {
		var err error
		if v, err = compileJSON(def); err != nil {
			return Schema{}, &wireError{prefix + "invalid schema definition: invalid JSON schema: " + err.Error(),
				ErrInvalidDefinition}
		}
	} else if len(def) == 0 {
		return Schema{}, &wireError{prefix + "invalid schema definition: schema definition cannot be empty",
			ErrInvalidDefinition}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.names[name]
	if e != nil && len(e.Versions) > 0 {
		latest := e.Versions[len(e.Versions)-1]
		if typ == TypeJSON && latest.Type == TypeJSON {
			if f, ok := newRequiredField(latest.Definition, def); !ok {
				return Schema{}, &wireError{prefix + "schema compatibility check failed: new required field '" +
					f + "' not in old schema", ErrIncompatible}
			}
		}
	}
	fresh := e == nil
	if fresh {
		e = &entry{Name: name, Next: 1}
	}
	old := *e
	ver := version{Version: e.Next, Type: typ, Definition: append([]byte(nil), def...),
		Compat: Compatibility, CreatedMs: time.Now().UnixMilli()}
	e.Versions = append(e.Versions[:len(e.Versions):len(e.Versions)], ver)
	e.Next++
	if err := r.save(e); err != nil {
		if fresh {
			return Schema{}, err
		}
		*e = old
		return Schema{}, err
	}
	if fresh {
		r.names[name] = e
	}
	if v != nil {
		if e.compiled == nil {
			e.compiled = map[uint32]validator{}
		}
		e.compiled[ver.Version] = v
	}
	r.log.Info("schema registered", zap.String("name", name), zap.Uint32("version", ver.Version),
		zap.String("type", typ))
	return toSchema(name, ver), nil
}

func toSchema(name string, v version) Schema {
	return Schema{Name: name, Type: v.Type, Version: v.Version, Definition: v.Definition,
		Compatibility: v.Compat, CreatedMs: v.CreatedMs}
}

func notFound(name string, v uint32) error {
	return &wireError{fmt.Sprintf("schema not found: %s v%d", name, v), ErrNotFound}
}

func noSchema(name string) error {
	return &wireError{"no schema found for topic: " + name, ErrNotFound}
}

// Get returns version v of name, or the latest when v is 0.
func (r *Registry) Get(name string, v uint32) (Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.names[name]
	if e == nil || len(e.Versions) == 0 {
		if v == 0 {
			return Schema{}, noSchema(name)
		}
		return Schema{}, notFound(name, v)
	}
	if v == 0 {
		return toSchema(name, e.Versions[len(e.Versions)-1]), nil
	}
	for _, x := range e.Versions {
		if x.Version == v {
			return toSchema(name, x), nil
		}
	}
	return Schema{}, notFound(name, v)
}

// Has reports whether name has at least one version.
func (r *Registry) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.names[name]
	return e != nil && len(e.Versions) > 0
}

// List returns every version of every name (only name == filter when
// filter is non-empty), sorted by name, then version.
func (r *Registry) List(filter string) []Schema {
	r.mu.RLock()
	var out []Schema
	for name, e := range r.names {
		if filter != "" && name != filter {
			continue
		}
		for _, v := range e.Versions {
			out = append(out, toSchema(name, v))
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Delete removes version v of name, or every version when v is 0
// (§8.6). Deleting the latest makes the previous one latest.
func (r *Registry) Delete(name string, v uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.names[name]
	if v == 0 {
		if e == nil || len(e.Versions) == 0 {
			return noSchema(name)
		}
	} else if e == nil || !containsVersion(e.Versions, v) {
		return &wireError{"failed to delete schema: " + notFound(name, v).Error(), ErrNotFound}
	}
	old := e.Versions
	var keep []version
	if v != 0 {
		for _, x := range e.Versions {
			if x.Version != v {
				keep = append(keep, x)
			}
		}
	}
	e.Versions = keep
	if err := r.save(e); err != nil {
		e.Versions = old
		return err
	}
	if v == 0 {
		e.compiled = nil
	} else {
		delete(e.compiled, v)
	}
	r.log.Info("schema deleted", zap.String("name", name), zap.Uint32("version", v))
	return nil
}

func containsVersion(vs []version, v uint32) bool {
	for _, x := range vs {
		if x.Version == v {
			return true
		}
	}
	return false
}

// Validate checks msg against the latest version of name (§8.4). It
// returns the validator's messages, empty when msg is valid or no schema
// is registered under name.
func (r *Registry) Validate(name string, msg []byte) []string {
	v, ok := r.latestValidator(name)
	if !ok {
		return nil
	}
	return v.validate(msg)
}

// latestValidator returns the validator of name's latest version,
// compiling it on first use (after a restart).
func (r *Registry) latestValidator(name string) (validator, bool) {
	r.mu.RLock()
	e := r.names[name]
	if e == nil || len(e.Versions) == 0 {
		r.mu.RUnlock()
		return nil, false
	}
	latest := e.Versions[len(e.Versions)-1]
	v := e.compiled[latest.Version]
	r.mu.RUnlock()
	if v != nil {
		return v, true
	}
	v = newValidator(latest.Type, latest.Definition)
	r.mu.Lock()
	if e.compiled == nil {
		e.compiled = map[uint32]validator{}
	}
	e.compiled[latest.Version] = v
	r.mu.Unlock()
	return v, true
}
