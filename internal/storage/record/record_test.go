package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
)

const testKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func ciphers(t testing.TB) map[string]*crypto.SegmentCipher {
	k, err := crypto.ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	on, err := crypto.NewSegmentCipher(crypto.NewKeyring(k), k.ID(), make([]byte, SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	off, _ := crypto.NewSegmentCipher(nil, 0, nil)
	return map[string]*crypto.SegmentCipher{"encrypted": on, "plain": off}
}

func TestFrameRoundTrip(t *testing.T) {
	for name, c := range ciphers(t) {
		t.Run(name, func(t *testing.T) {
			aad := NewAAD("orders/eu", 3)
			h := Header{Flags: 0x01, Offset: 42, Timestamp: 1700000000000, Expiry: 1800000000000}
			h.Nonce[0] = 9
			var buf []byte
			buf = AppendFrame(buf, c, aad, &h, []byte("k"), []byte("value"), nil)
			buf = AppendFrame(buf, c, aad, &Header{Offset: 43}, nil, nil, []byte("hdr"))
			if len(buf) != FrameSize(1, 5, 0, c.Overhead())+FrameSize(0, 0, 3, c.Overhead()) {
				t.Fatalf("size %d", len(buf))
			}
			if c.Enabled() && bytes.Contains(buf, []byte("value")) {
				t.Fatal("plaintext on disk")
			}
			body, n, err := DecodeFrame(buf)
			if err != nil {
				t.Fatal(err)
			}
			got := ParseHeader(body)
			h.Version = Version
			if got != h {
				t.Fatalf("header %+v, want %+v", got, h)
			}
			p, err := Open(c, aad.Clone(), body)
			if err != nil || string(p.Key) != "k" || string(p.Value) != "value" || p.Headers != nil {
				t.Fatalf("payload %q %q %q, %v", p.Key, p.Value, p.Headers, err)
			}
			body2, _, err := DecodeFrame(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			if body2[1] != FlagHeaders {
				t.Fatalf("flags %x", body2[1])
			}
			p, err = Open(c, aad, body2)
			if err != nil || p.Key != nil || p.Value != nil || string(p.Headers) != "hdr" {
				t.Fatalf("payload2 %q %q %q, %v", p.Key, p.Value, p.Headers, err)
			}
		})
	}
}

func TestFrameBoundToContext(t *testing.T) {
	c := ciphers(t)["encrypted"]
	aad := NewAAD("t", 0)
	frame := AppendFrame(nil, c, aad, &Header{Offset: 5, Timestamp: 1}, []byte("k"), []byte("v"), nil)
	open := func(a *AAD, f []byte) error {
		f = append([]byte(nil), f...)
		body, _, err := DecodeFrame(f)
		if err != nil {
			return err
		}
		_, err = Open(c, a, body)
		return err
	}
	if err := open(aad, frame); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]*AAD{"topic": NewAAD("u", 0), "partition": NewAAD("t", 1)} {
		if err := open(a, frame); !errors.Is(err, crypto.ErrOpen) {
			t.Fatalf("other %s: %v", name, err)
		}
	}
	// Rewrite the offset and fix the CRC: the CRC passes, the tag does not.
	moved := append([]byte(nil), frame...)
	moved[FrameHeaderSize+9] = 6
	fixCRC(moved)
	if err := open(aad, moved); !errors.Is(err, crypto.ErrOpen) {
		t.Fatalf("moved offset: %v", err)
	}
}

func fixCRC(f []byte) {
	body := f[FrameHeaderSize:]
	c := Checksum(body)
	f[4], f[5], f[6], f[7] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

func TestDecodeFrameErrors(t *testing.T) {
	c := ciphers(t)["plain"]
	f := AppendFrame(nil, c, NewAAD("t", 0), &Header{Offset: 1}, []byte("k"), []byte("v"), nil)
	for i := 0; i < len(f); i++ {
		if _, _, err := DecodeFrame(f[:i]); !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	for i := FrameHeaderSize; i < len(f); i++ {
		g := append([]byte(nil), f...)
		g[i] ^= 1
		if _, _, err := DecodeFrame(g); !errors.Is(err, ErrChecksum) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	g := append([]byte(nil), f...)
	g[FrameHeaderSize] = 2
	fixCRC(g)
	if _, _, err := DecodeFrame(g); !errors.Is(err, ErrInvalid) {
		t.Fatalf("version 2: %v", err)
	}
}

func TestSegmentHeader(t *testing.T) {
	h := SegmentHeader{Version: SegmentVersion, KeyID: 0xdeadbeef, BaseOffset: 1000}
	h.Salt[31] = 7
	b := AppendSegmentHeader(nil, &h)
	if len(b) != SegmentHeaderSize {
		t.Fatalf("len %d", len(b))
	}
	got, err := DecodeSegmentHeader(b)
	if err != nil || got != h {
		t.Fatalf("got %+v, %v", got, err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := DecodeSegmentHeader(c); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	if _, err := DecodeSegmentHeader(b[:63]); !errors.Is(err, ErrShort) {
		t.Fatal(err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	cs := ciphers(f)
	aad := NewAAD("t", 0)
	for _, c := range cs {
		f.Add(AppendFrame(nil, c, aad, &Header{Offset: 1}, []byte("k"), []byte("v"), []byte("h")))
	}
	f.Add([]byte{0, 0, 0, 38, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, n, err := DecodeFrame(b)
		if err != nil {
			return
		}
		if n > len(b) || len(body) != n-FrameHeaderSize || PeekSize(b) != n {
			t.Fatalf("n=%d len=%d body=%d", n, len(b), len(body))
		}
		_ = ParseHeader(body)
		for _, c := range cs {
			cp := append([]byte(nil), body...)
			if p, err := Open(c, aad, cp); err == nil {
				if len(p.Key)+len(p.Value)+len(p.Headers) > len(cp) {
					t.Fatal("payload larger than body")
				}
			}
		}
	})
}

func FuzzSegmentHeader(f *testing.F) {
	f.Add(AppendSegmentHeader(nil, &SegmentHeader{KeyID: 1, BaseOffset: 2}))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeSegmentHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendSegmentHeader(nil, &h), b[:SegmentHeaderSize]) {
			t.Fatal("decode/encode mismatch")
		}
	})
}

func BenchmarkAppendFrame1K(b *testing.B) {
	for name, c := range ciphers(b) {
		b.Run(name, func(b *testing.B) {
			aad := NewAAD("bench", 0)
			v := make([]byte, 1024)
			buf := make([]byte, 0, 4096)
			h := Header{Offset: 1}
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				buf = AppendFrame(buf[:0], c, aad, &h, nil, v, nil)
			}
		})
	}
}

func BenchmarkDecodeOpen1K(b *testing.B) {
	for name, c := range ciphers(b) {
		b.Run(name, func(b *testing.B) {
			aad := NewAAD("bench", 0)
			f := AppendFrame(nil, c, aad, &Header{Offset: 1}, nil, make([]byte, 1024), nil)
			buf := make([]byte, len(f))
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				copy(buf, f)
				body, _, err := DecodeFrame(buf)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Open(c, aad, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
