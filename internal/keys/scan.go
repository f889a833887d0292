// Package keys takes stock of which master keys seal what in a data dir
// and re-seals data written under older keys with the active one, so an
// old key can be dropped after a rotation.
//
// It knows the data dir layout of DESIGN.md §3 (see internal/broker's
// package doc): it reads segment headers and sealed-blob headers, and for
// re-sealing opens them with the purposes their owners export (topic.json,
// committed offsets, delayed messages and transaction intents from
// internal/broker, users and ACLs from internal/auth, schemas from
// internal/schema), so a renamed purpose cannot drift from the owner's.
// Everything here runs offline, with the broker stopped; Reseal holds the
// data dir's lock (storage.LockDir) so that the broker cannot start under
// it, and Scan and GetStatus never write.
package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/schema"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/record"
)

// Layout of the data dir. The owners keep the names private; the tests
// in this package create the files with the real broker and auth store,
// so a drift fails there.
const (
	topicsDir     = "topics"
	topicMetaFile = "topic.json"
	groupsDir     = "groups"
	groupLogFile  = "offsets.log"
	groupSnapFile = "offsets.snap"
	authDir       = "auth"

	// resealSuffix marks a segment being re-sealed. storage removes files
	// ending in ".tmp" from partition dirs when it opens them, and Reseal
	// removes its own leftovers, so a crash mid-copy leaves no trace.
	resealSuffix = ".reseal.tmp"

	blobMagic = "FLYB"
	// blobIDEnd is where the key id ends in a blob header: magic(4),
	// version(1), key id(8).
	blobIDEnd = 13

	// maxGroupFrame bounds a committed-offsets log frame, as the broker does.
	maxGroupFrame = 1 << 20
)

// Kind says what a sealed file is.
type Kind int

const (
	// KindSegment is a partition's <base>.log.
	KindSegment Kind = iota + 1
	// KindStore is a sealed store file: topic.json, committed offsets,
	// users, ACLs, pending delayed messages, transaction commit intents,
	// schemas, or a sealed blob of a kind this package cannot name.
	KindStore
	// KindTemp is a leftover temporary file of an interrupted write; it
	// is not data, but it may hold bytes sealed under an old key.
	KindTemp
)

