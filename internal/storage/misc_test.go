package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flymq/flymq/internal/crypto"
)

func TestOffsetForTime(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		p := mustOpen(t, opts(t.TempDir(), r))
		defer p.Close()
		// Timestamps rise by 10 with one out-of-order record at offset 50.
		for i := 0; i < 200; i++ {
			ts := int64(1000 + 10*i)
			if i == 50 {
				ts = 5
			}
			if _, err := p.Append([]Record{{Value: make([]byte, 60), Timestamp: ts}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			ms   int64
			want uint64
		}{{0, 0}, {1000, 0}, {1001, 1}, {1500, 51}, {2990, 199}, {2991, 200}, {1 << 50, 200}} {
			got, err := p.OffsetForTime(tc.ms)
			if err != nil || got != tc.want {
				t.Fatalf("OffsetForTime(%d) = %d, %v; want %d", tc.ms, got, err, tc.want)
			}
		}
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	o := opts(t.TempDir(), ring(t, keyA))
	o.Metrics = m
	p := mustOpen(t, o)
	appendN(t, p, 0, 100)
	checkAll(t, p, 0, 100)
	st := p.Stats()
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch {
			case mt.Counter != nil:
				got[mf.GetName()] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				got[mf.GetName()] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				got[mf.GetName()] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	if got["flymq_storage_records_sealed_total"] != 100 || got["flymq_storage_records_opened_total"] != 100 ||
		got["flymq_storage_segments"] != float64(st.Segments) || got["flymq_storage_bytes"] != float64(st.Bytes) ||
		got["flymq_storage_fsync_duration_seconds"] < 100 {
		t.Fatalf("metrics %v, stats %+v", got, st)
	}
	p.Close()
	if _, err := p.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestParseAcks(t *testing.T) {
	for s, want := range map[string]Acks{"all": AcksAll, "-1": AcksAll, "leader": AcksLeader,
		"": AcksLeader, "1": AcksLeader, "NONE": AcksNone, "0": AcksNone} {
		if got, err := ParseAcks(s); err != nil || got != want {
			t.Fatalf("ParseAcks(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseAcks("most"); err == nil {
		t.Fatal("accepted unknown mode")
	}
}

func TestReservedFlagAndTooLarge(t *testing.T) {
	p := mustOpen(t, opts(t.TempDir(), nil))
	defer p.Close()
	if _, err := p.Append([]Record{{Flags: 0x80}}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatal(err)
	}
	if _, err := p.Append([]Record{{Value: make([]byte, 65<<20)}}); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatal(err)
	}
	if p.NextOffset() != 0 {
		t.Fatal("offset advanced")
	}
}

// TestIdlePartitionIsNotSynced: with acks=leader the background fsync
// follows writes; a partition nobody writes to is never fsynced again, so
// a broker with many idle partitions stays quiet.
func TestIdlePartitionIsNotSynced(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := opts(t.TempDir(), ring(t, keyA))
	o.Metrics = NewMetrics(reg)
	o.Acks = AcksLeader
	o.SyncInterval = time.Millisecond
	p := mustOpen(t, o)
	defer p.Close()
	fsyncs := func() uint64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "flymq_storage_fsync_duration_seconds" {
				return mf.GetMetric()[0].GetHistogram().GetSampleCount()
			}
		}
		return 0
	}
	before := fsyncs()
	appendN(t, p, 0, 3)
	// Let the syncs that follow the writes happen: each write asks for at
	// most one more, one interval later.
	time.Sleep(50 * time.Millisecond)
	after := fsyncs()
	if after == before {
		t.Fatal("the writes were never fsynced")
	}
	time.Sleep(100 * time.Millisecond) // a hundred sync intervals with no write
	if got := fsyncs(); got != after {
		t.Fatalf("idle partition fsynced %d more times", got-after)
	}
}
