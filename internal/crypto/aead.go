package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

const (
	// NonceSize is the GCM nonce size: 96 bits, chosen at random per record.
	NonceSize = 12
	// TagSize is the GCM authentication tag size.
	TagSize = 16
	// SaltSize is the size of a segment's or blob's random salt.
	SaltSize = 32

	segmentKeyInfo = "flymq segment data key v1"
	blobKeyInfo    = "flymq blob key v1"
)

// deriveAEAD returns AES-256-GCM under HKDF-SHA256(master, salt, info).
func deriveAEAD(k *Key, salt []byte, info string) (cipher.AEAD, error) {
	dk, err := hkdf.Key(sha256.New, k.secret[:], salt, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("crypto: derive data key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("crypto: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("crypto: new gcm: %w", err)
	}
	return aead, nil
}

// SegmentCipher seals and opens the records of one segment under the data
// key HKDF-SHA256(master, segment salt). With key id 0 it passes data
// through unchanged (encryption off, same frame format). It is safe for
// concurrent use.
type SegmentCipher struct {
	id   KeyID
	aead cipher.AEAD // nil = pass-through
}

// NewSegmentCipher derives the data key of a segment sealed with key id
// under salt. Id 0 returns a pass-through cipher (whatever the keyring); a
// non-zero id the keyring lacks fails with a *KeyError.
func NewSegmentCipher(r *Keyring, id KeyID, salt []byte) (*SegmentCipher, error) {
	if id == 0 {
		return &SegmentCipher{}, nil
	}
	k, err := r.Lookup(id)
	if err != nil {
		return nil, err
	}
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("crypto: segment salt is %d bytes, want %d", len(salt), SaltSize)
	}
	aead, err := deriveAEAD(k, salt, segmentKeyInfo)
	if err != nil {
		return nil, err
	}
	return &SegmentCipher{id: id, aead: aead}, nil
}

// KeyID returns the id of the master key, 0 when off.
func (c *SegmentCipher) KeyID() KeyID { return c.id }

// Enabled reports whether records are sealed.
func (c *SegmentCipher) Enabled() bool { return c.aead != nil }

// Overhead is the number of bytes Seal adds: the 16-byte tag, or 0 when off.
func (c *SegmentCipher) Overhead() int {
	if c.aead == nil {
		return 0
	}
	return TagSize
}

// Seal appends the sealed plaintext to dst. Use plaintext[:0] as dst to
// seal in place. nonce must be NonceSize random bytes (ignored when off).
func (c *SegmentCipher) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if c.aead == nil {
		return append(dst, plaintext...)
	}
	return c.aead.Seal(dst, nonce, plaintext, aad)
}

// Open authenticates and appends the plaintext to dst. Use ciphertext[:0]
// as dst to open in place. A failed tag returns ErrOpen.
func (c *SegmentCipher) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, ciphertext...), nil
	}
	if len(nonce) != NonceSize {
		return nil, ErrOpen
	}
	out, err := c.aead.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
