// Package audit keeps the broker's audit trail: security-relevant events
// (logins, user and ACL changes, topic creation and deletion, denials) as
// JSON lines, never message contents (security-and-advanced.md §7).
//
// Files are <Dir>/audit-YYYY-MM-DD.log (UTC day of the first event, the
// old server's naming) and, when a file reaches MaxFileSize,
// audit-YYYY-MM-DD.N.log with N = 1, 2, … Files whose day is more than
// RetentionDays old are deleted at start and whenever a new file is
// opened. Query reads every file, so old-server audit files placed in Dir
// are queried too.
package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Event types defined upstream (§7.1).
const (
	TypeAuthSuccess    = "auth.success"
	TypeAuthFailure    = "auth.failure"
	TypeAuthLogout     = "auth.logout"
	TypeAccessGranted  = "access.granted"
	TypeAccessDenied   = "access.denied"
	TypeDataProduce    = "data.produce"
	TypeDataConsume    = "data.consume"
	TypeTopicCreate    = "topic.create"
	TypeTopicDelete    = "topic.delete"
	TypeUserCreate     = "user.create"
	TypeUserUpdate     = "user.update"
	TypeUserDelete     = "user.delete"
	TypeUserPassword   = "user.password"
	TypeACLSet         = "acl.set"
	TypeACLDelete      = "acl.delete"
	TypeSchemaRegister = "schema.register"
	TypeSchemaDelete   = "schema.delete"
	TypeGroupCreate    = "group.create"
	TypeGroupDelete    = "group.delete"
	TypeOffsetCommit   = "offset.commit"
	TypeOffsetReset    = "offset.reset"
	TypeTxnBegin       = "txn.begin"
	TypeTxnCommit      = "txn.commit"
	TypeTxnAbort       = "txn.abort"
	TypeSystemStart    = "system.start"
	TypeSystemStop     = "system.stop"
	TypeClusterJoin    = "cluster.join"
	TypeClusterLeave   = "cluster.leave"
	TypeConfigChange   = "config.change"
)

// Results.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultDenied  = "denied"
)

// Query defaults and limits.
const (
	// DefaultLimit is the page size for a limit ≤ 0.
	DefaultLimit = 100
	// MaxExportBytes keeps an export inside one 32 MiB reply frame with
	// room for its format string and length prefix.
	MaxExportBytes = 32<<20 - 1<<16 - 16
)

// ErrExportTooLarge is returned when the matching events do not fit in
// one reply; narrow the query.
var ErrExportTooLarge = errors.New("export exceeds 32 MiB, narrow the query")

// Event is one audit record. The JSON field order is the export order of
// §7.2. Details must never hold passwords, hashes or message bodies.
type Event struct {
	ID        string            `json:"id"`
	Timestamp time.Time         `json:"timestamp"`
	Type      string            `json:"type"`
	User      string            `json:"user"`
	ClientIP  string            `json:"client_ip"`
	Resource  string            `json:"resource"`
	Action    string            `json:"action"`
	Result    string            `json:"result"`
	Details   map[string]string `json:"details"`
	NodeID    string            `json:"node_id"`
}

// Options configures a Log.
type Options struct {
	// Dir holds the audit files (created if missing).
	Dir string
	// MaxFileSize rolls the current file at this many bytes; ≤ 0 means
	// 100 MiB.
	MaxFileSize int64
	// RetentionDays deletes files of older days; 0 keeps everything.
	RetentionDays int
	// NodeID is stamped on events that carry none.
	NodeID string
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Log is the audit trail. It is safe for concurrent use; a nil *Log
// records nothing.
type Log struct {
	opts Options
	log  *zap.Logger
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	day  string // UTC day of the open file
	size int64
}

// Open prepares the audit directory and applies retention.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("audit: no directory")
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 100 << 20
	}
	l := &Log{opts: opts, log: opts.Logger, now: opts.Now}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create dir: %w", err)
	}
	if err := l.applyRetention(l.now()); err != nil {
		return nil, err
	}
	return l, nil
}

// Close closes the current file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Record appends ev, filling in ID (UUID v4), Timestamp and NodeID when
// empty. A write failure is logged, not returned: the operation being
// audited has already happened.
func (l *Log) Record(ev Event) {
	if l == nil {
		return
	}
	if ev.ID == "" {
		ev.ID = newUUID()
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = l.now()
	}
	ev.Timestamp = ev.Timestamp.UTC()
	if ev.NodeID == "" {
		ev.NodeID = l.opts.NodeID
	}
	if ev.Details == nil {
		ev.Details = map[string]string{}
	}
	line, err := json.Marshal(ev)
	if err != nil {
		l.log.Error("audit: encode event", zap.String("type", ev.Type), zap.Error(err))
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writeLocked(line, ev.Timestamp); err != nil {
		l.log.Error("audit: write event", zap.String("type", ev.Type), zap.Error(err))
	}
}

func (l *Log) writeLocked(line []byte, ts time.Time) error {
	day := ts.Format(time.DateOnly)
	if l.f == nil || day != l.day || l.size+int64(len(line)) > l.opts.MaxFileSize && l.size > 0 {
		if err := l.rollLocked(day, int64(len(line))); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	return err
}

// rollLocked opens the first file of day that still has room for need
// more bytes (an empty file always has room, so an oversized event is
// written rather than dropped).
func (l *Log) rollLocked(day string, need int64) error {
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			l.log.Warn("audit: close file", zap.Error(err))
		}
		l.f = nil
	}
	if day != l.day {
		if err := l.applyRetention(l.now()); err != nil {
			l.log.Warn("audit: retention", zap.Error(err))
		}
	}
	for n := 0; ; n++ {
		name := "audit-" + day + ".log"
		if n > 0 {
			name = "audit-" + day + "." + strconv.Itoa(n) + ".log"
		}
		path := filepath.Join(l.opts.Dir, name)
		st, err := os.Stat(path)
		if err == nil && st.Size() > 0 && st.Size()+need > l.opts.MaxFileSize {
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: open %s: %w", name, err)
		}
		st, err = f.Stat()
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("audit: stat %s: %w", name, err)
		}
		l.f, l.day, l.size = f, day, st.Size()
		return nil
	}
}

