package storage

import (
	"testing"

	"github.com/flymq/flymq/internal/crypto"
)

func benchModes(b *testing.B, f func(b *testing.B, r *crypto.Keyring)) {
	b.Run("encrypted", func(b *testing.B) { f(b, ring(b, keyA)) })
	b.Run("plain", func(b *testing.B) { f(b, nil) })
}

// BenchmarkAppend measures 1 KiB appends with 1 and 32 concurrent callers
// in each acks mode; with AcksAll the 32 callers share fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, acks := range []Acks{AcksAll, AcksLeader, AcksNone} {
		for _, par := range []int{1, 32} {
			b.Run(acks.String()+"/conc"+itoa(par), func(b *testing.B) {
				benchModes(b, func(b *testing.B, r *crypto.Keyring) {
					o := opts(b.TempDir(), r)
					o.Acks = acks
					o.SegmentBytes = 64 << 20
					p := mustOpen(b, o)
					defer p.Close()
					recs := []Record{{Key: []byte("key"), Value: make([]byte, 1024)}}
					b.ReportAllocs()
					b.SetBytes(1024)
					b.SetParallelism((par + 1) / 2) // GOMAXPROCS=2 here
					if par == 1 {
						for b.Loop() {
							if _, err := p.Append(recs); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.SetParallelism(par / 2)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := p.Append(recs); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkRead reads 100 messages of 1 KiB per call.
func BenchmarkRead(b *testing.B) {
	benchModes(b, func(b *testing.B, r *crypto.Keyring) {
		o := opts(b.TempDir(), r)
		o.Acks = AcksNone
		o.SegmentBytes = 64 << 20
		p := mustOpen(b, o)
		defer p.Close()
		recs := make([]Record, 100)
		for i := range recs {
			recs[i] = Record{Key: []byte("key"), Value: make([]byte, 1024)}
		}
		for i := 0; i < 50; i++ {
			p.Append(recs)
		}
		b.ReportAllocs()
		b.SetBytes(100 * 1024)
		var off uint64
		for b.Loop() {
			msgs, err := p.Read(off, 100, 1<<20)
			if err != nil || len(msgs) != 100 {
				b.Fatal(len(msgs), err)
			}
			off = (off + 100) % 4900
		}
	})
}

// BenchmarkIndexLookup is the sparse index search inside one segment.
func BenchmarkIndexLookup(b *testing.B) {
	s := &segment{base: 1000}
	for i := 0; i < 100000; i++ {
		s.addIndex(1000+uint64(i), 64+int64(i)*100, int64(i))
	}
	b.ReportAllocs()
	var off uint64 = 1000
	for b.Loop() {
		s.lookup(off)
		off = 1000 + (off*7919)%100000
	}
}
