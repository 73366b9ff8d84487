package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
)

// DefaultTimeout bounds one network operation when Options.Timeout is zero.
const DefaultTimeout = time.Minute

// remoteName is the only remote a cache has.
const remoteName = "origin"

// Options configures one remote repository and its local cache.
type Options struct {
	// URL of the remote: file://, git://, ssh://, http:// or https://.
	URL string
	// WorkDir holds the caches; each remote gets its own bare repository
	// in a directory named by a hash of the redacted URL, reused across
	// restarts.
	WorkDir string
	// Auth says where credentials come from.
	Auth AuthOptions
	// Timeout bounds each network operation (ls-remote, fetch, push) in
	// addition to the caller's context; zero means DefaultTimeout.
	Timeout time.Duration
	// Committer signs the commits; zero means the request's Author, or
	// "Stoker <stoker@localhost>" when that is empty too.
	Committer Signature
	// Signer, when set, signs every commit Commit writes (the hub's key
	// on stoker/status and stoker/fleet, a node's key on its report).
	Signer Signer
	// FullHistory fetches whole histories instead of depth 1, for trust
	// chains that walk back (an in-repo allowed_signers file). A shallow
	// cache is re-cloned.
	FullHistory bool
	// Logger receives one line per fetch, push and cache repair; nil
	// discards.
	Logger logrus.FieldLogger
	// MaxBlobBytes caps one file read from a tree: its size is taken from
	// the object's header and a larger blob is refused (ErrBlobTooLarge)
	// before its content is read. Zero means api.MaxBlobBytes.
	MaxBlobBytes int64
}

// GoGit is the go-git implementation of Repo. It is safe for concurrent
// use: ref checks run in parallel, cache access is serialised per cache
// directory (also across GoGit values opened on the same directory).
type GoGit struct {
	url      string // without user info; credentials live in auth
	redacted string
	dir      string
	auth     transport.AuthMethod
	red      redactor
	timeout  time.Duration
	sig      Signature
	signer   Signer
	full     bool
	log      logrus.FieldLogger
	maxBlob  int64

	mu   *sync.Mutex // guards repo, suspect and the cache directory
	repo *git.Repository
	// suspect is set when a read found the cache damaged; the next fetch
	// validates it fully and re-clones if needed.
	suspect bool
	// spill holds the objects of commits made while the disk cache
	// refused writes (spill.go); nil until then.
	spill *memory.Storage
}

var _ Repo = (*GoGit)(nil)

// cacheLocks gives every cache directory one mutex per process.
var cacheLocks sync.Map // dir → *sync.Mutex

// Open prepares the cache for opts.URL (creating, or repairing it when it
// is corrupt) and loads the credentials. It does not touch the network.
func Open(opts Options) (*GoGit, error) {
	if opts.URL == "" {
		return nil, errors.New("open git source: no URL")
	}
	if opts.WorkDir == "" {
		return nil, fmt.Errorf("open git source %s: no work directory", Redact(opts.URL))
	}
	redacted := Redact(opts.URL)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	la, err := opts.Auth.load(opts.URL, timeout)
	if err != nil {
		return nil, newRedactor(urlSecrets(opts.URL)...).err(fmt.Errorf("open git source %s: %w", redacted, err))
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = l
	}
	sum := sha256.Sum256([]byte(redacted))
	dir, err := filepath.Abs(filepath.Join(opts.WorkDir, "git-"+hex.EncodeToString(sum[:8])))
	if err != nil {
		return nil, fmt.Errorf("open git source %s: %w", redacted, err)
	}
	if opts.MaxBlobBytes <= 0 {
		opts.MaxBlobBytes = api.MaxBlobBytes
	}
	mu, _ := cacheLocks.LoadOrStore(dir, &sync.Mutex{})
	g := &GoGit{
		url:      stripUserinfo(opts.URL),
		redacted: redacted,
		dir:      dir,
		auth:     la.method,
		red:      newRedactor(append(la.secrets, urlSecrets(opts.URL)...)...),
		timeout:  timeout,
		sig:      opts.Committer,
		signer:   opts.Signer,
		full:     opts.FullHistory,
		log:      log.WithField("repo", redacted),
		maxBlob:  opts.MaxBlobBytes,
		mu:       mu.(*sync.Mutex),
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.openCache(); err != nil {
		return nil, g.red.err(fmt.Errorf("open git source %s: %w", redacted, err))
	}
	return g, nil
}

// Dir returns the cache directory (a bare repository).
func (g *GoGit) Dir() string { return g.dir }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// urlSecrets returns the secrets embedded in a URL: its password, or the
// user name of an http(s) URL without one (a bare token). An ssh or git
// user name ("git" in ssh://git@host/...) is not a secret.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	if p, ok := u.User.Password(); ok {
		return []string{p}
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return []string{u.User.Username()}
	}
	return nil
}

func stripUserinfo(raw string) string {
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return raw
	}
	scheme := strings.Index(raw, "://") + 3
	rest := raw[scheme:]
	slash := strings.Index(rest, "/")
	host := rest
	if slash >= 0 {
		host = rest[:slash]
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		return raw[:scheme] + rest[at+1:]
	}
	return raw
}

