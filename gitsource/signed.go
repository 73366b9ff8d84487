package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"stoker.dev/stoker/trust"
)

// Signer signs the commits a GoGit writes (go-git's Signer interface;
// trust.SSHSigner is one).
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// MaxTrustFile bounds a file read with ReadFile for the trust chain.
const MaxTrustFile = trust.MaxFileSize

// History returns the cache seen as a trust.History: commits with their
// signatures and the exact bytes signed, and bounded file reads. Commits
// must have been fetched (with Options.FullHistory when the chain walks
// back).
func (g *GoGit) History() trust.History { return history{g} }

type history struct{ g *GoGit }

// Commit reads a commit and what its signature covers.
func (h history) Commit(ctx context.Context, commit string) (trust.Commit, error) {
	if err := ctx.Err(); err != nil {
		return trust.Commit{}, err
	}
	c, err := h.g.readCommit(commit)
	if err != nil {
		return trust.Commit{}, err
	}
	out := trust.Commit{Hash: c.Hash.String(), Signed: trust.Signed{Signature: c.PGPSignature, When: c.Committer.When}}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	if c.PGPSignature != "" {
		obj := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(obj); err != nil {
			return trust.Commit{}, fmt.Errorf("encode commit %s without its signature: %w", commit, err)
		}
		r, err := obj.Reader()
		if err != nil {
			return trust.Commit{}, fmt.Errorf("encode commit %s without its signature: %w", commit, err)
		}
		defer r.Close()
		if out.Signed.Payload, err = io.ReadAll(r); err != nil {
			return trust.Commit{}, fmt.Errorf("encode commit %s without its signature: %w", commit, err)
		}
	}
	return out, nil
}

// File reads path at commit (nil, nil when absent), refusing blobs over
// MaxTrustFile before reading them.
func (h history) File(ctx context.Context, commit, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := h.g.readCommit(commit)
	if err != nil {
		return nil, err
	}
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	tree, err := object.GetTree(h.g.repo.Storer, c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", commit, err)
	}
	e, err := tree.FindEntry(path)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	if !e.Mode.IsFile() {
		return nil, fmt.Errorf("read %s at %s: not a regular file", path, commit)
	}
	size, err := h.g.repo.Storer.EncodedObjectSize(e.Hash)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	if size > MaxTrustFile {
		return nil, fmt.Errorf("read %s at %s: %d bytes, over the %d byte limit", path, commit, size, MaxTrustFile)
	}
	b, err := object.GetBlob(h.g.repo.Storer, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxTrustFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func (g *GoGit) readCommit(commit string) (*object.Commit, error) {
	hash, err := parseHash(commit)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repo == nil {
		if err := g.openCache(); err != nil {
			return nil, g.red.err(fmt.Errorf("read commit %s: %w", commit, err))
		}
	}
	c, err := object.GetCommit(g.repo.Storer, hash)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("read commit %s: not in cache (fetch it first): %w", commit, ErrRefNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", commit, err)
	}
	return c, nil
}
