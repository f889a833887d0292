// Package migrate moves an old FlyMQ server's data dir into ours: it reads
// the old plaintext segments (.store/.index), consumer offsets and user
// and ACL files as the protocol notes on the old data dir describe them,
// with every pitfall listed there, and writes them through the broker and
// the auth store, sealed, keeping topics, partitions, offsets, keys,
// values and committed offsets. The old dir is only ever opened
// read-only.
package migrate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Old layout constants (old-data-dir.md).
const (
	oldMarker        = ".encryption_marker"
	oldOffsetsDir    = "__consumer_offsets"
	oldIndexEntry    = 12
	oldIndexPrealloc = 1 << 20
	oldFrameHeader   = 8
)

// notTopics are top-level dirs of the old server that never hold a topic.
var notTopics = map[string]bool{"schemas": true, "raft": true, "cluster": true,
	oldOffsetsDir: true, "audit": true}

// ErrNotOldDir means the source does not look like an old server's dir.
var ErrNotOldDir = errors.New("migrate: not an old FlyMQ data dir")

// LooksOld reports whether dir holds an old FlyMQ server's data, and why
// (a file or directory that gives it away). It only reads.
func LooksOld(dir string) (reason string, old bool) {
	if st, err := os.Stat(filepath.Join(dir, oldMarker)); err == nil && st.Mode().IsRegular() {
		return "it has " + oldMarker, true
	}
	if st, err := os.Stat(filepath.Join(dir, oldOffsetsDir)); err == nil && st.IsDir() {
		return "it has " + oldOffsetsDir + "/", true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range ents {
		if !e.IsDir() || notTopics[e.Name()] {
			continue
		}
		parts, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		for _, p := range parts {
			if !p.IsDir() || !isDigits(p.Name()) {
				continue
			}
			files, _ := os.ReadDir(filepath.Join(dir, e.Name(), p.Name()))
			for _, f := range files {
				if stem, ok := strings.CutSuffix(f.Name(), ".store"); ok && isDigits(stem) {
					return fmt.Sprintf("it has %s/%s/%s", e.Name(), p.Name(), f.Name()), true
				}
			}
		}
	}
	return "", false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Source is an old data dir, read and checked.
type Source struct {
	Dir    string
	Topics []*Topic
	Groups []Group
	// Notes are what an operator should know: torn tails skipped, damaged
	// records, orphan bytes, files not migrated. None of them is fatal.
	Notes []string
	// StoreBytes is the total size of the .store files.
	StoreBytes int64
	// Encrypted: the old server had encryption_enabled; it sealed only its
	// key marker, never a record.
	Encrypted bool
}

// Topic is one old topic.
type Topic struct {
	Name       string
	Partitions []*Partition // index = partition id = dir name
}

// Partition is one old partition: which offsets exist and where.
type Partition struct {
	Topic string
	ID    int32
	Dir   string
	// Next is the offset after the last intact record; offsets 0..Next-1
	// are migrated.
	Next uint64
	// Damaged are offsets below Next whose frame is torn or missing. They
	// become empty placeholder records, so every later offset is kept.
	Damaged []uint64
	// Bytes is the size of the partition's .store files.
	Bytes int64
	segs  []*oldSegment
}

// Group is one old consumer offsets file.
type Group struct {
	File    string
	Topic   string
	Group   string
	Offsets map[int32]uint64
}

// oldSegment is one <base>.store/.index pair with its entries checked.
type oldSegment struct {
	base    uint64
	store   string
	size    int64
	entries []oldEntry // entry i is offset base+i
}

type oldEntry struct {
	pos, len int64
	ok       bool // rel = i and the frame fits exactly
}

// ReadOldDir reads and checks an old data dir without changing anything.
func ReadOldDir(dir string) (*Source, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNotOldDir, dir)
	}
	src := &Source{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, oldMarker)); err == nil {
		src.Encrypted = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, e := range ents {
		switch {
		case e.Name() == "schemas" || e.Name() == "audit":
			if files, _ := os.ReadDir(filepath.Join(dir, e.Name())); len(files) > 0 {
				src.Notes = append(src.Notes, fmt.Sprintf("%s/ (%d files) is not migrated", e.Name(), len(files)))
			}
			continue
		case !e.IsDir() || notTopics[e.Name()]:
			continue
		}
		t, err := readTopic(src, filepath.Join(dir, e.Name()), e.Name())
		if err != nil {
			return nil, err
		}
		if t != nil {
			src.Topics = append(src.Topics, t)
		}
	}
	if err := readGroups(src); err != nil {
		return nil, err
	}
	return src, nil
}

