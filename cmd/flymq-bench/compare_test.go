package main

import (
	"bytes"
	"strings"
	"testing"
)

func fakeResult(size int, msgs, p50, p99, fetch, loop, rss float64) *Result {
	return &Result{
		Workload: WorkloadInfo{Size: size}, MsgsPerSec: msgs, MBPerSec: msgs * float64(size) / mib,
		P50us: p50, P99us: p99, P999us: p99, FetchMsgsPerSec: fetch, Verified: true,
		AESSealPerSec: 3e6, FsyncPerSec: 2000, LoopbackP50us: loop, RSSIdle: int64(rss * mib),
	}
}

func TestMedianSkipsFailedRuns(t *testing.T) {
	runs := []cmpRun{
		{workload: "1k", target: "flymq", res: fakeResult(1024, 100, 0, 0, 0, 0, 0)},
		{workload: "1k", target: "flymq", res: fakeResult(1024, 300, 0, 0, 0, 0, 0)},
		{workload: "1k", target: "flymq", res: fakeResult(1024, 200, 0, 0, 0, 0, 0)},
		{workload: "1k", target: "flymq", err: "boom"},
		{workload: "1k", target: "nats", res: fakeResult(1024, 50, 0, 0, 0, 0, 0)},
		{workload: "1k", target: "nats", res: fakeResult(1024, 70, 0, 0, 0, 0, 0)},
	}
	msgs := func(r *Result) float64 { return r.MsgsPerSec }
	if v, ok := median(runs, "1k", "flymq", msgs); !ok || v != 200 {
		t.Errorf("flymq median %v %v, want 200", v, ok)
	}
	if v, ok := median(runs, "1k", "nats", msgs); !ok || v != 60 {
		t.Errorf("nats median %v %v, want 60", v, ok)
	}
	if _, ok := median(runs, "64k", "nats", msgs); ok {
		t.Error("median of no runs reported")
	}
	if n := failures(runs, "1k", "flymq"); n != 1 {
		t.Errorf("failures %d, want 1", n)
	}
}

func TestCompareReportRatios(t *testing.T) {
	runs := []cmpRun{
		{workload: "100b", target: "flymq", res: fakeResult(100, 400_000, 500, 2000, 1_000_000, 10, 0)},
		{workload: "100b", target: "nats", res: fakeResult(100, 100_000, 900, 9000, 100_000, 10, 0)},
		{workload: "1k", target: "flymq", res: fakeResult(1024, 200_000, 700, 6000, 700_000, 10, 0)},
		{workload: "1k", target: "nats", res: fakeResult(1024, 100_000, 900, 9000, 140_000, 10, 0)},
		{workload: "1k-1x1", target: "flymq", res: fakeResult(1024, 20_000, 30, 60, 0, 10, 0)},
		{workload: "1k-all", target: "flymq", res: fakeResult(1024, 120_000, 700, 3000, 0, 10, 0)},
		{workload: "1k-all", target: "nats", res: fakeResult(1024, 4_000, 700, 3000, 0, 10, 0)},
		{workload: "1k-secure", target: "flymq", res: fakeResult(1024, 150_000, 700, 3000, 0, 10, 0)},
		{workload: "idle", target: "flymq", res: fakeResult(1024, 1, 0, 0, 0, 0, 40)},
	}
	var sel []cmpWorkload
	for _, w := range compareWorkloads {
		if w.ID != "1k-8x1" && w.ID != "64k" {
			sel = append(sel, w)
		}
	}
	var out bytes.Buffer
	writeCompareReport(&out, compareOptions{Repeats: 1, Targets: []string{"flymq", "nats"}, IdleConns: 1000, Partitions: 1}, sel, runs)
	got := out.String()
	for _, want := range []string{
		"| 100 B, 8 x 32, encryption on (msgs/s) | 400,000 | 100,000 | 4.00 × | ≥ 3.5 × NATS | yes |",
		"| 1 KiB, 8 x 32, encryption on (msgs/s) | 200,000 | 100,000 | 2.00 × | ≥ 2.6 × NATS | **no** |",
		"| 1 KiB, 8 x 32: flymq p99 | 6.00 ms | 9.00 ms | — | ≤ 5 ms | **no** |",
		"| 1 KiB, 1 x 1: p50 vs loopback round trip | 30.0 µs | — µs | 3.00 × loopback | ≤ 3.5 × loopback (10.0 µs) | yes |",
		"| 1 KiB, 8 x 32, acks=all vs NATS sync always (msgs/s) | 120,000 | 4,000 | 30.00 × | ≥ 15 × NATS | yes |",
		"| 1 KiB, 8 x 32: acks=all vs our leader | 120,000 | leader 200,000 | 0.60 × | ≥ 0.5 × leader | yes |",
		"| fetch, 100 B (msgs/s) | 1,000,000 | 100,000 | 10.00 × | ≥ 7 × NATS | yes |",
		"| fetch, 1 KiB (msgs/s) | 700,000 | 140,000 | 5.00 × | ≥ 7 × NATS | **no** |",
		"| TLS + auth + encryption, 1 KiB, 8 x 32 vs without | 150,000 | — | 0.75 × | ≥ 0.85 × our plain run | **no** |",
		"| 1000 idle connections: broker RSS | 40.0 MiB | — | — | ≤ 64 MiB | yes |",
		"fsync 2,000 /s, loopback round trip p50 10.0 µs. AES-256-GCM seal per core: 100 B 3.00 M/s, 1024 B 3.00 M/s.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q\n%s", want, got)
		}
	}
}

func TestChildError(t *testing.T) {
	stderr := "some progress\nflymq-bench: broker x: exited before listening\nbroker output (tail):\n{...}\n"
	if got := childError(stderr, nil); got != "broker x: exited before listening" {
		t.Errorf("childError = %q", got)
	}
}
