package gitsource

import (
	"errors"
	"syscall"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/memory"
)

// IsDiskFull reports a write refused by the file system: no space, quota
// exceeded, or read-only. The agent reports it (its state and cache live
// on the same /var) instead of stalling silently.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// spillStorer is the cache with writes kept in memory: objects and refs
// are read from memory first, then from disk; they are written to memory
// only. Commit falls back to it when the disk cache refuses writes, so a
// node whose /var is full can still push the report that says so.
type spillStorer struct {
	storage.Storer // the disk cache: config, shallow list, index, and reads
	mem            *memory.Storage
}

func (s spillStorer) NewEncodedObject() plumbing.EncodedObject { return s.mem.NewEncodedObject() }

func (s spillStorer) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	return s.mem.SetEncodedObject(o)
}

func (s spillStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, err := s.mem.EncodedObject(t, h); err == nil {
		return o, nil
	}
	return s.Storer.EncodedObject(t, h)
}

func (s spillStorer) HasEncodedObject(h plumbing.Hash) error {
	if s.mem.HasEncodedObject(h) == nil {
		return nil
	}
	return s.Storer.HasEncodedObject(h)
}

func (s spillStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if n, err := s.mem.EncodedObjectSize(h); err == nil {
		return n, nil
	}
	return s.Storer.EncodedObjectSize(h)
}

func (s spillStorer) SetReference(r *plumbing.Reference) error { return s.mem.SetReference(r) }

func (s spillStorer) CheckAndSetReference(n, old *plumbing.Reference) error {
	return s.mem.SetReference(n)
}

func (s spillStorer) Reference(n plumbing.ReferenceName) (*plumbing.Reference, error) {
	if r, err := s.mem.Reference(n); err == nil {
		return r, nil
	}
	return s.Storer.Reference(n)
}

func (s spillStorer) RemoveReference(n plumbing.ReferenceName) error { return s.mem.RemoveReference(n) }

// spilled returns the cache seen through the in-memory spill, creating
// the spill on first use. Callers hold g.mu.
func (g *GoGit) spilled() (*git.Repository, error) {
	if g.spill == nil {
		g.spill = memory.NewStorage()
	}
	return git.Open(spillStorer{Storer: g.repo.Storer, mem: g.spill}, nil)
}

// inSpill reports whether commit h was written to the spill (its parent
// chain then continues there, not on disk). Callers hold g.mu.
func (g *GoGit) inSpill(h plumbing.Hash) bool {
	return g.spill != nil && g.spill.HasEncodedObject(h) == nil
}
