package review

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

// diffSide is where one side of `stoker diff` reads its manifests: a
// revision of a Git checkout or a plain directory.
type diffSide interface {
	// tree returns the manifests of this side.
	tree(ctx context.Context) (fs.FS, error)
	// branchTree returns the manifests of another branch of the same
	// checkout (a pool's stoker.dev/source-branch), or ok false when the
	// side cannot tell (a directory) or the branch is not there.
	branchTree(ctx context.Context, branch string) (tree fs.FS, name string, ok bool, err error)
}

type dirSide struct{ dir string }

func (d dirSide) tree(context.Context) (fs.FS, error) { return os.DirFS(d.dir), nil }

func (d dirSide) branchTree(context.Context, string) (fs.FS, string, bool, error) {
	return nil, "", false, nil
}

// gitSide reads revision rev of the checkout at dir with the git CLI, so
// every revision syntax git knows (origin/main, HEAD~1, a tag) works and
// worktrees and partial clones behave as they do for the user.
type gitSide struct{ dir, rev string }

func (g gitSide) tree(ctx context.Context) (fs.FS, error) { return readGitTree(ctx, g.dir, g.rev) }

func (g gitSide) branchTree(ctx context.Context, branch string) (fs.FS, string, bool, error) {
	for _, rev := range []string{"origin/" + branch, branch} {
		if _, err := runGit(ctx, g.dir, nil, "rev-parse", "--verify", "--quiet", rev+"^{commit}"); err != nil {
			continue
		}
		t, err := readGitTree(ctx, g.dir, rev)
		return t, rev, err == nil, err
	}
	return nil, "", false, nil
}

// readGitTree returns the files of rev under dir (paths relative to dir,
// as ls-tree lists them from there) as an in-memory FS: every manifest,
// and the other files a Butane file may read (up to maxLocalBytes each;
// symlinks as symlinks, so Butane refuses them as the hub does).
func readGitTree(ctx context.Context, dir, rev string) (fs.FS, error) {
	if _, err := runGit(ctx, dir, nil, "rev-parse", "--verify", "--quiet", rev+"^{commit}"); err != nil {
		return nil, fmt.Errorf("resolve revision %q in %s: %w", rev, dir, err)
	}
	out, err := runGit(ctx, dir, nil, "ls-tree", "-r", "-l", "-z", rev, "--", ".")
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", rev, dir, err)
	}
	var names, oids, modes []string
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		f := strings.Fields(meta) // mode type oid size
		if len(f) != 4 || f[1] != "blob" {
			continue
		}
		switch path.Ext(name) {
		case ".yaml", ".yml", ".bu":
		default:
			if size, err := strconv.ParseInt(f[3], 10, 64); err != nil || size > maxLocalBytes {
				continue
			}
		}
		names = append(names, name)
		oids = append(oids, f[2])
		modes = append(modes, f[0])
	}
	mfs := fstest.MapFS{}
	if len(oids) == 0 {
		return mfs, nil
	}
	blobs, err := runGit(ctx, dir, []byte(strings.Join(oids, "\n")+"\n"), "cat-file", "--batch")
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", rev, dir, err)
	}
	r := bufio.NewReader(bytes.NewReader(blobs))
	for i, name := range names {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("read %s:%s in %s: %w", rev, name, dir, err)
		}
		f := strings.Fields(header) // oid type size
		if len(f) != 3 || f[0] != oids[i] {
			return nil, fmt.Errorf("read %s:%s in %s: unexpected cat-file header %q", rev, name, dir, strings.TrimSpace(header))
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("read %s:%s in %s: bad size in %q", rev, name, dir, strings.TrimSpace(header))
		}
		data := make([]byte, size+1) // content and its trailing newline
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("read %s:%s in %s: %w", rev, name, dir, err)
		}
		mode := fs.FileMode(0o644)
		switch modes[i] {
		case "120000":
			mode = fs.ModeSymlink | 0o777
		case "100755":
			mode = 0o755
		}
		mfs[name] = &fstest.MapFile{Data: data[:size], Mode: mode}
	}
	return mfs, nil
}

// maxLocalBytes bounds the non-manifest files read for Butane's local
// files.
const maxLocalBytes = api.MaxYAMLBytes

// runGit runs the git CLI in dir and returns its standard output; the error
// carries its standard error.
func runGit(ctx context.Context, dir string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if msg != "" && errors.As(err, &ee) {
			return nil, fmt.Errorf("git %s: %s", args[0], msg)
		}
		return nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return stdout.Bytes(), nil
}
