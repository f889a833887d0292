package broker

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzDecodeGroupRecord(f *testing.F) {
	for _, r := range []groupRecord{
		{op: opCommit, seq: 1, topic: "t", group: "g", partition: 3, offset: 9},
		{op: opCreate, seq: 2, topic: "", group: "g"},
		{op: opDelete, seq: 1 << 60, topic: "a/b", group: "\xff"},
	} {
		f.Add(r.appendTo(nil))
	}
	f.Add([]byte{1, 9, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeGroupRecord(b)
		if err != nil {
			return
		}
		if again := r.appendTo(nil); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x != %x", again, b)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(7, groupState{
		{"t", "g"}: {0: 1, 5: 1 << 40},
		{"", "x"}:  {},
	}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, st, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		// Decoding is canonical up to ordering: re-encoding decodes equal.
		seq2, st2, err := decodeSnapshot(encodeSnapshot(seq, st))
		if err != nil || seq2 != seq || len(st2) != len(st) {
			t.Fatalf("re-decode: %v", err)
		}
		for k, offs := range st {
			if len(st2[k]) != len(offs) {
				t.Fatalf("group %v differs", k)
			}
		}
	})
}

func FuzzScanFrames(f *testing.F) {
	img := appendFrame(nil, []byte("first blob"))
	img = appendFrame(img, []byte("second"))
	f.Add(img)
	f.Add(img[:len(img)-3])
	f.Add(append(img, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scanFrames(b)
		if err != nil {
			return
		}
		if s.good < 0 || s.good > int64(len(b)) {
			t.Fatalf("good %d of %d", s.good, len(b))
		}
		if !s.torn && s.good != int64(len(b)) {
			t.Fatalf("not torn but %d of %d bytes used", s.good, len(b))
		}
		var again []byte
		for _, blob := range s.blobs {
			again = appendFrame(again, blob)
		}
		if !bytes.Equal(again, b[:s.good]) {
			t.Fatal("frames do not re-encode to the good prefix")
		}
	})
}

func FuzzDecodeTopicMeta(f *testing.F) {
	good, _ := encodeTopicMeta(topicMeta{Version: 1, Name: "a/b", Partitions: 3, CreatedMs: 1})
	f.Add(good)
	f.Add([]byte(`{"version":1,"name":"..","partitions":1}`))
	f.Add([]byte(`{"version":1,"name":"x","partitions":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeTopicMeta(b)
		if err != nil {
			return
		}
		if ValidateTopicName(m.Name) != nil || m.Partitions < 1 {
			t.Fatalf("accepted bad metadata %+v", m)
		}
	})
}

func FuzzValidateTopicName(f *testing.F) {
	for _, s := range []string{"orders", "a/b", "..", "a//b", "caf\u00e9", "cafe\u0301", "a\\b", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateTopicName(name) != nil {
			return
		}
		d := readableDirName(name)
		if strings.ContainsAny(d, "/\\\x00") || d == "." || d == ".." || len(d) > 200 ||
			!strings.HasPrefix(d, dirPrefix) {
			t.Fatalf("dir name %q for %q", d, name)
		}
	})
}
