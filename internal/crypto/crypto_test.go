package crypto

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	hexA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	hexB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

func mustKey(t testing.TB, s string) *Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	k := mustKey(t, "  "+hexA+"\n")
	if k.ID() == 0 {
		t.Fatal("key id 0 is reserved")
	}
	if k2 := mustKey(t, strings.ToUpper(hexA)); k2.ID() != k.ID() {
		t.Fatal("upper-case hex gives another id")
	}
	if mustKey(t, hexB).ID() == k.ID() {
		t.Fatal("two keys share an id")
	}
	for _, bad := range []string{"", hexA[:63], hexA + "0", "zz" + hexA[2:]} {
		_, err := ParseKey(bad)
		if !errors.Is(err, ErrMalformedKey) {
			t.Fatalf("ParseKey(%d chars) err = %v", len(bad), err)
		}
		if len(bad) > 8 && strings.Contains(err.Error(), bad[2:10]) {
			t.Fatalf("error repeats the input: %v", err)
		}
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := mustKey(t, hexA)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		out := fmt.Sprintf(f, k)
		if strings.Contains(out, "0102030405") || strings.Contains(out, "[0 1 2") {
			t.Fatalf("%s prints the secret: %s", f, out)
		}
		if !strings.Contains(out, k.ID().String()) {
			t.Fatalf("%s = %q, want the key id", f, out)
		}
	}
	if KeyID(0xab).String() != "00000000000000ab" {
		t.Fatalf("KeyID.String = %s", KeyID(0xab))
	}
}

func TestGenerateKeyHex(t *testing.T) {
	a, err := GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKeyHex()
	if len(a) != 64 || a == b {
		t.Fatalf("GenerateKeyHex = %q, %q", a, b)
	}
	mustKey(t, a)
}

func TestKeyring(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	r := NewKeyring(a, b, nil, a)
	if r.Active() != a || len(r.IDs()) != 2 || r.IDs()[0] != a.ID() {
		t.Fatalf("keyring ids = %v", r.IDs())
	}
	if k, err := r.Lookup(b.ID()); err != nil || k != b {
		t.Fatalf("Lookup(b) = %v, %v", k, err)
	}
	_, err := r.Lookup(42)
	var ke *KeyError
	if !errors.Is(err, ErrUnknownKey) || !errors.As(err, &ke) || ke.ID != 42 {
		t.Fatalf("Lookup(42) err = %v", err)
	}
	if !strings.Contains(err.Error(), "000000000000002a") {
		t.Fatalf("error does not name the id: %v", err)
	}
	var none *Keyring
	if NewKeyring(nil) != nil || none.Active() != nil || none.IDs() != nil {
		t.Fatal("nil keyring is not off")
	}
	if _, err := none.Lookup(7); !errors.Is(err, ErrKeyRequired) || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("nil Lookup err = %v", err)
	}
}

func TestSegmentCipher(t *testing.T) {
	a := mustKey(t, hexA)
	r := NewKeyring(a)
	salt := bytes.Repeat([]byte{7}, SaltSize)
	c, err := NewSegmentCipher(r, a.ID(), salt)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, NonceSize)
	nonce[0] = 1
	pt := []byte("hello record")
	buf := append([]byte(nil), pt...)
	ct := c.Seal(buf[:0], nonce, buf, []byte("aad"))
	if c.Overhead() != 16 || len(ct) != len(pt)+16 || bytes.Contains(ct, pt) {
		t.Fatalf("sealed = %x", ct)
	}
	got, err := c.Open(nil, nonce, ct, []byte("aad"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := c.Open(nil, nonce, ct, []byte("aae")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with other aad err = %v", err)
	}
	// Another salt is another data key.
	c2, _ := NewSegmentCipher(r, a.ID(), bytes.Repeat([]byte{8}, SaltSize))
	if _, err := c2.Open(nil, nonce, ct, []byte("aad")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open under other salt err = %v", err)
	}
	off, err := NewSegmentCipher(nil, 0, nil)
	if err != nil || off.Overhead() != 0 || off.Enabled() {
		t.Fatal("id 0 is not pass-through")
	}
	if out := off.Seal(nil, nil, pt, nil); !bytes.Equal(out, pt) {
		t.Fatal("pass-through changed data")
	}
	if _, err := NewSegmentCipher(nil, a.ID(), salt); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("sealed segment without key err = %v", err)
	}
}

