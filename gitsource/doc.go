// Package gitsource is Stoker's Git transport: cheap ref checks, incremental
// fetches into a persistent cache, reading a commit's tree as files, and
// compare-and-swap commits, signed when a Signer is given. History hands
// package trust the commits' signatures and the exact bytes they sign.
// Descends tells whether a branch moved forward (the agents' forward-only
// rule), deepening a shallow cache when the history it holds is not
// enough. The hub and the agents reach Git only through it; it knows
// nothing of what the files mean.
//
// A commit whose objects the disk cache refuses (a full /var) is built in
// memory over the cache and pushed from there (spill.go).
//
// Redaction removes passwords and tokens only, never user names or other
// text: URLs go through net/url's URL.Redacted (plus the query, and the
// user of an http(s) URL without a password, which is a bare token), and
// secrets loaded from files or the environment are replaced by exact
// value. ssh://git@github.com/org/repo.git stays readable in every error.
//
// Sizes: a file read from a tree is at most Options.MaxBlobBytes (default
// api.MaxBlobBytes); the size comes from the object's header and a larger
// blob is refused (ErrBlobTooLarge) before any of it is inflated.
//
// It must not import reconciler, agent or nodeops (it may import trust).
package gitsource