// readTopic reads a top-level dir; nil if it holds no numeric subdir.
func readTopic(src *Source, dir, name string) (*Topic, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: topic %s: %w", name, err)
	}
	var ids []int
	for _, e := range ents {
		if e.IsDir() && isDigits(e.Name()) {
			id, err := strconv.Atoi(e.Name())
			if err != nil || id > 1<<20 {
				return nil, fmt.Errorf("migrate: topic %s: partition dir %q", name, e.Name())
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sort.Ints(ids)
	for i, id := range ids {
		if id != i {
			return nil, fmt.Errorf("migrate: topic %s: partition dirs are not 0..%d (found %d where %d belongs)",
				name, len(ids)-1, id, i)
		}
	}
	t := &Topic{Name: name}
	if len(ids) >= 11 {
		src.Notes = append(src.Notes, fmt.Sprintf("topic %s has %d partitions: the old server mapped "+
			"partitions to directories in string order after a restart (0, 1, 10, ...), so records "+
			"written after a restart may sit under another partition than clients asked for; records "+
			"are migrated by directory (the partition at creation), committed offsets verbatim",
			name, len(ids)))
	}
	for _, id := range ids {
		p, err := readPartition(src, filepath.Join(dir, strconv.Itoa(id)), name, int32(id))
		if err != nil {
			return nil, err
		}
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}

// readPartition pairs the segment files, checks every index entry against
// its store and works out which offsets exist (pitfalls 1–5).
func readPartition(src *Source, dir, topic string, id int32) (*Partition, error) {
	p := &Partition{Topic: topic, ID: id, Dir: dir}
	where := fmt.Sprintf("%s/%d", topic, id)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: partition %s: %w", where, err)
	}
	bases := map[uint64]bool{}
	for _, e := range ents {
		stem, ok := strings.CutSuffix(e.Name(), ".store")
		if !ok || !isDigits(stem) {
			continue
		}
		base, err := strconv.ParseUint(stem, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migrate: partition %s: segment %q: %w", where, e.Name(), err)
		}
		bases[base] = true
	}
	sorted := make([]uint64, 0, len(bases))
	for b := range bases {
		sorted = append(sorted, b)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, base := range sorted {
		s, err := readSegment(src, dir, where, base)
		if err != nil {
			return nil, err
		}
		p.Bytes += s.size
		p.segs = append(p.segs, s)
	}
	src.StoreBytes += p.Bytes

	// Lay the segments end to end. A gap between them (entries lost to a
	// crash at the end of a segment) is damage like a bad frame.
	var damaged []uint64
	next := uint64(0)
	lastGood := int64(-1)
	for _, s := range p.segs {
		if s.base < next {
			return nil, fmt.Errorf("migrate: partition %s: segment %d overlaps the one before it "+
				"(which ends at offset %d); cannot tell which records are real", where, s.base, next)
		}
		for o := next; o < s.base; o++ {
			damaged = append(damaged, o)
		}
		for i, e := range s.entries {
			off := s.base + uint64(i)
			if e.ok {
				lastGood = int64(off)
			} else {
				damaged = append(damaged, off)
			}
		}
		next = s.base + uint64(len(s.entries))
	}
	p.Next = uint64(lastGood + 1)
	var torn []uint64
	for _, o := range damaged {
		if o < p.Next {
			p.Damaged = append(p.Damaged, o)
		} else {
			torn = append(torn, o)
		}
	}
	if len(torn) > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("partition %s: torn tail skipped: offsets %s "+
			"were never completely written", where, ranges(torn)))
	}
	if len(p.Damaged) > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("partition %s: damaged records at offsets %s "+
			"(torn by a crash, later records written behind them) are migrated as empty records "+
			"so that every later offset stays the same", where, ranges(p.Damaged)))
	}
	return p, nil
}

