package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// mib is the unit of every *_mb_per_sec figure: MiB (2^20 bytes) of
// message values per second, as the tables use.
const mib = 1 << 20

// WorkloadInfo is the workload part of a result.
type WorkloadInfo struct {
	Name       string  `json:"name"` // e.g. "1024B 8x32"
	Size       int     `json:"size"`
	Conns      int     `json:"conns"`
	Inflight   int     `json:"inflight"`
	Partitions int     `json:"partitions"`
	DurationS  float64 `json:"duration_s,omitempty"`
	Count      int64   `json:"count,omitempty"`
	Topic      string  `json:"topic"`
}

// Amount describes how long the produce phase runs.
func (w WorkloadInfo) Amount() string {
	if w.Count > 0 {
		return fmt.Sprintf("%d messages", w.Count)
	}
	return (time.Duration(w.DurationS * float64(time.Second))).String()
}

// Result is one run's figures; it is printed as text and as one JSON line.
type Result struct {
	Target   string         `json:"target"`
	Workload WorkloadInfo   `json:"workload"`
	Config   map[string]any `json:"config"`
	Server   map[string]any `json:"server"`

	Msgs       int64   `json:"msgs"`
	ElapsedS   float64 `json:"elapsed_s"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`
	MeanUs     float64 `json:"mean_us"`

	FetchMsgs       int64   `json:"fetch_msgs"`
	FetchMsgsPerSec float64 `json:"fetch_msgs_per_sec"`
	FetchMBPerSec   float64 `json:"fetch_mb_per_sec"`
	Verified        bool    `json:"verified"`

	AESSealPerSec float64 `json:"aes_seal_per_sec"`
	FsyncPerSec   float64 `json:"fsync_per_sec"`
	LoopbackP50us float64 `json:"loopback_p50_us"`

	IdleConns     int   `json:"idle_conns,omitempty"`
	RSSBeforeIdle int64 `json:"rss_before_idle_bytes,omitempty"`
	RSSIdle       int64 `json:"rss_idle_bytes,omitempty"`

	Error string `json:"error,omitempty"`
	Time  string `json:"time"`
}

func newResult(o RunOptions) *Result {
	w := o.Workload
	return &Result{
		Target: o.Target,
		Workload: WorkloadInfo{
			Name: workloadName(w), Size: w.Size, Conns: w.Conns, Inflight: w.Inflight,
			Partitions: w.Partitions, DurationS: durationS(w), Count: w.Count, Topic: o.Topic,
		},
		Config: map[string]any{
			"encryption": o.Encryption, "acks": o.Acks, "tls": o.TLS, "auth": o.Auth,
			"spawn": o.Spawn, "fetch_inflight": o.FetchInflight,
			"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0), "cpus": runtime.NumCPU(),
		},
		Time: time.Now().UTC().Format(time.RFC3339),
	}
}

func workloadName(w Workload) string {
	return fmt.Sprintf("%dB %dx%d", w.Size, w.Conns, w.Inflight)
}

func us(ns uint64) float64 { return float64(ns) / 1e3 }

func (r *Result) setLimits(l Limits) {
	r.AESSealPerSec = l.AESSealPerSec
	r.FsyncPerSec = l.FsyncPerSec
	r.LoopbackP50us = float64(l.LoopbackP50) / 1e3
}

func (r *Result) setProduce(p *ProduceResult, size int) {
	r.Msgs = p.Acked
	r.ElapsedS = p.Elapsed.Seconds()
	if s := p.Elapsed.Seconds(); s > 0 {
		r.MsgsPerSec = float64(p.Acked) / s
		r.MBPerSec = float64(p.Acked) * float64(size) / mib / s
	}
	r.P50us = us(p.Hist.Quantile(0.50))
	r.P99us = us(p.Hist.Quantile(0.99))
	r.P999us = us(p.Hist.Quantile(0.999))
	r.MaxUs = us(p.Hist.Max())
	r.MeanUs = p.Hist.Mean() / 1e3
}

func (r *Result) setFetch(f *FetchResult, size int) {
	r.FetchMsgs = f.Messages
	if s := f.Elapsed.Seconds(); s > 0 {
		r.FetchMsgsPerSec = float64(f.Messages) / s
		r.FetchMBPerSec = float64(f.Messages) * float64(size) / mib / s
	}
}

// WriteText prints the human-readable report.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target      %s  (encryption=%v acks=%v tls=%v auth=%v)\n",
		r.Target, r.Config["encryption"], r.Config["acks"], r.Config["tls"], r.Config["auth"])
	fmt.Fprintf(w, "workload    %d B, %d conns x %d in flight, %d partition(s), %s\n",
		r.Workload.Size, r.Workload.Conns, r.Workload.Inflight, r.Workload.Partitions, r.Workload.Amount())
	fmt.Fprintf(w, "produce     %d msgs in %.2fs: %.0f msgs/s, %.1f MiB/s\n", r.Msgs, r.ElapsedS, r.MsgsPerSec, r.MBPerSec)
	fmt.Fprintf(w, "latency     p50 %.0f us  p99 %.0f us  p99.9 %.0f us  max %.0f us  mean %.0f us\n",
		r.P50us, r.P99us, r.P999us, r.MaxUs, r.MeanUs)
	if r.Verified {
		fmt.Fprintf(w, "fetch       %d msgs: %.0f msgs/s, %.1f MiB/s, every byte verified\n",
			r.FetchMsgs, r.FetchMsgsPerSec, r.FetchMBPerSec)
	} else if r.Error != "" {
		fmt.Fprintf(w, "fetch       VERIFICATION FAILED: %s\n", r.Error)
	} else {
		fmt.Fprintf(w, "fetch       skipped (not verified)\n")
	}
	if r.AESSealPerSec > 0 {
		fmt.Fprintf(w, "machine     AES-256-GCM seal %.2f M msgs/s per core at %d B; fsync %.0f /s; loopback RTT p50 %.1f us\n",
			r.AESSealPerSec/1e6, r.Workload.Size, r.FsyncPerSec, r.LoopbackP50us)
	}
	if r.IdleConns > 0 {
		fmt.Fprintf(w, "idle        %d idle connections: broker RSS %.1f MiB (%.1f MiB before)\n",
			r.IdleConns, float64(r.RSSIdle)/mib, float64(r.RSSBeforeIdle)/mib)
	}
}

// WriteJSON prints the result as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("result json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// durationS is the produce duration in seconds, 0 in --count mode.
func durationS(w Workload) float64 {
	if w.Count > 0 {
		return 0
	}
	return w.Duration.Seconds()
}
