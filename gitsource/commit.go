package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/sirupsen/logrus"
)

// Commit builds a commit from req locally and pushes it to req.Branch with
// compare-and-swap: the push only lands if the remote branch is still at
// req.Parent (absent when Parent is ""). It never force-pushes.
func (g *GoGit) Commit(ctx context.Context, req CommitRequest) (string, error) {
	if err := validBranch(req.Branch); err != nil {
		return "", fmt.Errorf("commit to %s: %w", g.redacted, err)
	}
	var parent plumbing.Hash
	if req.Parent != "" {
		h, err := parseHash(req.Parent)
		if err != nil {
			return "", fmt.Errorf("commit to %s branch %s: %w", g.redacted, req.Branch, err)
		}
		parent = h
	}
	for p := range req.Changes {
		if err := validPath(p); err != nil {
			return "", fmt.Errorf("commit to %s branch %s: %w", g.redacted, req.Branch, err)
		}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repo == nil {
		if err := g.openCache(); err != nil {
			return "", g.red.err(fmt.Errorf("commit to %s: %w", g.redacted, err))
		}
	}
	if !parent.IsZero() && !g.inSpill(parent) && checkCommit(g.repo, parent) != nil {
		// The caller read Parent through another cache (or ours was
		// repaired): fetch the branch and see whether it is still there.
		remote, err := g.ls(ctx)
		if err != nil {
			return "", err
		}
		if remote[req.Branch] != req.Parent {
			return "", fmt.Errorf("commit to %s branch %s: remote is at %q, not %s: %w",
				g.redacted, req.Branch, remote[req.Branch], req.Parent, ErrConflict)
		}
		if _, err := g.fetchLocked(ctx, remote, []string{req.Branch}); err != nil {
			return "", err
		}
		if err := checkCommit(g.repo, parent); err != nil {
			return "", g.red.err(fmt.Errorf("commit to %s branch %s: %w", g.redacted, req.Branch, err))
		}
	}

	repo := g.repo
	if g.inSpill(parent) {
		var err error
		if repo, err = g.spilled(); err != nil {
			return "", fmt.Errorf("commit to %s branch %s: %w", g.redacted, req.Branch, err)
		}
	}
	newHash, err := g.buildCommit(repo, parent, req)
	if IsDiskFull(err) && repo == g.repo {
		// The disk cache refuses writes (a full /var): build the commit in
		// memory on top of what the disk holds, and push from there.
		g.log.WithError(err).WithField("path", g.dir).Warn("git cache is not writable; committing from memory")
		if repo, err = g.spilled(); err == nil {
			newHash, err = g.buildCommit(repo, parent, req)
		}
	}
	if err != nil {
		return "", g.red.err(fmt.Errorf("commit to %s branch %s: %w", g.redacted, req.Branch, err))
	}
	if err := g.push(ctx, repo, req.Branch, parent, newHash); err != nil {
		return "", err
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(trackingRef(req.Branch), newHash)); err != nil {
		return "", fmt.Errorf("record pushed commit %s for branch %s: %w", newHash, req.Branch, err)
	}
	g.log.WithFields(logrus.Fields{"action": "push", "commit": newHash.String(), "branch": req.Branch}).Info("pushed commit")
	return newHash.String(), nil
}

// push sends newHash to branch only if the remote is at parent (or absent
// when parent is zero). A rejection becomes ErrConflict.
func (g *GoGit) push(ctx context.Context, repo *git.Repository, branch string, parent, newHash plumbing.Hash) error {
	dst := plumbing.NewBranchReferenceName(branch)
	opts := &git.PushOptions{
		RemoteName: remoteName,
		RemoteURL:  g.url,
		RefSpecs:   []config.RefSpec{config.RefSpec(newHash.String() + ":" + dst.String())},
		Auth:       g.auth,
	}
	if !parent.IsZero() {
		// Checked against the advertisement; the server then checks the
		// old value we send again under its ref lock, closing the race.
		opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(parent.String() + ":" + dst.String())}
	}
	// With a zero parent go-git sends old=0 when the branch is absent, which
	// the server refuses if someone created it meanwhile; if it exists at
	// advertisement, our orphan is not a fast-forward and go-git refuses.
	// The server's hooks explain refusals on the sideband; keep the
	// start of it for the error.
	remoteMsg := &boundedBuffer{max: 4096}
	opts.Progress = remoteMsg
	pctx, cancel := g.netCtx(ctx)
	err := repo.PushContext(pctx, opts)
	if err != nil && strings.TrimSpace(remoteMsg.String()) != "" {
		err = fmt.Errorf("%w (remote: %s)", err, strings.Join(strings.Fields(remoteMsg.String()), " "))
	}
	if err != nil && pctx.Err() != nil && !errors.Is(err, pctx.Err()) {
		err = fmt.Errorf("%w: %w", pctx.Err(), err)
	}
	cancel()
	if err == nil {
		return nil
	}
	err = g.red.err(fmt.Errorf("push %s to %s branch %s: %w", newHash, g.redacted, branch, err))
	if IsRetryable(err) || isTransportFailure(err) {
		return err
	}
	// Rejected: find out whether the branch moved.
	remote, lerr := g.ls(ctx)
	if lerr != nil {
		return fmt.Errorf("%w (checking remote after rejected push: %w)", err, lerr)
	}
	now, exists := remote[branch]
	switch {
	case now == newHash.String():
		return nil
	case parent.IsZero() && exists, !parent.IsZero() && now != parent.String():
		return fmt.Errorf("%w: %w", err, ErrConflict)
	}
	return err
}

