package crypto

import (
	"path/filepath"
)

// VerifyDataDir runs the checks of CheckDataDir without writing anything:
// tools that only look at a data dir (flymq keys status) must not create
// or update KEYCHECK. A dir without KEYCHECK passes.
func VerifyDataDir(dataDir string, r *Keyring) error {
	kc, err := readKeycheck(filepath.Join(dataDir, KeycheckFile))
	if err != nil {
		return err
	}
	return verifyKeycheck(kc, r)
}

// KeycheckIDs returns the key ids KEYCHECK records: the active one (the
// key that sealed the newest data) and every id ever used, retired ones
// included. A dir without KEYCHECK returns 0 and nil.
func KeycheckIDs(dataDir string) (active KeyID, ids []KeyID, err error) {
	kc, err := readKeycheck(filepath.Join(dataDir, KeycheckFile))
	if err != nil || kc == nil || len(kc.Keys) == 0 {
		return 0, nil, err
	}
	if active, err = parseKeyID(kc.Active); err != nil {
		return 0, nil, err
	}
	for _, e := range kc.Keys {
		id, err := parseKeyID(e.ID)
		if err != nil {
			return 0, nil, err
		}
		ids = append(ids, id)
	}
	return active, ids, nil
}
