package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrCrashed is returned by every handle opened before the last Crash.
var ErrCrashed = errors.New("vfs: file system crashed")

// CrashFS is an in-memory FS that models power loss: Crash keeps only what
// was made durable, i.e. file contents as of their last Sync and directory
// entries as of their directory's last SyncDir. Directories themselves are
// durable once created (a simplification; storage fsyncs its parent dirs
// only through MkdirAll callers). Handles opened before a Crash fail with
// ErrCrashed, as the process that held them is gone.
type CrashFS struct {
	mu   sync.Mutex
	gen  int
	dirs map[string]*memDir
}

type memDir struct {
	entries map[string]*inode
	synced  map[string]*inode
}

type inode struct {
	data   []byte
	synced []byte
}

// NewCrashFS returns an empty CrashFS.
func NewCrashFS() *CrashFS {
	return &CrashFS{dirs: map[string]*memDir{"/": newMemDir()}}
}

func newMemDir() *memDir {
	return &memDir{entries: map[string]*inode{}, synced: map[string]*inode{}}
}

// Crash drops everything not durable and invalidates open handles.
func (c *CrashFS) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, d := range c.dirs {
		d.entries = make(map[string]*inode, len(d.synced))
		for name, ino := range d.synced {
			d.entries[name] = ino
		}
		for _, ino := range d.entries {
			ino.data = append([]byte(nil), ino.synced...)
		}
	}
}

func split(name string) (dir, base string) {
	name = filepath.Clean(name)
	return filepath.Dir(name), filepath.Base(name)
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// OpenFile supports O_CREATE, O_EXCL and O_TRUNC; writes go through WriteAt.
func (c *CrashFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dn, base := split(name)
	d, ok := c.dirs[dn]
	if !ok {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	ino, ok := d.entries[base]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		ino = &inode{}
		d.entries[base] = ino
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = ino.data[:0]
	}
	return &memFile{fs: c, ino: ino, gen: c.gen, name: name}, nil
}

// Remove unlinks a file (durable after SyncDir) or an empty directory.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	name = filepath.Clean(name)
	if d, ok := c.dirs[name]; ok {
		if len(d.entries) > 0 {
			return pathErr("remove", name, errors.New("directory not empty"))
		}
		delete(c.dirs, name)
		return nil
	}
	dn, base := split(name)
	d, ok := c.dirs[dn]
	if !ok || d.entries[base] == nil {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	delete(d.entries, base)
	return nil
}

// RemoveAll removes a directory tree, durably (like a synced rm -r).
func (c *CrashFS) RemoveAll(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	name = filepath.Clean(name)
	for dn := range c.dirs {
		if dn == name || strings.HasPrefix(dn, name+"/") {
			delete(c.dirs, dn)
		}
	}
	if d, ok := c.dirs[filepath.Dir(name)]; ok {
		delete(d.entries, filepath.Base(name))
		delete(d.synced, filepath.Base(name))
	}
	return nil
}

// Rename moves a file entry (durable after SyncDir of both dirs).
func (c *CrashFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	od, ob := split(oldpath)
	nd, nb := split(newpath)
	o, ok1 := c.dirs[od]
	n, ok2 := c.dirs[nd]
	if !ok1 || !ok2 || o.entries[ob] == nil {
		return pathErr("rename", oldpath, fs.ErrNotExist)
	}
	n.entries[nb] = o.entries[ob]
	delete(o.entries, ob)
	return nil
}

// ReadDir lists files and subdirectories, sorted.
func (c *CrashFS) ReadDir(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dir = filepath.Clean(dir)
	d, ok := c.dirs[dir]
	if !ok {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	var names []string
	for n := range d.entries {
		names = append(names, n)
	}
	for dn := range c.dirs {
		if dn != dir && filepath.Dir(dn) == dir {
			names = append(names, filepath.Base(dn))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll creates dir and its parents.
func (c *CrashFS) MkdirAll(dir string, _ os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, ok := c.dirs[d]; !ok {
			c.dirs[d] = newMemDir()
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// SyncDir makes the directory's current entries durable.
func (c *CrashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[filepath.Clean(dir)]
	if !ok {
		return pathErr("fsync", dir, fs.ErrNotExist)
	}
	d.synced = make(map[string]*inode, len(d.entries))
	for n, ino := range d.entries {
		d.synced[n] = ino
	}
	return nil
}

type memFile struct {
	fs     *CrashFS
	ino    *inode
	gen    int
	name   string
	closed bool
}

func (f *memFile) check(op string) error {
	if f.closed {
		return pathErr(op, f.name, fs.ErrClosed)
	}
	if f.gen != f.fs.gen {
		return pathErr(op, f.name, ErrCrashed)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(f.ino.data)) {
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[off:], p)
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("fsync"); err != nil {
		return err
	}
	f.ino.synced = append(f.ino.synced[:0], f.ino.data...)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, fmt.Errorf("negative size"))
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}