type treeEntry struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

// buildCommit writes the blobs, trees and commit for req on top of parent
// into the cache and returns the commit, or ErrNothingToCommit.
func (g *GoGit) buildCommit(repo *git.Repository, parent plumbing.Hash, req CommitRequest) (plumbing.Hash, error) {
	s := repo.Storer
	files := map[string]treeEntry{}
	var parentTree plumbing.Hash
	if !parent.IsZero() {
		c, err := object.GetCommit(s, parent)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read parent %s: %w", parent, err)
		}
		parentTree = c.TreeHash
		if !req.Replace {
			t, err := c.Tree()
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("read parent %s tree: %w", parent, err)
			}
			w := object.NewTreeWalker(t, true, nil)
			for {
				name, e, err := w.Next()
				if err != nil {
					w.Close()
					if errors.Is(err, io.EOF) {
						break
					}
					return plumbing.ZeroHash, fmt.Errorf("walk parent %s tree: %w", parent, err)
				}
				if e.Mode != filemode.Dir {
					files[name] = treeEntry{e.Mode, e.Hash}
				}
			}
		}
	}
	for p, content := range req.Changes {
		if content == nil {
			delete(files, p)
			// Deleting a directory deletes what is under it.
			for q := range files {
				if strings.HasPrefix(q, p+"/") {
					delete(files, q)
				}
			}
			continue
		}
		h, err := writeBlob(s, content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		files[p] = treeEntry{filemode.Regular, h}
	}
	root, err := writeTrees(s, files)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if (root == parentTree && !req.AllowEmpty) || (parent.IsZero() && len(files) == 0) {
		return plumbing.ZeroHash, ErrNothingToCommit
	}
	author, committer := g.signatures(req)
	c := &object.Commit{
		Author:    author,
		Committer: committer,
		Message:   req.Message,
		TreeHash:  root,
	}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	if g.signer != nil {
		payload := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(payload); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode commit for signing: %w", err)
		}
		r, err := payload.Reader()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode commit for signing: %w", err)
		}
		sig, err := g.signer.Sign(r)
		r.Close()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("sign commit: %w", err)
		}
		c.PGPSignature = string(sig)
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store commit: %w", err)
	}
	return h, nil
}

func writeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	// A blob the store holds already is not written again: the hub
	// rewrites every node's file of stoker/fleet at each commit and all
	// but a few are unchanged (at 1,000 nodes, 1,000 loose-object writes
	// a loop otherwise).
	if h := plumbing.ComputeHash(plumbing.BlobObject, content); s.HasEncodedObject(h) == nil {
		return h, nil
	}
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if _, err := w.Write(content); err != nil {
		w.Close()
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

// writeTrees stores the trees for files (slash paths → blobs) and returns
// the root tree.
func writeTrees(s storer.EncodedObjectStorer, files map[string]treeEntry) (plumbing.Hash, error) {
	type dir struct {
		entries map[string]treeEntry
		subdirs map[string]*dir
	}
	newDir := func() *dir { return &dir{entries: map[string]treeEntry{}, subdirs: map[string]*dir{}} }
	root := newDir()
	for p, e := range files {
		parts := strings.Split(p, "/")
		d := root
		for _, part := range parts[:len(parts)-1] {
			sub, ok := d.subdirs[part]
			if !ok {
				sub = newDir()
				d.subdirs[part] = sub
			}
			d = sub
		}
		d.entries[parts[len(parts)-1]] = e
	}
	var write func(d *dir) (plumbing.Hash, error)
	write = func(d *dir) (plumbing.Hash, error) {
		t := &object.Tree{}
		for name, e := range d.entries {
			t.Entries = append(t.Entries, object.TreeEntry{Name: name, Mode: e.mode, Hash: e.hash})
		}
		for name, sub := range d.subdirs {
			h, err := write(sub)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			t.Entries = append(t.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		// Git orders entries by name, comparing directories as "name/".
		key := func(e object.TreeEntry) string {
			if e.Mode == filemode.Dir {
				return e.Name + "/"
			}
			return e.Name
		}
		sort.Slice(t.Entries, func(i, j int) bool { return key(t.Entries[i]) < key(t.Entries[j]) })
		obj := s.NewEncodedObject()
		if err := t.Encode(obj); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
		}
		h, err := s.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
		}
		return h, nil
	}
	return write(root)
}

// validPath accepts clean, relative, slash-separated paths that stay out of
// .git.
func validPath(p string) error {
	if p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == "." ||
		p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("path %q: must be a clean relative slash path", p)
	}
	for _, part := range strings.Split(p, "/") {
		if strings.EqualFold(part, ".git") {
			return fmt.Errorf("path %q: must not contain .git", p)
		}
	}
	return nil
}

func validBranch(b string) error {
	if b == "" {
		return errors.New("no branch")
	}
	if !plumbing.NewBranchReferenceName(b).IsBranch() || strings.ContainsAny(b, " ~^:?*[\\") ||
		strings.Contains(b, "..") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasPrefix(b, "-") || strings.HasSuffix(b, ".lock") {
		return fmt.Errorf("branch %q: not a valid branch name", b)
	}
	return nil
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	max int
	b   []byte
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if room := w.max - len(w.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		w.b = append(w.b, p[:room]...)
	}
	return len(p), nil
}

func (w *boundedBuffer) String() string { return string(w.b) }
