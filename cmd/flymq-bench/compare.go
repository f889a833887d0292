package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// cmpWorkload is one row of the workload table.
type cmpWorkload struct {
	ID       string
	Label    string
	Size     int
	Conns    int
	Inflight int
	Acks     string
	Secure   bool // TLS + auth
}

// compareWorkloads is the table (#7), in the order it lists them.
var compareWorkloads = []cmpWorkload{
	{ID: "100b", Label: "100 B, 8 x 32", Size: 100, Conns: 8, Inflight: 32, Acks: "leader"},
	{ID: "1k", Label: "1 KiB, 8 x 32", Size: 1024, Conns: 8, Inflight: 32, Acks: "leader"},
	{ID: "1k-8x1", Label: "1 KiB, 8 x 1", Size: 1024, Conns: 8, Inflight: 1, Acks: "leader"},
	{ID: "1k-1x1", Label: "1 KiB, 1 x 1", Size: 1024, Conns: 1, Inflight: 1, Acks: "leader"},
	{ID: "1k-all", Label: "1 KiB, 8 x 32, acks=all", Size: 1024, Conns: 8, Inflight: 32, Acks: "all"},
	{ID: "64k", Label: "64 KiB, 1 x 32", Size: 64 << 10, Conns: 1, Inflight: 32, Acks: "leader"},
	{ID: "1k-secure", Label: "1 KiB, 8 x 32, TLS + auth + encryption", Size: 1024, Conns: 8, Inflight: 32, Acks: "leader", Secure: true},
}

type compareOptions struct {
	FlymqBin     string
	Repeats      int
	Duration     time.Duration
	Partitions   int
	SegmentBytes int64
	TmpDir       string
	Workloads    []string
	Targets      []string
	IdleConns    int
	Out          string
}

