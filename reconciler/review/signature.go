package review

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"stoker.dev/stoker/trust"
)

// DefaultRepoSigners is the hub's default in-repo allowed_signers file.
const DefaultRepoSigners = ".stoker/allowed_signers"

// maxCommitBytes bounds the commit object read for a signature check.
const maxCommitBytes = 1 << 20

// HeadSignature says what `stoker diff` verified about HEAD.
type HeadSignature struct {
	// Verified is true when HEAD's signature verifies against the trust
	// root (DiffOptions.TrustRoots) plus BASE's in-repo allowed signers:
	// what the hub would accept once HEAD is the branch head.
	Verified bool `json:"verified"`
	// Detail names the key, or why HEAD is unverified.
	Detail string `json:"detail"`
}

func (s HeadSignature) String() string {
	if s.Verified {
		return "verified: " + s.Detail
	}
	return "unverified: " + s.Detail
}

// checkHead verifies HEAD's commit signature. A directory has none.
func checkHead(ctx context.Context, base, head diffSide, opts DiffOptions) (HeadSignature, error) {
	hg, ok := head.(gitSide)
	if !ok {
		return HeadSignature{Detail: "HEAD is a directory, not a signed commit"}, nil
	}
	signed, err := readSigned(ctx, hg.dir, hg.rev)
	if err != nil {
		return HeadSignature{}, err
	}
	if strings.TrimSpace(signed.Signature) == "" {
		return HeadSignature{Detail: "HEAD is unsigned; a hub with --trust-root will not render it"}, nil
	}
	set := &trust.Set{}
	if len(opts.TrustRoots) > 0 {
		if set, err = trust.LoadFiles(opts.TrustRoots...); err != nil {
			return HeadSignature{}, fmt.Errorf("--trust-root: %w", err)
		}
	}
	signersPath := opts.RepoSigners
	if signersPath == "" {
		signersPath = DefaultRepoSigners
	}
	if bg, ok := base.(gitSide); ok && signersPath != "-" {
		if data, err := runGit(ctx, bg.dir, nil, "show", bg.rev+":"+signersPath); err == nil {
			extra, err := trust.Parse(bg.rev+":"+signersPath, data)
			if err != nil {
				return HeadSignature{}, err
			}
			set = set.Merge(extra)
		}
	}
	if set.Empty() {
		return HeadSignature{Detail: "HEAD is signed, but no --trust-root was given to check it against"}, nil
	}
	v, err := set.Verify(signed, "")
	if err != nil {
		return HeadSignature{Detail: fmt.Sprintf("HEAD %v", err)}, nil
	}
	return HeadSignature{Verified: true, Detail: "HEAD signed by " + v.String()}, nil
}

// readSigned reads rev's commit object with the git CLI and splits off its
// signature with go-git's commit decoder.
func readSigned(ctx context.Context, dir, rev string) (trust.Signed, error) {
	size, err := runGit(ctx, dir, nil, "cat-file", "-s", rev+"^{commit}")
	if err != nil {
		return trust.Signed{}, fmt.Errorf("read commit %s in %s: %w", rev, dir, err)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(size))); err != nil || n > maxCommitBytes {
		return trust.Signed{}, fmt.Errorf("read commit %s in %s: size %q over the %d byte limit", rev, dir, strings.TrimSpace(string(size)), maxCommitBytes)
	}
	raw, err := runGit(ctx, dir, nil, "cat-file", "commit", rev+"^{commit}")
	if err != nil {
		return trust.Signed{}, fmt.Errorf("read commit %s in %s: %w", rev, dir, err)
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.CommitObject)
	if _, err := obj.Write(raw); err != nil {
		return trust.Signed{}, fmt.Errorf("read commit %s: %w", rev, err)
	}
	var c object.Commit
	if err := c.Decode(obj); err != nil {
		return trust.Signed{}, fmt.Errorf("decode commit %s: %w", rev, err)
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return trust.Signed{}, fmt.Errorf("encode commit %s without its signature: %w", rev, err)
	}
	r, err := payload.Reader()
	if err != nil {
		return trust.Signed{}, fmt.Errorf("encode commit %s without its signature: %w", rev, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return trust.Signed{}, fmt.Errorf("encode commit %s without its signature: %w", rev, err)
	}
	return trust.Signed{Signature: c.PGPSignature, Payload: data, When: c.Committer.When}, nil
}
