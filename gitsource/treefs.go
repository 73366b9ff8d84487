package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeFS is a commit's tree read from the cache's object store. Every call
// takes the cache lock, so it stays safe while fetches run; a file's
// contents are read whole when it is opened, so its size is checked
// first (MaxBlobBytes).
type treeFS struct {
	g    *GoGit
	root plumbing.Hash
	// dirs holds the directories lookups decoded ("" is the root), for
	// the repository object they came from: trees are immutable, so
	// reading N files of one directory decodes it once, not N times
	// (go-git's own FindEntry cache skips first-level directories, and
	// the hub reads nodes/ of a 1,000-node fleet every loop).
	dirs   map[string]*object.Tree
	dirsOf *git.Repository
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

// lookup finds name; for "." it returns the root tree. Callers hold g.mu.
func (t *treeFS) lookup(op, name string) (object.TreeEntry, error) {
	if !fs.ValidPath(name) {
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if t.g.repo == nil {
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: errors.New("git cache was reset; fetch again")}
	}
	if name == "." {
		return object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: t.root}, nil
	}
	dir := path.Dir(name)
	if dir == "." {
		dir = ""
	}
	tree, err := t.dirTree(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		t.g.suspect = true
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	e, err := tree.FindEntry(path.Base(name))
	if err != nil {
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		t.g.suspect = true
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if e.Mode == filemode.Submodule {
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return *e, nil
}

// dirTree returns the tree of directory dir ("" the root), decoding each
// directory on the way once. Callers hold g.mu.
func (t *treeFS) dirTree(dir string) (*object.Tree, error) {
	if t.dirsOf != t.g.repo {
		t.dirs, t.dirsOf = map[string]*object.Tree{}, t.g.repo
	}
	if tree, ok := t.dirs[dir]; ok {
		return tree, nil
	}
	h := t.root
	if dir != "" {
		parent := path.Dir(dir)
		if parent == "." {
			parent = ""
		}
		pt, err := t.dirTree(parent)
		if err != nil {
			return nil, err
		}
		e, err := pt.FindEntry(path.Base(dir))
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || (err == nil && e.Mode != filemode.Dir) {
			return nil, fs.ErrNotExist
		}
		if err != nil {
			return nil, err
		}
		h = e.Hash
	}
	tree, err := object.GetTree(t.g.repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	t.dirs[dir] = tree
	return tree, nil
}

func (t *treeFS) Open(name string) (fs.File, error) {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	e, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		entries, err := t.readDirLocked(name, e.Hash)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: fileInfo{name: path.Base(name), mode: fs.ModeDir | 0o755}, entries: entries}, nil
	}
	data, err := t.readBlobLocked(name, e.Hash)
	if err != nil {
		return nil, err
	}
	return &file{info: fileInfo{name: path.Base(name), mode: goMode(e.Mode), size: int64(len(data))}, r: bytes.NewReader(data)}, nil
}

func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	e, err := t.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return t.readBlobLocked(name, e.Hash)
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	e, err := t.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.Mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return t.readDirLocked(name, e.Hash)
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	e, err := t.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return t.infoLocked(name, e)
}

func (t *treeFS) infoLocked(name string, e object.TreeEntry) (fs.FileInfo, error) {
	if e.Mode == filemode.Dir {
		return fileInfo{name: path.Base(name), mode: fs.ModeDir | 0o755}, nil
	}
	obj, err := t.g.repo.Storer.EncodedObject(plumbing.BlobObject, e.Hash)
	if err != nil {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fmt.Errorf("read blob %s: %w", e.Hash, err)}
	}
	return fileInfo{name: path.Base(name), mode: goMode(e.Mode), size: obj.Size()}, nil
}

func (t *treeFS) readBlobLocked(name string, h plumbing.Hash) ([]byte, error) {
	obj, err := t.g.repo.Storer.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	// The size comes from the object's header: an oversize blob is
	// refused before a byte of it is inflated.
	if size := obj.Size(); size > t.g.maxBlob {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("blob %s is %d bytes, over the limit of %d: %w", h, size, t.g.maxBlob, ErrBlobTooLarge)}
	}
	r, err := obj.Reader()
	if err != nil {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, t.g.maxBlob+1))
	if err != nil {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	if int64(len(data)) > t.g.maxBlob {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("blob %s is larger than its header says: %w", h, ErrBlobTooLarge)}
	}
	return data, nil
}

func (t *treeFS) readDirLocked(name string, h plumbing.Hash) ([]fs.DirEntry, error) {
	tree, err := object.GetTree(t.g.repo.Storer, h)
	if err != nil {
		t.g.suspect = true
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("read tree %s: %w", h, err)}
	}
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		info, err := t.infoLocked(path.Join(name, e.Name), e)
		if err != nil {
			return nil, err
		}
		out = append(out, fs.FileInfoToDirEntry(info))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func goMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	}
	return 0o644
}

type fileInfo struct {
	name string
	mode fs.FileMode
	size int64
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

type file struct {
	info fileInfo
	r    *bytes.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *file) Close() error               { return nil }

// Seek and ReadAt let the file serve http.FileServer and friends.
func (f *file) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *file) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }

type dirFile struct {
	info    fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
