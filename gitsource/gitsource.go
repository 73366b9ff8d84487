package gitsource

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// ErrConflict is returned by Commit when the remote branch no longer points
// where the caller read it: re-read, re-plan, try again. It is never
// resolved by force-pushing.
var ErrConflict = errors.New("remote branch moved (compare-and-swap failed)")

// ErrRefNotFound is returned when a branch or ref does not exist.
var ErrRefNotFound = errors.New("ref not found")

// ErrBlobTooLarge is matched (errors.Is) when a file in a tree is larger
// than the source's MaxBlobBytes; nothing of it was read.
var ErrBlobTooLarge = errors.New("blob too large")

// ErrNothingToCommit is returned by Commit when the changes leave the tree
// as it is; no commit is made.
var ErrNothingToCommit = errors.New("nothing to commit")

// Checker tells where branches point without fetching (one ls-remote).
type Checker interface {
	// Head returns the commit the remote branch points at, or
	// ErrRefNotFound.
	Head(ctx context.Context, branch string) (string, error)
	// Refs lists the remote branches whose names start with prefix (e.g.
	// "stoker/reports/") and their commits, in one round trip. Keys are
	// branch names without "refs/heads/".
	Refs(ctx context.Context, prefix string) (map[string]string, error)
}

// Fetcher brings commits into the local cache.
type Fetcher interface {
	// Fetch fetches the named branches (depth 1 the first time, then only
	// new objects) and returns the commit each points at; missing branches
	// are absent from the result.
	Fetch(ctx context.Context, branches ...string) (map[string]string, error)
}

// TreeReader reads a fetched commit.
type TreeReader interface {
	// Tree returns the files of commit as a read-only file system.
	Tree(ctx context.Context, commit string) (fs.FS, error)
}

// Committer writes commits with compare-and-swap.
type Committer interface {
	// Commit applies req.Changes on top of req.Parent (the commit the caller
	// read; "" means the branch must not exist yet and is created as an
	// orphan) and pushes it to req.Branch only if the remote still points at
	// req.Parent. It returns the new commit, ErrConflict, or
	// ErrNothingToCommit.
	Commit(ctx context.Context, req CommitRequest) (string, error)
}

// Ancestry tells whether history moved forward.
type Ancestry interface {
	// Descends reports whether commit (the fetched head of branch) is
	// ancestor or descends from it. A rewind or an unrelated history is
	// false with no error; ErrUnknownAncestry when it cannot be told.
	Descends(ctx context.Context, branch, ancestor, commit string) (bool, error)
}

// Repo is everything the hub and the agents need from one remote.
type Repo interface {
	Checker
	Fetcher
	TreeReader
	Committer
	Ancestry
}

// CommitRequest describes one commit.
type CommitRequest struct {
	Branch string
	Parent string
	// Changes maps slash-separated paths to new contents; a nil value
	// deletes the path.
	Changes map[string][]byte
	// Replace, when set, makes the tree exactly Changes (files not named
	// are dropped) instead of applying Changes on top of Parent's tree.
	Replace bool
	// AllowEmpty makes a commit even when the tree does not change (to
	// supersede an unverified head with a signed commit of the same tree).
	AllowEmpty bool
	Message    string
	Author     Signature
	// When is the commit time; zero means now.
	When time.Time
}

// Signature is a commit author or committer.
type Signature struct {
	Name  string
	Email string
}