// openCache opens the bare cache repository, or re-creates it when it is
// missing or fails validation. Callers hold g.mu.
func (g *GoGit) openCache() error {
	repo, err := git.PlainOpen(g.dir)
	if err == nil {
		err = g.validate(repo)
	}
	if err == nil && g.full {
		if shallow, serr := repo.Storer.Shallow(); serr != nil || len(shallow) > 0 {
			err = errors.New("cache is shallow; full history wanted")
		}
	}
	if err == nil {
		g.repo = repo
		return nil
	}
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		g.log.WithError(g.red.err(err)).WithField("path", g.dir).Warn("git cache corrupt; re-creating it")
	}
	return g.resetCache()
}

// resetCache throws the cache away and starts an empty one; the next fetch
// re-clones. Callers hold g.mu.
func (g *GoGit) resetCache() error {
	g.repo = nil
	if err := os.RemoveAll(g.dir); err != nil {
		return fmt.Errorf("remove git cache %s: %w", g.dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(g.dir), 0o755); err != nil {
		return fmt.Errorf("create git cache %s: %w", g.dir, err)
	}
	repo, err := git.PlainInit(g.dir, true)
	if err != nil {
		return fmt.Errorf("init git cache %s: %w", g.dir, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{g.url}}); err != nil {
		return fmt.Errorf("init git cache %s: %w", g.dir, err)
	}
	g.repo = repo
	return nil
}

// validate checks that the cache is for this remote and that every ref
// resolves to a commit whose root tree can be read: deleted objects,
// truncated packs and garbage refs all fail here.
func (g *GoGit) validate(repo *git.Repository) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read cache config: %w", err)
	}
	rc, ok := cfg.Remotes[remoteName]
	if !ok || len(rc.URLs) != 1 || rc.URLs[0] != g.url {
		return errors.New("cache belongs to another remote")
	}
	refs, err := repo.References()
	if err != nil {
		return fmt.Errorf("list cache refs: %w", err)
	}
	defer refs.Close()
	return refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		if err := checkTree(repo, ref.Hash()); err != nil {
			return fmt.Errorf("cache ref %s: %w", ref.Name(), err)
		}
		return nil
	})
}

// checkTree fails unless commit, all its trees, and all its blobs are in
// the object store.
func checkTree(repo *git.Repository, h plumbing.Hash) error {
	c, err := repo.CommitObject(h)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return fmt.Errorf("read tree of commit %s: %w", h, err)
	}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk tree of commit %s: %w", h, err)
		}
		if e.Mode.IsFile() {
			if err := repo.Storer.HasEncodedObject(e.Hash); err != nil {
				return fmt.Errorf("commit %s file %s: blob %s: %w", h, name, e.Hash, err)
			}
		}
	}
}

// refreshLocked re-opens the cache with an empty object cache, so damage
// done on disk is seen, and validates it fully when a read found it
// suspect. Callers hold g.mu.
func (g *GoGit) refreshLocked() error {
	if g.repo != nil && !g.suspect {
		if repo, err := git.PlainOpen(g.dir); err == nil {
			g.repo = repo
			return nil
		}
	}
	g.suspect = false
	return g.openCache()
}

// checkCommit fails unless commit and its root tree are readable.
func checkCommit(repo *git.Repository, h plumbing.Hash) error {
	c, err := repo.CommitObject(h)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", h, err)
	}
	if _, err := c.Tree(); err != nil {
		return fmt.Errorf("read tree of commit %s: %w", h, err)
	}
	return nil
}

// netCtx bounds one network operation.
func (g *GoGit) netCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

// ls lists the remote's branches (one round trip, no cache involved).
func (g *GoGit) ls(ctx context.Context) (map[string]string, error) {
	ar, err := g.advertised(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ar.References))
	for name, h := range ar.References {
		// Not ReferenceName.Short: it tries every rev-parse rule with
		// fmt.Sscanf, most of the cost of a poll over many refs.
		if b, ok := strings.CutPrefix(name, branchPrefix); ok {
			out[b] = h.String()
		}
	}
	return out, nil
}

// branchPrefix is what plumbing.ReferenceName.IsBranch looks for.
const branchPrefix = "refs/heads/"

// Head returns the commit the remote branch points at, or ErrRefNotFound.
// It looks the branch up in the advertisement without listing the rest.
func (g *GoGit) Head(ctx context.Context, branch string) (string, error) {
	ar, err := g.advertised(ctx)
	if err != nil {
		return "", err
	}
	h, ok := ar.References[branchPrefix+branch]
	if !ok {
		return "", fmt.Errorf("branch %s of %s: %w", branch, g.redacted, ErrRefNotFound)
	}
	return h.String(), nil
}

// Refs lists the remote branches starting with prefix, in one round trip.
func (g *GoGit) Refs(ctx context.Context, prefix string) (map[string]string, error) {
	refs, err := g.ls(ctx)
	if err != nil {
		return nil, err
	}
	for name := range refs {
		if !strings.HasPrefix(name, prefix) {
			delete(refs, name)
		}
	}
	return refs, nil
}

func trackingRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, branch)
}

// Fetch fetches branches into the cache: depth 1 for a branch the cache
// has never seen, only new objects afterwards, nothing at all for a branch
// that has not moved. A corrupt cache is re-created and the fetch retried
// once.
func (g *GoGit) Fetch(ctx context.Context, branches ...string) (map[string]string, error) {
	remote, err := g.ls(ctx)
	if err != nil {
		return nil, err
	}
	return g.FetchChecked(ctx, remote, branches...)
}

// isTransportFailure reports errors that come from the remote or the
// credentials, not from the cache, so re-cloning cannot help.
func isTransportFailure(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "ssh: ")
}

// fetchLocked fetches the branches of remote (name → commit, from ls) that
// the cache lacks. Callers hold g.mu.
func (g *GoGit) fetchLocked(ctx context.Context, remote map[string]string, branches []string) (map[string]string, error) {
	{
		if err := g.refreshLocked(); err != nil {
			return nil, g.red.err(fmt.Errorf("fetch %s: %w", g.redacted, err))
		}
	}
	out := map[string]string{}
	var fresh, moved []config.RefSpec
	for _, b := range branches {
		want, ok := remote[b]
		if !ok {
			continue
		}
		local, err := g.repo.Reference(trackingRef(b), false)
		switch {
		case err != nil:
			fresh = append(fresh, fetchSpec(b))
		case local.Hash().String() != want || checkCommit(g.repo, local.Hash()) != nil:
			moved = append(moved, fetchSpec(b))
		}
		out[b] = want
	}
	start := time.Now()
	for _, batch := range []struct {
		specs []config.RefSpec
		depth int
	}{{fresh, g.freshDepth()}, {moved, 0}} {
		if len(batch.specs) == 0 {
			continue
		}
		if err := g.fetchSpecs(ctx, batch.specs, batch.depth); err != nil {
			return nil, err
		}
	}
	// Report what the cache now holds (the remote may have moved since ls)
	// and prove every commit is readable.
	for b := range out {
		ref, err := g.repo.Reference(trackingRef(b), false)
		if err != nil {
			return nil, g.red.err(fmt.Errorf("fetch %s branch %s: %w", g.redacted, b, err))
		}
		if err := checkCommit(g.repo, ref.Hash()); err != nil {
			return nil, g.red.err(fmt.Errorf("fetch %s branch %s: %w", g.redacted, b, err))
		}
		out[b] = ref.Hash().String()
	}
	if len(fresh)+len(moved) > 0 {
		g.log.WithFields(logrus.Fields{"action": "fetch", "branches": len(fresh) + len(moved),
			"duration": time.Since(start).Round(time.Millisecond).String()}).Debug("fetched")
	}
	return out, nil
}

// freshDepth is the depth of a first fetch: 1, or everything for
// FullHistory.
func (g *GoGit) freshDepth() int {
	if g.full {
		return 0
	}
	return 1
}

func fetchSpec(branch string) config.RefSpec {
	return config.RefSpec("+" + plumbing.NewBranchReferenceName(branch).String() + ":" + trackingRef(branch).String())
}

func (g *GoGit) fetchSpecs(ctx context.Context, specs []config.RefSpec, depth int) error {
	ctx, cancel := g.netCtx(ctx)
	defer cancel()
	err := g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RemoteURL:  g.url,
		RefSpecs:   specs,
		Depth:      depth,
		Auth:       g.auth,
		Tags:       git.NoTags,
	})
	if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return g.red.err(fmt.Errorf("fetch %s: %w", g.redacted, err))
}

// Tree returns the files of commit, which must be in the cache (fetched),
// as a read-only file system reading the object store.
func (g *GoGit) Tree(ctx context.Context, commit string) (fs.FS, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := parseHash(commit)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repo == nil {
		if err := g.openCache(); err != nil {
			return nil, g.red.err(fmt.Errorf("read tree %s: %w", commit, err))
		}
	}
	c, err := g.repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("read tree of %s: commit not in cache (fetch it first): %w", commit, ErrRefNotFound)
	}
	if err != nil {
		g.suspect = true
		return nil, fmt.Errorf("read tree of %s: %w", commit, err)
	}
	return &treeFS{g: g, root: c.TreeHash}, nil
}

func parseHash(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("parse commit %q: not a 40-digit hex object id", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("parse commit %q: %w", s, err)
	}
	return plumbing.NewHash(s), nil
}

// signature returns who is named on a commit made from req.
func (g *GoGit) signatures(req CommitRequest) (author, committer object.Signature) {
	when := req.When
	if when.IsZero() {
		when = time.Now()
	}
	a := req.Author
	c := g.sig
	if a.Name == "" && a.Email == "" {
		a = c
	}
	if c.Name == "" && c.Email == "" {
		c = a
	}
	if a.Name == "" && a.Email == "" {
		a = Signature{Name: "Stoker", Email: "stoker@localhost"}
		c = a
	}
	return object.Signature{Name: a.Name, Email: a.Email, When: when},
		object.Signature{Name: c.Name, Email: c.Email, When: when}
}
