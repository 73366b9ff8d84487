package gitsource

import (
	"context"
	"fmt"
)

// FetchChecked is Fetch for branches whose remote commits the caller
// has just read (Head, Refs): seen maps each branch to that commit ("" or
// absent: the branch is missing). It makes no ref check of its own, so a
// poll that found a branch moved costs one round trip less; a branch the
// cache already holds at its seen commit is not fetched. It returns what
// the cache holds after the fetch, which is newer than seen when the
// remote moved again in between (the fetch takes the branch as the
// remote has it then).
func (g *GoGit) FetchChecked(ctx context.Context, seen map[string]string, branches ...string) (map[string]string, error) {
	remote := make(map[string]string, len(branches))
	for _, b := range branches {
		if c := seen[b]; c != "" {
			remote[b] = c
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out, err := g.fetchLocked(ctx, remote, branches)
	if err != nil && !IsRetryable(err) && !isTransportFailure(err) {
		g.log.WithError(err).WithField("path", g.dir).Warn("git fetch failed on the cache; re-cloning")
		if rerr := g.resetCache(); rerr != nil {
			return nil, g.red.err(fmt.Errorf("fetch %s: %w (repairing cache: %w)", g.redacted, err, rerr))
		}
		out, err = g.fetchLocked(ctx, remote, branches)
	}
	return out, err
}

// FetchChecked fetches branches at the commits the caller read from r
// (seen), without another ref check when r can (GoGit); otherwise it is
// r.Fetch.
func FetchChecked(ctx context.Context, r Fetcher, seen map[string]string, branches ...string) (map[string]string, error) {
	if c, ok := r.(interface {
		FetchChecked(context.Context, map[string]string, ...string) (map[string]string, error)
	}); ok {
		return c.FetchChecked(ctx, seen, branches...)
	}
	return r.Fetch(ctx, branches...)
}
