package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
)

// progress shows how far a long offline job (re-seal, migrate) has got:
// on a terminal one line rewritten in place at most five times a second,
// otherwise (systemd, CI, a pipe) a log line every ten seconds.
type progress struct {
	what  string
	w     io.Writer // the terminal, nil when not one
	log   *zap.Logger
	start time.Time
	last  time.Time
	every time.Duration
	drawn bool
}

func newProgress(what string, stderr io.Writer, log *zap.Logger) *progress {
	p := &progress{what: what, log: log, start: time.Now(), every: 10 * time.Second}
	if isTerminal(stderr) {
		p.w, p.every = stderr, 200*time.Millisecond
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update reports done of total bytes and the file counts; final forces
// output.
func (p *progress) update(files, totalFiles int, unit string, done, total int64, final bool) {
	now := time.Now()
	if !final && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	left := "?"
	if rate > 0 && total >= done {
		left = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if p.w != nil {
		fmt.Fprintf(p.w, "\r%s: %d/%d %s, %s / %s, %s/s, %s left\033[K",
			p.what, files, totalFiles, unit, humanBytes(done), humanBytes(total), humanBytes(int64(rate)), left)
		p.drawn = true
		if final {
			fmt.Fprintln(p.w)
			p.drawn = false
		}
		return
	}
	p.log.Info(p.what+" progress", zap.Int(unit, files), zap.Int("total-"+unit, totalFiles),
		zap.Int64("bytes", done), zap.Int64("total-bytes", total),
		zap.Int64("bytes-per-second", int64(rate)), zap.String("time-left", left))
}

// humanBytes renders n in binary units: "1.5 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