// readSegment reads one segment's index and checks each entry.
func readSegment(src *Source, dir, where string, base uint64) (*oldSegment, error) {
	name := strconv.FormatUint(base, 10)
	s := &oldSegment{base: base, store: filepath.Join(dir, name+".store")}
	st, err := os.Stat(s.store)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	s.size = st.Size()
	idx, err := os.ReadFile(filepath.Join(dir, name+".index"))
	if errors.Is(err, os.ErrNotExist) {
		if s.size > 0 {
			src.Notes = append(src.Notes, fmt.Sprintf("partition %s: segment %d has no index: "+
				"its %d bytes were never acknowledged and are skipped", where, base, s.size))
		}
		return s, nil // a store with no index has no entries
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	count := len(idx) / oldIndexEntry
	if !(len(idx) < oldIndexPrealloc && len(idx)%oldIndexEntry == 0) {
		// Preallocated (running or crashed): entries end at the first
		// all-zero slot after entry 0, whose (0, 0) is all zero itself.
		for i := 1; i < count; i++ {
			if isZero(idx[i*oldIndexEntry : (i+1)*oldIndexEntry]) {
				count = i
				break
			}
		}
	}
	type raw struct {
		rel uint32
		pos uint64
	}
	ents := make([]raw, count)
	for i := range ents {
		b := idx[i*oldIndexEntry:]
		ents[i] = raw{binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:])}
	}
	// Entries whose frame never reached the store (buffered bytes lost
	// while the mapped index survived) are dropped, as upstream does.
	dropped := 0
	for len(ents) > 0 && ents[len(ents)-1].pos >= uint64(s.size) {
		ents = ents[:len(ents)-1]
		dropped++
	}
	if dropped > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("partition %s: segment %d: %d index entries point "+
			"past the end of the store (lost in a crash) and are dropped", where, base, dropped))
	}
	f, err := os.Open(s.store)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer f.Close()
	var end int64 = -1
	for i, e := range ents {
		oe := oldEntry{pos: int64(e.pos)}
		var lb [oldFrameHeader]byte
		if e.rel == uint32(i) && int64(e.pos)+oldFrameHeader <= s.size {
			if _, err := f.ReadAt(lb[:], int64(e.pos)); err != nil {
				return nil, fmt.Errorf("migrate: read %s: %w", s.store, err)
			}
			n := binary.BigEndian.Uint64(lb[:])
			stop := uint64(s.size)
			if i+1 < len(ents) {
				stop = ents[i+1].pos
			}
			fe := e.pos + oldFrameHeader + n
			exact := fe == stop || (i+1 == len(ents) && fe <= stop)
			if n <= uint64(s.size) && fe >= e.pos && exact {
				oe.len, oe.ok = int64(n), true
				end = int64(fe)
			}
		}
		s.entries = append(s.entries, oe)
	}
	if end >= 0 && end < s.size {
		src.Notes = append(src.Notes, fmt.Sprintf("partition %s: segment %d: %d bytes after the last "+
			"indexed record were never acknowledged and are skipped", where, base, s.size-end))
	}
	return s, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ranges renders sorted offsets as "3, 5-9".
func ranges(offs []uint64) string {
	var sb strings.Builder
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&sb, "%d", offs[i])
		} else {
			fmt.Fprintf(&sb, "%d-%d", offs[i], offs[j])
		}
		i = j + 1
	}
	return sb.String()
}

// Records calls fn for every offset 0..Next-1 in order: an intact record
// with its key (nil when unkeyed) and value, or damaged=true with no data.
// The slices are valid until fn returns.
func (p *Partition) Records(fn func(offset uint64, key, value []byte, damaged bool) error) error {
	next := uint64(0)
	for _, s := range p.segs {
		if next >= p.Next {
			break
		}
		for ; next < s.base && next < p.Next; next++ {
			if err := fn(next, nil, nil, true); err != nil {
				return err
			}
		}
		if err := s.records(p.Next, fn); err != nil {
			return err
		}
		next = min(p.Next, s.base+uint64(len(s.entries)))
	}
	return nil
}