func (k Kind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindStore:
		return "store"
	case KindTemp:
		return "temp"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// File is one sealed file and the bytes it holds under each key id. A
// segment or a blob has one key id; the committed-offsets log may mix the
// ids of the keys active when each commit was written.
type File struct {
	Path    string // relative to the data dir, with '/' separators
	Kind    Kind
	Size    int64
	Keys    map[crypto.KeyID]int64 // bytes per key id (0 = unsealed)
	Purpose string                 // blob purpose, "" for segments and unknown blobs
	framed  bool                   // a CRC-framed log of blobs (offsets.log)
}

// KeyIDs returns the file's key ids in ascending order.
func (f *File) KeyIDs() []crypto.KeyID {
	ids := make([]crypto.KeyID, 0, len(f.Keys))
	for id := range f.Keys {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Problem is a file that could not be classified or handled.
type Problem struct {
	Path string
	Err  error
}

func (p Problem) String() string { return p.Path + ": " + p.Err.Error() }

// Inventory is every sealed file of a data dir.
type Inventory struct {
	DataDir  string
	Files    []File
	Problems []Problem
}

// Scan walks dataDir and reads the header of every sealed file. It opens
// files read-only and writes nothing. Files it cannot read or make sense
// of are listed as problems, not errors: one bad file must not hide the
// rest of the picture.
func Scan(dataDir string) (*Inventory, error) {
	if _, err := os.Stat(dataDir); err != nil {
		return nil, fmt.Errorf("keys: data dir: %w", err)
	}
	inv := &Inventory{DataDir: dataDir}
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dataDir, path)
		rel = filepath.ToSlash(rel)
		if err != nil {
			inv.Problems = append(inv.Problems, Problem{Path: rel, Err: err})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if rel == "audit" {
				return fs.SkipDir // JSON lines, never sealed
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, perr := classify(path, rel)
		switch {
		case perr != nil:
			inv.Problems = append(inv.Problems, Problem{Path: rel, Err: perr})
		case f != nil:
			inv.Files = append(inv.Files, *f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keys: walk data dir: %w", err)
	}
	return inv, nil
}

// classify returns the sealed file at path, nil if it holds nothing sealed
// (KEYCHECK, the lock, index caches, audit lines).
func classify(path, rel string) (*File, error) {
	name := filepath.Base(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f := &File{Path: rel, Size: st.Size()}
	temp := strings.HasSuffix(name, ".tmp") || strings.Contains(name, ".tmp-")
	if _, ok := storage.ParseSegmentName(name); ok && isPartitionFile(rel) {
		id, err := segmentKeyID(path)
		if err != nil {
			return nil, err
		}
		f.Kind, f.Keys = KindSegment, map[crypto.KeyID]int64{id: f.Size}
		return f, nil
	}
	if rel == groupsDir+"/"+groupLogFile {
		keys, err := groupLogKeys(path)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, nil // empty log: nothing sealed
		}
		f.Kind, f.Keys, f.Purpose, f.framed = KindStore, keys, broker.GroupLogPurpose, true
		return f, nil
	}
	id, isBlob, err := blobKeyID(path)
	if err != nil && temp {
		return nil, nil // a torn temp file: garbage, not data
	}
	if err != nil || !isBlob {
		return nil, err
	}
	f.Keys = map[crypto.KeyID]int64{id: f.Size}
	if temp {
		f.Kind = KindTemp
		return f, nil
	}
	f.Kind, f.Purpose = KindStore, purposeOf(rel)
	return f, nil
}

// isPartitionFile reports whether rel is topics/<dir>/<partition>/<file>.
func isPartitionFile(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 4 && parts[0] == topicsDir && isDigits(parts[2])
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// purposeOf names the purpose a known store file is sealed under, "" if
// the file is a sealed blob of a kind this package does not know.
func purposeOf(rel string) string {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 3 && parts[0] == topicsDir && parts[2] == topicMetaFile:
		return broker.TopicMetaPurpose(parts[1])
	case rel == groupsDir+"/"+groupSnapFile:
		return broker.GroupSnapPurpose
	case rel == authDir+"/users.sealed":
		return auth.UsersPurpose
	case rel == authDir+"/acls.sealed":
		return auth.ACLsPurpose
	case len(parts) == 2 && parts[0] == "delayed" && strings.HasSuffix(parts[1], ".msg"):
		return broker.DelayedPurpose(parts[1])
	case len(parts) == 2 && parts[0] == "txn" && strings.HasSuffix(parts[1], ".intent"):
		return broker.TxnIntentPurpose(parts[1])
	case len(parts) == 2 && parts[0] == "schemas" && strings.HasSuffix(parts[1], ".schema"):
		return schema.BlobPurpose(parts[1])
	}
	return ""
}

// segmentKeyID reads a segment's header.
func segmentKeyID(path string) (crypto.KeyID, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var hb [record.SegmentHeaderSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return 0, fmt.Errorf("segment header: %w", err)
	}
	h, err := record.DecodeSegmentHeader(hb[:])
	if err != nil {
		return 0, fmt.Errorf("segment header: %w", err)
	}
	return crypto.KeyID(h.KeyID), nil
}

// blobKeyID returns the key id of a sealed blob file, and false if the
// file is not a blob at all.
func blobKeyID(path string) (crypto.KeyID, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	var hb [blobIDEnd]byte
	n, err := io.ReadFull(f, hb[:])
	if string(hb[:min(n, 4)]) != blobMagic || n < 4 {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, fmt.Errorf("sealed blob header: %w", err)
	}
	return crypto.KeyID(binary.BigEndian.Uint64(hb[5:blobIDEnd])), true, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTornLog means a framed log ends in an incomplete or damaged frame:
// the broker cuts it at start-up, and until then it is not ours to cut.
var errTornLog = errors.New("log ends in a torn frame; start the broker once so that it recovers the log")

// groupFrames splits the committed-offsets log into its blobs. Any damage
// is errTornLog or corruption: offline tools never repair it themselves.
func groupFrames(img []byte) ([][]byte, error) {
	var blobs [][]byte
	for pos := 0; pos < len(img); {
		rest := img[pos:]
		if len(rest) < 8 {
			return nil, errTornLog
		}
		n := int(binary.BigEndian.Uint32(rest))
		if n == 0 || n > maxGroupFrame || 8+n > len(rest) {
			return nil, fmt.Errorf("%w (position %d)", errTornLog, pos)
		}
		blob := rest[8 : 8+n]
		if crc32.Checksum(blob, castagnoli) != binary.BigEndian.Uint32(rest[4:]) {
			return nil, fmt.Errorf("frame at position %d: checksum mismatch: %w", pos, errTornLog)
		}
		blobs = append(blobs, blob)
		pos += 8 + n
	}
	return blobs, nil
}

func appendGroupFrame(dst, blob []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(blob)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(blob, castagnoli))
	return append(dst, blob...)
}

func groupLogKeys(path string) (map[crypto.KeyID]int64, error) {
	img, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blobs, err := groupFrames(img)
	if err != nil {
		return nil, err
	}
	keys := map[crypto.KeyID]int64{}
	for _, b := range blobs {
		id, err := crypto.BlobKeyID(b)
		if err != nil {
			return nil, err
		}
		keys[id] += int64(8 + len(b))
	}
	return keys, nil
}
