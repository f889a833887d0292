package crypto

import "fmt"

// Keyring holds the active key, which seals everything new, and previous
// keys, which still open data sealed before a rotation. A nil *Keyring
// means encryption is off; its methods are safe to call.
type Keyring struct {
	active *Key
	keys   map[KeyID]*Key
	ids    []KeyID
}

// NewKeyring returns a keyring with the given active key and previous keys.
// A nil active key returns nil (encryption off). Nil and duplicate previous
// keys are ignored.
func NewKeyring(active *Key, previous ...*Key) *Keyring {
	if active == nil {
		return nil
	}
	r := &Keyring{active: active, keys: make(map[KeyID]*Key, 1+len(previous))}
	for _, k := range append([]*Key{active}, previous...) {
		if k == nil {
			continue
		}
		if _, dup := r.keys[k.id]; dup {
			continue
		}
		r.keys[k.id] = k
		r.ids = append(r.ids, k.id)
	}
	return r
}

// Active returns the key that seals new data, or nil when encryption is off.
func (r *Keyring) Active() *Key {
	if r == nil {
		return nil
	}
	return r.active
}

// ActiveID returns the active key's id, or 0 when encryption is off.
func (r *Keyring) ActiveID() KeyID {
	if r == nil {
		return 0
	}
	return r.active.id
}

// Lookup returns the key with the given id. With encryption off it fails
// with a *KeyError matching both ErrKeyRequired and ErrUnknownKey; an id
// the keyring lacks fails with a *KeyError matching ErrUnknownKey.
func (r *Keyring) Lookup(id KeyID) (*Key, error) {
	if r == nil {
		return nil, &KeyError{ID: id, Err: ErrKeyRequired}
	}
	if k, ok := r.keys[id]; ok {
		return k, nil
	}
	return nil, &KeyError{ID: id, Err: ErrUnknownKey}
}

// IDs returns the ids of all keys, the active one first.
func (r *Keyring) IDs() []KeyID {
	if r == nil {
		return nil
	}
	return append([]KeyID(nil), r.ids...)
}

// KeyError names the key id some data needs. Err is ErrUnknownKey,
// ErrKeyRequired or ErrWrongKey.
type KeyError struct {
	ID  KeyID
	Err error
}

// Error names the sentinel and the key id.
func (e *KeyError) Error() string {
	switch e.Err {
	case ErrKeyRequired:
		return fmt.Sprintf("%v: data is sealed with key id %s", e.Err, e.ID)
	case ErrWrongKey:
		return fmt.Sprintf("%v: data dir expects key id %s", e.Err, e.ID)
	}
	return fmt.Sprintf("%v: key id %s", e.Err, e.ID)
}

// Unwrap returns the sentinel.
func (e *KeyError) Unwrap() error { return e.Err }

// Is lets a missing keyring also count as an unknown key, so callers that
// only check ErrUnknownKey still refuse.
func (e *KeyError) Is(target error) bool {
	return e.Err == ErrKeyRequired && target == ErrUnknownKey
}
