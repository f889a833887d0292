package main

import (
	"errors"
	"strings"
	"testing"
)

func TestValuesDeterministicAndVerified(t *testing.T) {
	for _, size := range []int{16, 17, 100, 1024, 65536} {
		v, err := NewValues(size)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := NewValues(size) // a second generator must produce the same bytes
		a := v.Append(nil, 3, 77)
		b := make([]byte, size)
		w.Fill(b, 3, 77)
		if string(a) != string(b) {
			t.Fatalf("size %d: two generators disagree", size)
		}
		if err := v.Verify(a, 3, 77); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if c, s, err := v.Identify(a); err != nil || c != 3 || s != 77 {
			t.Fatalf("size %d: Identify = %d %d %v", size, c, s, err)
		}
		if size > 16 && string(v.Append(nil, 3, 78)[16:]) == string(a[16:]) && string(v.Append(nil, 4, 77)[16:]) == string(a[16:]) {
			t.Fatalf("size %d: neighbouring values have the same body", size)
		}
	}
}

func TestValuesDetectCorruption(t *testing.T) {
	v, err := NewValues(1024)
	if err != nil {
		t.Fatal(err)
	}
	good := v.Append(nil, 1, 5)
	for _, pos := range []int{0, 5, 13, 16, 500, 1023} {
		bad := append([]byte(nil), good...)
		bad[pos] ^= 0x40
		if err := v.Verify(bad, 1, 5); err == nil {
			t.Errorf("flipped byte %d not detected", pos)
		}
	}
	if err := v.Verify(good[:1000], 1, 5); !errors.Is(err, ErrValueSize) {
		t.Errorf("short value: %v, want ErrValueSize", err)
	}
	if err := v.Verify(good, 1, 6); !errors.Is(err, ErrValueHeader) {
		t.Errorf("wrong seq: %v, want ErrValueHeader", err)
	}
	if _, err := NewValues(15); err == nil {
		t.Error("size 15 accepted")
	}
}

func TestLedgerCheck(t *testing.T) {
	v, _ := NewValues(64)
	l := NewLedger(v, 2)
	l.Locs[0] = []Loc{MakeLoc(0, 0), MakeLoc(1, 0)}
	l.Locs[1] = []Loc{MakeLoc(0, 1)}
	l.PrepareVerify()
	lo, hi, count := l.Ranges(2)
	if lo[0] != 0 || hi[0] != 1 || count[0] != 2 || lo[1] != 0 || hi[1] != 0 || count[1] != 1 {
		t.Fatalf("ranges lo %v hi %v count %v", lo, hi, count)
	}
	if err := l.Check(MakeLoc(0, 0), v.Append(nil, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(MakeLoc(0, 0), v.Append(nil, 0, 0)); err == nil || !strings.Contains(err.Error(), "read twice") {
		t.Errorf("duplicate: %v", err)
	}
	if err := l.Check(MakeLoc(0, 1), v.Append(nil, 0, 1)); err == nil || !strings.Contains(err.Error(), "acknowledged at partition 1 offset 0") {
		t.Errorf("misplaced: %v", err)
	}
	if err := l.Check(MakeLoc(0, 1), v.Append(nil, 1, 9)); !errors.Is(err, ErrValueHeader) {
		t.Errorf("never acknowledged: %v", err)
	}
	bad := v.Append(nil, 1, 0)
	bad[40] ^= 1
	if err := l.Check(MakeLoc(0, 1), bad); !errors.Is(err, ErrValueBody) {
		t.Errorf("corrupt body: %v", err)
	}
	if got := l.Missing(); got != 2 {
		t.Errorf("missing %d, want 2", got)
	}
	if got := l.Acked(); got != 3 {
		t.Errorf("acked %d, want 3", got)
	}
	loc := MakeLoc(65535, 1<<48-1)
	if loc.Partition() != 65535 || loc.Offset() != 1<<48-1 {
		t.Errorf("loc round trip: %d %d", loc.Partition(), loc.Offset())
	}
}

// FuzzIdentify feeds arbitrary bytes to the value decoder: it must never
// panic, and anything it accepts must re-verify only if it is exactly the
// generated value.
func FuzzIdentify(f *testing.F) {
	v, _ := NewValues(32)
	f.Add(v.Append(nil, 0, 0))
	f.Add(v.Append(nil, 7, 1<<40))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		conn, seq, err := v.Identify(b)
		if err != nil {
			return
		}
		want := v.Append(nil, conn, seq)
		if verr := v.Verify(b, conn, seq); (verr == nil) != (string(want) == string(b)) {
			t.Fatalf("Verify = %v for a value that equal=%v", verr, string(want) == string(b))
		}
	})
}