func TestBlob(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	r := NewKeyring(a)
	pt := []byte(`{"user":"alice"}`)
	blob, err := SealBlob(r, "users", pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, pt) {
		t.Fatal("blob holds plaintext")
	}
	if id, _ := BlobKeyID(blob); id != a.ID() {
		t.Fatalf("BlobKeyID = %s", id)
	}
	got, err := OpenBlob(NewKeyring(b, a), "users", blob)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("OpenBlob after rotation = %q, %v", got, err)
	}
	if _, err := OpenBlob(r, "acls", blob); !errors.Is(err, ErrOpen) {
		t.Fatalf("other purpose err = %v", err)
	}
	if _, err := OpenBlob(NewKeyring(b), "users", blob); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key err = %v", err)
	}
	if _, err := OpenBlob(nil, "users", blob); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("no key err = %v", err)
	}
	for i := range blob {
		bad := append([]byte(nil), blob...)
		bad[i] ^= 0x10
		if _, err := OpenBlob(r, "users", bad); err == nil {
			t.Fatalf("flipped byte %d opened", i)
		}
	}
	if _, err := OpenBlob(r, "users", blob[:10]); !errors.Is(err, ErrMalformedBlob) {
		t.Fatalf("short blob err = %v", err)
	}
	plain, _ := SealBlob(nil, "users", pt)
	if got, err := OpenBlob(r, "users", plain); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unsealed blob = %q, %v", got, err)
	}
}

func hashDir(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(h, p)
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestCheckDataDir(t *testing.T) {
	dir := t.TempDir()
	a, b := mustKey(t, hexA), mustKey(t, hexB)

	// Encryption off on a new dir writes nothing.
	if err := CheckDataDir(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeycheckFile)); !os.IsNotExist(err) {
		t.Fatalf("KEYCHECK written with encryption off: %v", err)
	}
	if err := CheckDataDir(dir, NewKeyring(a)); err != nil {
		t.Fatal(err)
	}
	before := hashDir(t, dir)
	raw, _ := os.ReadFile(filepath.Join(dir, KeycheckFile))
	if bytes.Contains(raw, []byte(hexA[:16])) {
		t.Fatal("KEYCHECK holds key material")
	}

	err := CheckDataDir(dir, NewKeyring(b))
	var ke *KeyError
	if !errors.Is(err, ErrWrongKey) || !errors.As(err, &ke) || ke.ID != a.ID() ||
		!strings.Contains(err.Error(), a.ID().String()) {
		t.Fatalf("wrong key err = %v", err)
	}
	err = CheckDataDir(dir, nil)
	if !errors.Is(err, ErrKeyRequired) || !strings.Contains(err.Error(), a.ID().String()) {
		t.Fatalf("no key err = %v", err)
	}
	if after := hashDir(t, dir); after != before {
		t.Fatal("a refused check changed the data dir")
	}
	// Same key again: no rewrite.
	if err := CheckDataDir(dir, NewKeyring(a)); err != nil || hashDir(t, dir) != before {
		t.Fatalf("re-check err = %v or rewrote", err)
	}
	// Rotation: b active, a previous.
	if err := CheckDataDir(dir, NewKeyring(b, a)); err != nil {
		t.Fatal(err)
	}
	if err := CheckDataDir(dir, NewKeyring(a)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("old key after rotation err = %v", err)
	}
	if err := CheckDataDir(dir, NewKeyring(b)); err != nil {
		t.Fatalf("new active alone err = %v", err)
	}
	// A forged MAC is refused.
	kc := strings.Replace(string(raw), `"mac": "`, `"mac": "00`, 1)
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, KeycheckFile), []byte(kc), 0o600)
	if err := CheckDataDir(dir2, NewKeyring(a)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("forged mac err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}

func FuzzOpenBlob(f *testing.F) {
	a := mustKey(f, hexA)
	r := NewKeyring(a)
	blob, _ := SealBlob(r, "p", []byte("seed"))
	plain, _ := SealBlob(nil, "p", []byte("seed"))
	f.Add(blob)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := OpenBlob(r, "p", b)
		if err == nil && bytes.Equal(b, blob) && string(pt) != "seed" {
			t.Fatal("wrong plaintext")
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add(hexA)
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if len(s) >= 6 && strings.Contains(err.Error(), s) {
				t.Fatal("error repeats input")
			}
			return
		}
		if k.ID() == 0 {
			t.Fatal("id 0")
		}
	})
}

func BenchmarkSegmentSeal1K(b *testing.B) {
	a := mustKey(b, hexA)
	c, _ := NewSegmentCipher(NewKeyring(a), a.ID(), make([]byte, SaltSize))
	buf := make([]byte, 1024, 1024+TagSize)
	nonce := make([]byte, NonceSize)
	aad := make([]byte, 40)
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		c.Seal(buf[:0], nonce, buf[:1024], aad)
	}
}

func BenchmarkSegmentOpen1K(b *testing.B) {
	a := mustKey(b, hexA)
	c, _ := NewSegmentCipher(NewKeyring(a), a.ID(), make([]byte, SaltSize))
	nonce := make([]byte, NonceSize)
	aad := make([]byte, 40)
	ct := c.Seal(nil, nonce, make([]byte, 1024), aad)
	buf := make([]byte, len(ct))
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		copy(buf, ct)
		if _, err := c.Open(buf[:0], nonce, buf, aad); err != nil {
			b.Fatal(err)
		}
	}
}