func newCompareCmd() *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the issue's workload table for flymq and nats, interleaved, and print medians and ratios",
		Long: `Runs every workload of the performance issue's table for flymq and for
NATS JetStream (AES at rest), interleaved, --repeats times, each run with a
fresh server in its own process (flymq-bench run --spawn ... --json), then
prints the medians and the ratios of the issue's Targets table as markdown.
With --idle-conns N (default 1000) it also measures the spawned flymq
broker's resident size with N idle connections.

Exit status 1 if any run failed or any message failed verification.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCompare(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.FlymqBin, "flymq-bin", "", "broker binary (go build -o /tmp/flymq ./cmd/flymq)")
	f.IntVar(&o.Repeats, "repeats", 3, "runs per workload and target (median reported)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "produce duration of each run")
	f.IntVar(&o.Partitions, "partitions", 1, "partitions per topic (nats: subjects of one stream)")
	f.Int64Var(&o.SegmentBytes, "segment-bytes", 64<<20, "segment_bytes of the spawned flymq broker")
	f.StringVar(&o.TmpDir, "tmpdir", "", "parent of the runs' temp dirs")
	ids := make([]string, len(compareWorkloads))
	for i, w := range compareWorkloads {
		ids[i] = w.ID
	}
	f.StringSliceVar(&o.Workloads, "workloads", ids, "workload ids to run")
	f.StringSliceVar(&o.Targets, "targets", []string{"flymq", "nats"}, "targets to run")
	f.IntVar(&o.IdleConns, "idle-conns", 1000, "idle connections for the flymq RSS row (0 = skip)")
	f.StringVar(&o.Out, "out", "", "append every run's JSON line to this file")
	return cmd
}

// cmpRun is one finished (or failed) run.
type cmpRun struct {
	workload, target string
	res              *Result
	err              string
}

func runCompare(ctx context.Context, o compareOptions, stdout, stderr io.Writer) error {
	if o.Repeats < 1 {
		return fmt.Errorf("%w: --repeats must be at least 1", ErrUsage)
	}
	wantFlymq := slices.Contains(o.Targets, "flymq")
	if wantFlymq && o.FlymqBin == "" {
		return fmt.Errorf("%w: compare needs --flymq-bin", ErrUsage)
	}
	var sel []cmpWorkload
	for _, id := range o.Workloads {
		i := slices.IndexFunc(compareWorkloads, func(w cmpWorkload) bool { return w.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: unknown workload %q", ErrUsage, id)
		}
		sel = append(sel, compareWorkloads[i])
	}
	for _, t := range o.Targets {
		if t != "flymq" && t != "nats" {
			return fmt.Errorf("%w: unknown target %q", ErrUsage, t)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own executable: %w", err)
	}
	var out io.Writer
	if o.Out != "" {
		f, err := os.OpenFile(o.Out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		out = f
	}

	var runs []cmpRun
	record := func(r cmpRun, line []byte) {
		runs = append(runs, r)
		if out != nil && line != nil {
			_, _ = out.Write(append(bytes.TrimSpace(line), '\n'))
		}
	}
	for rep := range o.Repeats {
		for _, w := range sel {
			targets := slices.Clone(o.Targets)
			if rep%2 == 1 {
				slices.Reverse(targets) // alternate who goes first
			}
			for _, t := range targets {
				args := []string{"run", "--target", t, "--spawn", "--json",
					"--size", strconv.Itoa(w.Size), "--conns", strconv.Itoa(w.Conns),
					"--inflight", strconv.Itoa(w.Inflight), "--acks", w.Acks,
					"--duration", o.Duration.String(), "--partitions", strconv.Itoa(o.Partitions),
					"--encryption", "on"}
				if t == "flymq" {
					args = append(args, "--flymq-bin", o.FlymqBin, "--segment-bytes", strconv.FormatInt(o.SegmentBytes, 10))
				}
				if w.Secure {
					args = append(args, "--tls", "--auth")
				}
				if o.TmpDir != "" {
					args = append(args, "--tmpdir", o.TmpDir)
				}
				r, line := runChild(ctx, exe, args, stderr)
				r.workload, r.target = w.ID, t
				fmt.Fprintf(stderr, "[%d/%d] %-9s %-5s %s\n", rep+1, o.Repeats, w.ID, t, r.summary())
				record(r, line)
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
			}
		}
		if wantFlymq && o.IdleConns > 0 {
			args := []string{"run", "--target", "flymq", "--spawn", "--json", "--flymq-bin", o.FlymqBin,
				"--count", "20000", "--size", "1024", "--conns", "8", "--inflight", "32", "--no-limits",
				"--idle-conns", strconv.Itoa(o.IdleConns)}
			if o.TmpDir != "" {
				args = append(args, "--tmpdir", o.TmpDir)
			}
			r, line := runChild(ctx, exe, args, stderr)
			r.workload, r.target = "idle", "flymq"
			fmt.Fprintf(stderr, "[%d/%d] idle      flymq %s\n", rep+1, o.Repeats, r.summary())
			record(r, line)
		}
	}
	writeCompareReport(stdout, o, sel, runs)
	for _, r := range runs {
		if r.err != "" {
			return errors.New("some runs failed (see the table)")
		}
	}
	return nil
}

// runChild runs one `flymq-bench run ... --json` and parses its last line.
func runChild(ctx context.Context, exe string, args []string, stderr io.Writer) (cmpRun, []byte) {
	cmd := exec.CommandContext(ctx, exe, args...)
	var buf, errBuf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = io.MultiWriter(stderr, &errBuf)
	runErr := cmd.Run()
	var last []byte
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			last = slices.Clone(l)
		}
	}
	var r cmpRun
	if len(last) > 0 {
		var res Result
		if err := json.Unmarshal(last, &res); err == nil {
			r.res = &res
		}
	}
	switch {
	case runErr != nil && r.res != nil && r.res.Error != "":
		r.err = r.res.Error
	case runErr != nil:
		r.err = childError(errBuf.String(), runErr)
	case r.res == nil:
		r.err = "no JSON result"
	case !r.res.Verified:
		r.err = "not verified"
	}
	return r, last
}

// childError is the child's own error line ("flymq-bench: ..."), without
// the broker log tail that may follow it, or the exit status.
func childError(stderr string, runErr error) string {
	for _, line := range strings.Split(stderr, "\n") {
		if msg, ok := strings.CutPrefix(line, "flymq-bench: "); ok {
			return msg
		}
	}
	return runErr.Error()
}

func (r cmpRun) summary() string {
	if r.err != "" {
		return "FAILED: " + r.err
	}
	s := r.res
	if s.IdleConns > 0 {
		return fmt.Sprintf("%d idle conns: RSS %.1f MiB", s.IdleConns, float64(s.RSSIdle)/mib)
	}
	return fmt.Sprintf("%9.0f msgs/s %7.1f MiB/s  p50 %6.0f us  p99 %7.0f us  fetch %9.0f msgs/s  verified",
		s.MsgsPerSec, s.MBPerSec, s.P50us, s.P99us, s.FetchMsgsPerSec)
}

// median of the figure f over the successful runs of (workload, target);
// ok is false when there is none.
func median(runs []cmpRun, workload, target string, f func(*Result) float64) (float64, bool) {
	var xs []float64
	for _, r := range runs {
		if r.workload == workload && r.target == target && r.err == "" {
			xs = append(xs, f(r.res))
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2], true
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2, true
}

func failures(runs []cmpRun, workload, target string) int {
	n := 0
	for _, r := range runs {
		if r.workload == workload && r.target == target && r.err != "" {
			n++
		}
	}
	return n
}

func fmtNum(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	switch {
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func writeCompareReport(w io.Writer, o compareOptions, sel []cmpWorkload, runs []cmpRun) {
	get := func(wl, t string, f func(*Result) float64) (float64, bool) { return median(runs, wl, t, f) }
	msgs := func(r *Result) float64 { return r.MsgsPerSec }

	fmt.Fprintf(w, "## flymq-bench compare: medians of %d run(s), %s produce each, %d partition(s), fresh server per run\n\n",
		o.Repeats, o.Duration, o.Partitions)
	fmt.Fprintln(w, "| workload | target | msgs/s | MiB/s | p50 µs | p99 µs | p99.9 µs | fetch msgs/s | fetch MiB/s | failed runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, wl := range sel {
		for _, t := range o.Targets {
			row := []string{wl.Label, t}
			for _, f := range []func(*Result) float64{
				msgs, func(r *Result) float64 { return r.MBPerSec },
				func(r *Result) float64 { return r.P50us }, func(r *Result) float64 { return r.P99us },
				func(r *Result) float64 { return r.P999us }, func(r *Result) float64 { return r.FetchMsgsPerSec },
				func(r *Result) float64 { return r.FetchMBPerSec },
			} {
				row = append(row, fmtNum(get(wl.ID, t, f)))
			}
			row = append(row, strconv.Itoa(failures(runs, wl.ID, t)))
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}

	// Machine limits, over every successful run that measured them.
	var fsync, loop []float64
	for _, r := range runs {
		if r.err == "" && r.res.AESSealPerSec > 0 {
			fsync = append(fsync, r.res.FsyncPerSec)
			loop = append(loop, r.res.LoopbackP50us)
		}
	}
	if len(fsync) > 0 {
		med := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
		fmt.Fprintf(w, "\nMachine (medians over the runs): fsync %s /s, loopback round trip p50 %.1f µs. AES-256-GCM seal per core:",
			fmtNum(med(fsync), true), med(loop))
		bySize := map[int][]float64{}
		for _, r := range runs {
			if r.err == "" && r.res.AESSealPerSec > 0 {
				bySize[r.res.Workload.Size] = append(bySize[r.res.Workload.Size], r.res.AESSealPerSec)
			}
		}
		sizes := slices.Sorted(maps.Keys(bySize))
		for i, size := range sizes {
			sep := ","
			if i == len(sizes)-1 {
				sep = "."
			}
			fmt.Fprintf(w, " %d B %.2f M/s%s", size, med(bySize[size])/1e6, sep)
		}
		fmt.Fprintln(w)
	}

	// The Targets table.
	type row struct{ workload, flymq, peer, ratio, target, met string }
	var rows []row
	check := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	ratioRow := func(label, wl string, f func(*Result) float64, unit string, goal float64) {
		a, okA := get(wl, "flymq", f)
		b, okB := get(wl, "nats", f)
		r := row{workload: label, flymq: fmtNum(a, okA) + unit, peer: fmtNum(b, okB) + unit, target: fmt.Sprintf("≥ %.2g × NATS", goal), ratio: "—", met: "—"}
		if okA && okB && b > 0 {
			r.ratio = fmt.Sprintf("%.2f ×", a/b)
			r.met = check(a/b >= goal)
		}
		rows = append(rows, r)
	}
	has := func(id string) bool { return slices.ContainsFunc(sel, func(w cmpWorkload) bool { return w.ID == id }) }
	if has("100b") {
		ratioRow("100 B, 8 x 32, encryption on (msgs/s)", "100b", msgs, "", 3.5)
	}
	if has("1k") {
		ratioRow("1 KiB, 8 x 32, encryption on (msgs/s)", "1k", msgs, "", 2.6)
		p99, ok := get("1k", "flymq", func(r *Result) float64 { return r.P99us })
		np99, nok := get("1k", "nats", func(r *Result) float64 { return r.P99us })
		r := row{workload: "1 KiB, 8 x 32: flymq p99", flymq: fmtNum(p99/1e3, ok) + " ms", peer: fmtNum(np99/1e3, nok) + " ms", ratio: "—", target: "≤ 5 ms", met: "—"}
		if ok {
			r.met = check(p99 <= 5000)
		}
		rows = append(rows, r)
	}
	if has("1k-8x1") {
		ratioRow("1 KiB, 8 x 1 (msgs/s)", "1k-8x1", msgs, "", 2.7)
	}
	if has("1k-1x1") {
		p50, ok := get("1k-1x1", "flymq", func(r *Result) float64 { return r.P50us })
		np50, nok := get("1k-1x1", "nats", func(r *Result) float64 { return r.P50us })
		loopP, lok := get("1k-1x1", "flymq", func(r *Result) float64 { return r.LoopbackP50us })
		r := row{workload: "1 KiB, 1 x 1: p50 vs loopback round trip", flymq: fmtNum(p50, ok) + " µs", peer: fmtNum(np50, nok) + " µs",
			target: fmt.Sprintf("≤ 3.5 × loopback (%s µs)", fmtNum(loopP, lok)), ratio: "—", met: "—"}
		if ok && lok && loopP > 0 {
			r.ratio = fmt.Sprintf("%.2f × loopback", p50/loopP)
			r.met = check(p50/loopP <= 3.5)
		}
		rows = append(rows, r)
	}
	if has("1k-all") {
		ratioRow("1 KiB, 8 x 32, acks=all vs NATS sync always (msgs/s)", "1k-all", msgs, "", 15)
		all, ok := get("1k-all", "flymq", msgs)
		leader, lok := get("1k", "flymq", msgs)
		r := row{workload: "1 KiB, 8 x 32: acks=all vs our leader", flymq: fmtNum(all, ok), peer: "leader " + fmtNum(leader, lok), ratio: "—", target: "≥ 0.5 × leader", met: "—"}
		if ok && lok && leader > 0 {
			r.ratio = fmt.Sprintf("%.2f ×", all/leader)
			r.met = check(all/leader >= 0.5)
		}
		rows = append(rows, r)
	}
	fetch := func(r *Result) float64 { return r.FetchMsgsPerSec }
	if has("100b") {
		ratioRow("fetch, 100 B (msgs/s)", "100b", fetch, "", 7)
	}
	if has("1k") {
		ratioRow("fetch, 1 KiB (msgs/s)", "1k", fetch, "", 7)
	}
	if has("64k") {
		ratioRow("64 KiB, 1 x 32 (MiB/s)", "64k", func(r *Result) float64 { return r.MBPerSec }, "", 2.2)
	}
	if has("1k-secure") {
		sec, ok := get("1k-secure", "flymq", msgs)
		plain, pok := get("1k", "flymq", msgs)
		nsec, nok := get("1k-secure", "nats", msgs)
		r := row{workload: "TLS + auth + encryption, 1 KiB, 8 x 32 vs without", flymq: fmtNum(sec, ok), peer: fmtNum(nsec, nok), ratio: "—", target: "≥ 0.85 × our plain run", met: "—"}
		if ok && pok && plain > 0 {
			r.ratio = fmt.Sprintf("%.2f ×", sec/plain)
			r.met = check(sec/plain >= 0.85)
		}
		rows = append(rows, r)
	}
	if o.IdleConns > 0 && slices.Contains(o.Targets, "flymq") {
		rss, ok := get("idle", "flymq", func(r *Result) float64 { return float64(r.RSSIdle) / mib })
		r := row{workload: fmt.Sprintf("%d idle connections: broker RSS", o.IdleConns), flymq: fmtNum(rss, ok) + " MiB", peer: "—", ratio: "—", target: "≤ 64 MiB", met: "—"}
		if ok {
			r.met = check(rss <= 64)
		}
		rows = append(rows, r)
	}
	fmt.Fprintln(w, "\n### Targets (issue #7)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload | flymq | NATS JetStream (AES) | ratio | target | met |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.workload, r.flymq, r.peer, r.ratio, r.target, r.met)
	}
	var failed []string
	for _, r := range runs {
		if r.err != "" {
			failed = append(failed, fmt.Sprintf("- %s %s: %s", r.workload, r.target, r.err))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "\nFailed runs:")
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
	}
}