func (s *oldSegment) records(limit uint64, fn func(uint64, []byte, []byte, bool) error) error {
	f, err := os.Open(s.store)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer f.Close()
	w := &window{f: f}
	for i, e := range s.entries {
		off := s.base + uint64(i)
		if off >= limit {
			return nil
		}
		if !e.ok {
			if err := fn(off, nil, nil, true); err != nil {
				return err
			}
			continue
		}
		payload, err := w.slice(e.pos+oldFrameHeader, e.len)
		if err != nil {
			return fmt.Errorf("migrate: read %s at %d: %w", s.store, e.pos, err)
		}
		key, value := splitPayload(payload)
		if err := fn(off, key, value, false); err != nil {
			return err
		}
	}
	return nil
}

// splitPayload decodes u32 keylen | key | u32 vallen | value. Like
// upstream, a payload shorter than 8 bytes or whose lengths do not add up
// is an unkeyed value as a whole.
func splitPayload(b []byte) (key, value []byte) {
	if len(b) < 8 {
		return nil, b
	}
	kl := uint64(binary.BigEndian.Uint32(b))
	if 4+kl+4 > uint64(len(b)) {
		return nil, b
	}
	vl := uint64(binary.BigEndian.Uint32(b[4+kl:]))
	if 4+kl+4+vl != uint64(len(b)) {
		return nil, b
	}
	if kl > 0 {
		key = b[4 : 4+kl]
	}
	return key, b[8+kl:]
}

// window reads a file in large chunks; records are mostly back to back.
type window struct {
	f     *os.File
	start int64
	buf   []byte
}

const windowSize = 1 << 20

func (w *window) slice(pos, n int64) ([]byte, error) {
	if pos >= w.start && pos+n <= w.start+int64(len(w.buf)) {
		return w.buf[pos-w.start : pos-w.start+n], nil
	}
	size := max(n, windowSize)
	if int64(cap(w.buf)) < size {
		w.buf = make([]byte, size)
	}
	w.buf = w.buf[:size]
	m, err := w.f.ReadAt(w.buf, pos)
	if err != nil && !(errors.Is(err, io.EOF) && int64(m) >= n) {
		return nil, err
	}
	w.start, w.buf = pos, w.buf[:m]
	return w.buf[:n], nil
}

// oldGroupFile is the JSON of __consumer_offsets/<topic>_<group>.json.
type oldGroupFile struct {
	GroupID string            `json:"group_id"`
	Topic   string            `json:"topic"`
	Offsets map[string]uint64 `json:"offsets"`
}

// readGroups reads the consumer offsets. Files that fail to parse are
// skipped with a note, as upstream skips them; the fields are trusted,
// not the file name ('_' may occur in topic and group).
func readGroups(src *Source) error {
	dir := filepath.Join(src.Dir, oldOffsetsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var g oldGroupFile
		if err := json.Unmarshal(data, &g); err != nil || g.GroupID == "" || g.Topic == "" {
			src.Notes = append(src.Notes, fmt.Sprintf("%s/%s does not parse as consumer offsets "+
				"and is skipped, as the old server skipped it", oldOffsetsDir, e.Name()))
			continue
		}
		grp := Group{File: e.Name(), Topic: g.Topic, Group: g.GroupID, Offsets: map[int32]uint64{}}
		bad := false
		for k, v := range g.Offsets {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || p < 0 {
				bad = true
				break
			}
			grp.Offsets[int32(p)] = v
		}
		if bad {
			src.Notes = append(src.Notes, fmt.Sprintf("%s/%s has a partition that is not a number "+
				"and is skipped", oldOffsetsDir, e.Name()))
			continue
		}
		src.Groups = append(src.Groups, grp)
	}
	return nil
}
