package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxDepth bounds how many first-parent commits Chain walks back
// from a head it has not seen before.
const DefaultMaxDepth = 10000

// Commit is one commit as the chain sees it.
type Commit struct {
	Hash string
	// Parents in order; the first parent is the branch's own history.
	Parents []string
	Signed  Signed
}

// History reads the commits and files of one repository.
type History interface {
	// Commit returns the commit, which must be available locally.
	Commit(ctx context.Context, hash string) (Commit, error)
	// File returns path's content at commit, or nil and no error when
	// the path does not exist there.
	File(ctx context.Context, commit, path string) ([]byte, error)
}

// Refused is the error of a commit the chain does not trust: which commit
// and why, wrapping ErrUnsigned, ErrUntrusted or ErrBadSignature.
type Refused struct {
	Commit string
	Err    error
}

func (r *Refused) Error() string { return "commit " + short(r.Commit) + ": " + r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// Chain verifies the heads of a branch against a trust root extended by a
// file in the repository (SignersPath, allowed_signers format). Every
// commit is judged by the keys trusted at its first parent: the root plus
// the in-repo signers as they were at that parent. A change to the signers
// file (or to any of Guarded) counts only when the commit making it is
// signed by such a key; a head whose file differs from its last trusted
// version is refused. Merge commits are judged at their first parent: the
// merge's own signature vouches for what the other parents brought in.
//
// Chain remembers what it verified, so a head that descends from one it
// has seen costs one walk back to it. It is safe for concurrent use.
type Chain struct {
	Root *Set
	// SignersPath is the in-repo allowed_signers file ("" = none: heads
	// are verified against Root alone and history is not read).
	SignersPath string
	// Guarded are other files (e.g. the node signers) whose changes must be
	// signed like SignersPath's; Verdict.Files holds their trusted content.
	Guarded []string
	// MaxDepth bounds a walk; zero means DefaultMaxDepth.
	MaxDepth int

	mu   sync.Mutex
	memo map[string]*chainState
}

// chainState is what is trusted at one commit.
type chainState struct {
	actual  map[string][]byte // file content in the tree
	trusted map[string][]byte // last content changed by a trusted commit
	signers *Set              // parsed trusted SignersPath content
	judgeBy *Set              // in-repo signers at the first parent: what this commit is judged by
	tainted map[string]string // path → why actual differs from trusted
}

// Verdict is a verified head.
type Verdict struct {
	Commit string
	By     Verified
	// Files holds the trusted content of SignersPath and Guarded at the
	// head (nil for an absent file).
	Files map[string][]byte
	// Signers is what the head's children will be judged by: the root
	// plus the in-repo signers at the head.
	Signers *Set
}

func (c *Chain) paths() []string {
	var out []string
	if c.SignersPath != "" {
		out = append(out, c.SignersPath)
	}
	return append(out, c.Guarded...)
}

// Verify checks head. The error is a *Refused when the commit is not
// trusted, anything else when history could not be read.
func (c *Chain) Verify(ctx context.Context, h History, head string) (Verdict, error) {
	hc, err := h.Commit(ctx, head)
	if err != nil {
		return Verdict{}, fmt.Errorf("verify %s: %w", short(head), err)
	}
	if len(c.paths()) == 0 {
		by, err := c.Root.Verify(hc.Signed, "")
		if err != nil {
			return Verdict{}, &Refused{Commit: head, Err: err}
		}
		return Verdict{Commit: head, By: by, Signers: c.Root}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.stateAt(ctx, h, hc)
	if err != nil {
		return Verdict{}, err
	}
	by, err := c.Root.Merge(st.judgeBy).Verify(hc.Signed, "")
	if err != nil {
		return Verdict{}, &Refused{Commit: head, Err: err}
	}
	for _, p := range c.paths() {
		if why, ok := st.tainted[p]; ok {
			return Verdict{}, &Refused{Commit: head, Err: fmt.Errorf("%w: %s differs from its last trusted version: %s", ErrUntrusted, p, why)}
		}
	}
	files := map[string][]byte{}
	for p, v := range st.trusted {
		files[p] = v
	}
	return Verdict{Commit: head, By: by, Files: files, Signers: c.Root.Merge(st.signers)}, nil
}

// stateAt walks first parents back from hc to a commit already judged (or
// to the history's root, or to a commit without any guarded file), then
// judges forward. Callers hold c.mu.
func (c *Chain) stateAt(ctx context.Context, h History, hc Commit) (*chainState, error) {
	if c.memo == nil || len(c.memo) > 4*c.maxDepth() {
		c.memo = map[string]*chainState{}
	}
	if st, ok := c.memo[hc.Hash]; ok {
		return st, nil
	}
	var walk []Commit
	var base *chainState
	cur := hc
	for {
		walk = append(walk, cur)
		if len(walk) > c.maxDepth() {
			return nil, fmt.Errorf("verify %s: more than %d commits back to a trusted base", short(hc.Hash), c.maxDepth())
		}
		if len(cur.Parents) == 0 {
			base = &chainState{actual: map[string][]byte{}, trusted: map[string][]byte{}, tainted: map[string]string{}}
			break
		}
		if st, ok := c.memo[cur.Parents[0]]; ok {
			base = st
			break
		}
		// A parent without any guarded file trusts nothing extra: it is
		// a base as good as the root.
		pc, err := h.Commit(ctx, cur.Parents[0])
		if err != nil {
			return nil, fmt.Errorf("verify %s: read parent %s (is the history complete, not shallow?): %w", short(hc.Hash), short(cur.Parents[0]), err)
		}
		files, err := c.readFiles(ctx, h, pc.Hash)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			st := &chainState{actual: files, trusted: map[string][]byte{}, tainted: map[string]string{}}
			c.memo[pc.Hash] = st
			base = st
			break
		}
		cur = pc
	}
	prev := base
	for i := len(walk) - 1; i >= 0; i-- {
		st, err := c.judge(ctx, h, walk[i], prev)
		if err != nil {
			return nil, err
		}
		c.memo[walk[i].Hash] = st
		prev = st
	}
	return prev, nil
}

// judge computes the state at commit from its first parent's state.
func (c *Chain) judge(ctx context.Context, h History, commit Commit, parent *chainState) (*chainState, error) {
	actual, err := c.readFiles(ctx, h, commit.Hash)
	if err != nil {
		return nil, err
	}
	st := &chainState{actual: actual, trusted: map[string][]byte{}, signers: parent.signers,
		judgeBy: parent.signers, tainted: map[string]string{}}
	for p, v := range parent.trusted {
		st.trusted[p] = v
	}
	for p, v := range parent.tainted {
		st.tainted[p] = v
	}
	var judgeErr error
	judged := false
	for _, p := range c.paths() {
		if bytes.Equal(actual[p], parent.actual[p]) && (actual[p] == nil) == (parent.actual[p] == nil) {
			continue
		}
		if !judged {
			_, judgeErr = c.Root.Merge(parent.signers).Verify(commit.Signed, "")
			judged = true
		}
		if judgeErr != nil {
			st.tainted[p] = fmt.Sprintf("changed by commit %s, %v", short(commit.Hash), judgeErr)
			continue
		}
		if p == c.SignersPath && actual[p] != nil {
			s, err := Parse(p+"@"+short(commit.Hash), actual[p])
			if err != nil {
				st.tainted[p] = fmt.Sprintf("commit %s: %v", short(commit.Hash), err)
				continue
			}
			st.signers = s
		} else if p == c.SignersPath {
			st.signers = nil
		}
		st.trusted[p] = actual[p]
		if actual[p] == nil {
			delete(st.trusted, p)
		}
		delete(st.tainted, p)
	}
	return st, nil
}

func (c *Chain) readFiles(ctx context.Context, h History, commit string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, p := range c.paths() {
		b, err := h.File(ctx, commit, p)
		if err != nil {
			return nil, fmt.Errorf("verify: read %s at %s: %w", p, short(commit), err)
		}
		if b != nil {
			out[p] = b
		}
	}
	return out, nil
}

func (c *Chain) maxDepth() int {
	if c.MaxDepth > 0 {
		return c.MaxDepth
	}
	return DefaultMaxDepth
}

// IsRefused reports whether err says a commit is not trusted (as opposed
// to history that could not be read).
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
