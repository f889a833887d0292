package crypto

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Sealed blob layout (all integers big-endian):
//
//	+-------+-----+--------+---------+----------+---------------------+
//	| "FLYB"| ver | key id | salt    | nonce    | ciphertext + tag    |
//	| 4     | 1   | 8      | 32      | 12       | len(plaintext) + 16 |
//	+-------+-----+--------+---------+----------+---------------------+
//
// The data key is HKDF-SHA256(master, salt, "flymq blob key v1"), fresh per
// blob. The associated data is the 57-byte header followed by the purpose
// string, so a blob cannot be moved to another store (users vs. offsets)
// nor have its header edited. With key id 0 (encryption off) salt and nonce
// are zero and the plaintext follows with no tag.
const (
	blobMagic      = "FLYB"
	blobVersion    = 1
	blobHeaderSize = 4 + 1 + 8 + SaltSize + NonceSize
)

// SealBlob seals plaintext for a small store file. purpose (e.g.
// "topic.json", "groups") is bound as associated data. With a nil keyring
// the blob is written unsealed with key id 0.
func SealBlob(r *Keyring, purpose string, plaintext []byte) ([]byte, error) {
	out := make([]byte, blobHeaderSize, blobHeaderSize+len(plaintext)+TagSize)
	copy(out, blobMagic)
	out[4] = blobVersion
	k := r.Active()
	if k == nil {
		return append(out, plaintext...), nil
	}
	binary.BigEndian.PutUint64(out[5:13], uint64(k.id))
	salt := out[13 : 13+SaltSize]
	nonce := out[13+SaltSize : blobHeaderSize]
	if _, err := rand.Read(out[13:blobHeaderSize]); err != nil {
		return nil, fmt.Errorf("crypto: seal blob: %w", err)
	}
	aead, err := deriveAEAD(k, salt, blobKeyInfo)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, plaintext, blobAAD(out[:blobHeaderSize], purpose)), nil
}

// OpenBlob opens a blob written by SealBlob under the same purpose. An
// unsealed blob (key id 0) is returned as is, so a data dir written with
// encryption off stays readable after it is turned on; callers that must
// refuse that can check BlobKeyID first.
func OpenBlob(r *Keyring, purpose string, blob []byte) ([]byte, error) {
	id, err := BlobKeyID(blob)
	if err != nil {
		return nil, err
	}
	body := blob[blobHeaderSize:]
	if id == 0 {
		return append([]byte(nil), body...), nil
	}
	k, err := r.Lookup(id)
	if err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(k, blob[13:13+SaltSize], blobKeyInfo)
	if err != nil {
		return nil, err
	}
	nonce := blob[13+SaltSize : blobHeaderSize]
	pt, err := aead.Open(nil, nonce, body, blobAAD(blob[:blobHeaderSize], purpose))
	if err != nil {
		return nil, fmt.Errorf("%w: %s blob", ErrOpen, purpose)
	}
	return pt, nil
}

// BlobKeyID returns the id of the key that sealed blob, 0 if unsealed.
func BlobKeyID(blob []byte) (KeyID, error) {
	if len(blob) < blobHeaderSize {
		return 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrMalformedBlob, len(blob), blobHeaderSize)
	}
	if string(blob[:4]) != blobMagic {
		return 0, fmt.Errorf("%w: bad magic", ErrMalformedBlob)
	}
	if blob[4] != blobVersion {
		return 0, fmt.Errorf("%w: unknown version %d", ErrMalformedBlob, blob[4])
	}
	id := KeyID(binary.BigEndian.Uint64(blob[5:13]))
	if id != 0 && len(blob) < blobHeaderSize+TagSize {
		return 0, fmt.Errorf("%w: sealed blob shorter than its tag", ErrMalformedBlob)
	}
	return id, nil
}

func blobAAD(header []byte, purpose string) []byte {
	aad := make([]byte, 0, len(header)+len(purpose))
	return append(append(aad, header...), purpose...)
}
