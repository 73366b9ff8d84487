package gitsource

import (
	"context"
	"errors"
	"fmt"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUnknownAncestry is returned by Descends when the history between the
// two commits cannot be read, even after deepening the cache.
var ErrUnknownAncestry = errors.New("ancestry cannot be determined")

// maxAncestryWalk bounds how many commits one ancestry check visits.
const maxAncestryWalk = 1 << 20

// fullDepth is what "git fetch --unshallow" asks for (git's INFINITE_DEPTH).
const fullDepth = 0x7fffffff

// Descends reports whether commit is ancestor or a descendant of it
// (history moved forward), walking parents in the cache. commit must be
// the fetched head of branch: when the walk meets the edge of a shallow
// cache before deciding, branch is deepened to its full history once and
// the walk repeated. A commit that does not descend (a rewind, or an
// unrelated history) returns false and no error.
func (g *GoGit) Descends(ctx context.Context, branch, ancestor, commit string) (bool, error) {
	a, err := parseHash(ancestor)
	if err != nil {
		return false, err
	}
	c, err := parseHash(commit)
	if err != nil {
		return false, err
	}
	if a == c {
		return true, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(); err != nil {
		return false, g.red.err(fmt.Errorf("check ancestry on %s: %w", g.redacted, err))
	}
	found, complete, err := walkFor(ctx, g.repo, c, a)
	if err != nil || found || complete {
		return found, err
	}
	// The walk ran off the edge of a shallow cache: fetch the branch's
	// whole history and look again.
	g.log.WithField("action", "deepen").Debug("deepening cache for an ancestry check")
	if err := g.fetchSpecs(ctx, []config.RefSpec{fetchSpec(branch)}, fullDepth); err != nil {
		return false, err
	}
	if found, complete, err = walkFor(ctx, g.repo, c, a); err != nil || found || complete {
		return found, err
	}
	return false, fmt.Errorf("check whether %s of %s descends from %s: history incomplete after deepening: %w",
		commit, g.redacted, ancestor, ErrUnknownAncestry)
}

// walkFor walks the parents of from, looking for target. complete is true
// when every commit reachable from from was read (so !found is certain).
func walkFor(ctx context.Context, repo *git.Repository, from, target plumbing.Hash) (found, complete bool, err error) {
	seen := map[plumbing.Hash]bool{from: true}
	queue := []plumbing.Hash{from}
	complete = true
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return false, false, err
		}
		if len(seen) > maxAncestryWalk {
			return false, false, fmt.Errorf("check ancestry from %s: more than %d commits: %w", from, maxAncestryWalk, ErrUnknownAncestry)
		}
		h := queue[0]
		queue = queue[1:]
		if h == target {
			return true, true, nil
		}
		c, err := object.GetCommit(repo.Storer, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			complete = false // the edge of a shallow cache
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("check ancestry: read commit %s: %w", h, err)
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, complete, nil
}