// fileDay extracts the day of an audit file name, ok false for other
// files.
func fileDay(name string) (time.Time, bool) {
	if !strings.HasPrefix(name, "audit-") || !strings.HasSuffix(name, ".log") ||
		len(name) < len("audit-2006-01-02.log") {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, name[len("audit-"):len("audit-2006-01-02")])
	return d, err == nil
}

func (l *Log) files() ([]string, error) {
	ents, err := os.ReadDir(l.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := fileDay(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// applyRetention deletes files whose day is more than RetentionDays
// before now.
func (l *Log) applyRetention(now time.Time) error {
	if l.opts.RetentionDays <= 0 {
		return nil
	}
	names, err := l.files()
	if err != nil {
		return err
	}
	today, _ := time.Parse(time.DateOnly, now.UTC().Format(time.DateOnly))
	cutoff := today.AddDate(0, 0, -l.opts.RetentionDays)
	for _, name := range names {
		if d, _ := fileDay(name); d.Before(cutoff) {
			if err := os.Remove(filepath.Join(l.opts.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("audit: retention: %w", err)
			}
			l.log.Info("audit: removed expired file", zap.String("file", name))
		}
	}
	return nil
}

// Query selects events (§7.1). Zero times are open bounds.
type Query struct {
	Start, End time.Time
	EventTypes []string // any of, exact
	User       string   // exact
	Resource   string   // substring
	Result     string   // exact
	Search     string   // case-insensitive substring of action, resource or a detail value
	Limit      int      // ≤ 0 means DefaultLimit
	Offset     int      // < 0 means 0
}

// Result is one page of a query, newest first.
type Result struct {
	Events  []Event
	Total   int  // all matches
	HasMore bool // more matches after this page
}

func (q *Query) match(ev *Event) bool {
	if !q.Start.IsZero() && ev.Timestamp.Before(q.Start) || !q.End.IsZero() && ev.Timestamp.After(q.End) {
		return false
	}
	if len(q.EventTypes) > 0 {
		found := false
		for _, t := range q.EventTypes {
			found = found || t == ev.Type
		}
		if !found {
			return false
		}
	}
	if q.User != "" && ev.User != q.User || q.Result != "" && ev.Result != q.Result ||
		q.Resource != "" && !strings.Contains(ev.Resource, q.Resource) {
		return false
	}
	if q.Search == "" {
		return true
	}
	s := strings.ToLower(q.Search)
	if strings.Contains(strings.ToLower(ev.Action), s) || strings.Contains(strings.ToLower(ev.Resource), s) {
		return true
	}
	for _, v := range ev.Details {
		if strings.Contains(strings.ToLower(v), s) {
			return true
		}
	}
	return false
}

// matches returns every matching event, newest first.
func (l *Log) matches(q Query) ([]Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	names, err := l.files()
	if err != nil {
		return nil, err
	}
	var out []Event
	for _, name := range names {
		if err := l.scanFile(filepath.Join(l.opts.Dir, name), &q, &out); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.After(out[j].Timestamp) })
	return out, nil
}

func (l *Log) scanFile(path string, q *Query, out *[]Event) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev Event
		// A torn last line after a crash is skipped, not fatal.
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if q.match(&ev) {
			*out = append(*out, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit: read %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Query returns one page of matching events, newest first.
func (l *Log) Query(q Query) (Result, error) {
	all, err := l.matches(q)
	if err != nil {
		return Result{}, err
	}
	limit, offset := q.Limit, q.Offset
	if limit <= 0 {
		limit = DefaultLimit
	}
	offset = max(offset, 0)
	res := Result{Total: len(all), Events: []Event{}}
	if offset < len(all) {
		end := min(offset+limit, len(all))
		res.Events = all[offset:end]
		res.HasMore = end < len(all)
	}
	return res, nil
}

// Export renders every matching event (limit and offset ignored), newest
// first: "csv" as CSV, any other format as a JSON array with 2-space
// indent, "[]" when nothing matches (§7.2).
func (l *Log) Export(q Query, format string) ([]byte, error) {
	all, err := l.matches(q)
	if err != nil {
		return nil, err
	}
	var out []byte
	if format == "csv" {
		out, err = exportCSV(all)
	} else {
		if all == nil {
			all = []Event{}
		}
		out, err = json.MarshalIndent(all, "", "  ")
	}
	if err != nil {
		return nil, fmt.Errorf("audit: export: %w", err)
	}
	if len(out) > MaxExportBytes {
		return nil, ErrExportTooLarge
	}
	return out, nil
}

func exportCSV(evs []Event) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"ID", "Timestamp", "Type", "User", "ClientIP", "Resource", "Action", "Result", "NodeID", "Details"})
	for _, ev := range evs {
		details := ev.Details
		if details == nil {
			details = map[string]string{}
		}
		d, err := json.Marshal(details)
		if err != nil {
			return nil, err
		}
		_ = w.Write([]string{ev.ID, ev.Timestamp.UTC().Format(time.RFC3339), ev.Type, ev.User, ev.ClientIP,
			ev.Resource, ev.Action, ev.Result, ev.NodeID, string(d)})
		if buf.Len() > MaxExportBytes {
			return nil, ErrExportTooLarge
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
