package crypto

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeySize is the size of a master key in bytes (AES-256).
const KeySize = 32

// Sentinel errors. Texts carry the package prefix and never key material.
var (
	// ErrMalformedKey: the key text is not 64 hex characters.
	ErrMalformedKey = errors.New("crypto: malformed key")
	// ErrUnknownKey: data was sealed under a key id the keyring lacks.
	ErrUnknownKey = errors.New("crypto: unknown key")
	// ErrWrongKey: the key given is not the one the data dir was sealed with.
	ErrWrongKey = errors.New("crypto: wrong key")
	// ErrKeyRequired: sealed data exists but encryption is off (no key given).
	ErrKeyRequired = errors.New("crypto: encryption key required")
	// ErrOpen: authentication failed (tampered, moved or wrong-key data).
	ErrOpen = errors.New("crypto: message authentication failed")
	// ErrMalformedBlob: a sealed blob's header is short or unknown.
	ErrMalformedBlob = errors.New("crypto: malformed sealed blob")
)

// KeyID names a master key without revealing it. 0 means "not encrypted".
type KeyID uint64

// String renders the id as 16 lower-case hex digits, as used in logs and
// error texts.
func (id KeyID) String() string {
	const digits = "0000000000000000"
	s := strconv.FormatUint(uint64(id), 16)
	return digits[len(s):] + s
}

// Key is a 32-byte master key. Its String and Format methods print only the
// key id, so a Key passed to a logger or fmt by mistake leaks nothing.
type Key struct {
	secret [KeySize]byte
	id     KeyID
}

const keyIDLabel = "flymq key id v1"

// ParseKey parses 64 hex characters (surrounding whitespace, such as the
// newline `openssl rand -hex 32` leaves, is ignored). The error never
// repeats the input.
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	if len(s) != 2*KeySize {
		return nil, fmt.Errorf("%w: want %d hex characters, got %d",
			ErrMalformedKey, 2*KeySize, len(s))
	}
	var k Key
	if _, err := hex.Decode(k.secret[:], []byte(s)); err != nil {
		// hex's own error names the offending byte: do not wrap it.
		return nil, fmt.Errorf("%w: not hexadecimal", ErrMalformedKey)
	}
	k.id = deriveKeyID(k.secret[:])
	return &k, nil
}

// GenerateKeyHex returns a fresh random key as 64 hex characters.
func GenerateKeyHex() (string, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("crypto: generate key: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// deriveKeyID is one-way: knowing an id tells nothing about the key.
func deriveKeyID(secret []byte) KeyID {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyIDLabel))
	id := KeyID(binary.BigEndian.Uint64(m.Sum(nil)))
	if id == 0 {
		// 0 is reserved for "not encrypted"; a 2^-64 event, but a key must
		// never be mistaken for no key.
		id = 1
	}
	return id
}

// ID returns the key's id.
func (k *Key) ID() KeyID { return k.id }

// String prints the key id only.
func (k *Key) String() string { return "crypto.Key(" + k.id.String() + ")" }

// GoString prints the key id only, also for %#v.
func (k *Key) GoString() string { return k.String() }

// Format makes every fmt verb print the key id only.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

func (k *Key) mac(label string) []byte {
	m := hmac.New(sha256.New, k.secret[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}
