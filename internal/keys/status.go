package keys

import (
	"fmt"
	"sort"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

// Usage is what one key id seals in a data dir.
type Usage struct {
	ID crypto.KeyID `json:"-"`
	// InRing: the keyring given holds this key; Active: it seals new data.
	InRing bool `json:"in_ring"`
	Active bool `json:"active"`
	// Segments and SegmentBytes count partition segments (<base>.log).
	Segments     int   `json:"segments"`
	SegmentBytes int64 `json:"segment_bytes"`
	// Stores and StoreBytes count sealed store files (topic.json,
	// committed offsets, users, ACLs, ...) and leftover temporary files.
	Stores     int   `json:"stores"`
	StoreBytes int64 `json:"store_bytes"`
}

// Used reports whether any file is sealed under the key.
func (u *Usage) Used() bool { return u.Segments > 0 || u.Stores > 0 }

// Status is the answer of `flymq keys status`.
type Status struct {
	DataDir string `json:"data_dir"`
	// BrokerRunning: some process holds the data dir's lock, so the
	// numbers may change while they are read.
	BrokerRunning bool `json:"broker_running"`
	// Active is the ring's active key, 0 without a keyring.
	Active crypto.KeyID `json:"-"`
	// Keys lists the ring's keys (active first), then ids used on disk
	// but missing from the ring, then 0 if unsealed data exists.
	Keys []Usage `json:"-"`
	// Missing are key ids that seal data but are not in the ring: the
	// broker refuses to start until they are given.
	Missing []crypto.KeyID `json:"-"`
	// Retired are ids KEYCHECK remembers that seal nothing any more.
	Retired []crypto.KeyID `json:"-"`
	// KeycheckErr is set when the ring does not match KEYCHECK (a wrong
	// key, or the key that sealed the newest data is absent).
	KeycheckErr error     `json:"-"`
	Problems    []Problem `json:"-"`
}

// GetStatus scans dataDir and accounts every sealed file to its key id.
// It writes nothing; ring may be nil (no key given).
func GetStatus(dataDir string, ring *crypto.Keyring) (*Status, error) {
	inv, err := Scan(dataDir)
	if err != nil {
		return nil, err
	}
	st := &Status{DataDir: dataDir, Active: ring.ActiveID(), Problems: inv.Problems}
	if st.BrokerRunning, err = storage.DirLocked(dataDir); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	usage := map[crypto.KeyID]*Usage{}
	get := func(id crypto.KeyID) *Usage {
		u := usage[id]
		if u == nil {
			u = &Usage{ID: id}
			usage[id] = u
		}
		return u
	}
	for _, id := range ring.IDs() {
		u := get(id)
		u.InRing, u.Active = true, id == ring.ActiveID()
	}
	for _, f := range inv.Files {
		for id, n := range f.Keys {
			u := get(id)
			if f.Kind == KindSegment {
				u.Segments++
				u.SegmentBytes += n
			} else {
				u.Stores++
				u.StoreBytes += n
			}
		}
	}
	for _, id := range ring.IDs() {
		st.Keys = append(st.Keys, *usage[id])
	}
	var extra []crypto.KeyID
	for id, u := range usage {
		if !u.InRing && id != 0 {
			extra = append(extra, id)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i] < extra[j] })
	for _, id := range extra {
		st.Keys = append(st.Keys, *usage[id])
		st.Missing = append(st.Missing, id)
	}
	if u := usage[0]; u != nil && u.Used() {
		st.Keys = append(st.Keys, *u)
	}
	_, known, err := crypto.KeycheckIDs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	for _, id := range known {
		if u := usage[id]; (u == nil || !u.Used()) && !inRing(ring, id) {
			st.Retired = append(st.Retired, id)
		}
	}
	st.KeycheckErr = crypto.VerifyDataDir(dataDir, ring)
	return st, nil
}

func inRing(r *crypto.Keyring, id crypto.KeyID) bool {
	_, err := r.Lookup(id)
	return err == nil
}
