// Package crypto holds flymq's key handling and the authenticated encryption
// used for everything the broker keeps on disk.
//
// Key hierarchy:
//
//	master key (32 bytes, FLYMQ_ENCRYPTION_KEY)
//	  ├─ key id        = first 8 bytes of HMAC-SHA256(key, "flymq key id v1")
//	  ├─ KEYCHECK mac  = HMAC-SHA256(key, "flymq keycheck v1")
//	  ├─ segment key   = HKDF-SHA256(key, segment salt, "flymq segment data key v1")
//	  └─ blob key      = HKDF-SHA256(key, blob salt,    "flymq blob key v1")
//
// Every data key seals at most one segment (or one blob), so the random
// 96-bit GCM nonces stay far below the 2^32 messages-per-key limit however
// long the broker runs, and a leaked data key exposes one segment only.
//
// A nil *Keyring means encryption is off: the same formats are written with
// key id 0 and no tag, so there is one format and one reader.
//
// Nothing in this package logs, and no error text ever contains key
// material, MACs or plaintext.
package crypto
