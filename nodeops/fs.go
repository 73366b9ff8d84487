package nodeops

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/renameio/v2"
)

// ErrUnsafePath is matched (errors.Is) by every refusal to touch a path:
// a relative path or one with "..", a target that is a symlink or not a
// regular file.
var ErrUnsafePath = errors.New("unsafe path")

// Resolve returns where host path p lives under root. p must be absolute
// and free of "..". Every directory above the last element is resolved
// with securejoin, as if root were "/", so no symlink can lead outside
// root; the last element is not followed, so callers Lstat it and refuse
// a symlink there.
func Resolve(root, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("resolve %q: %w: not absolute", p, ErrUnsafePath)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("resolve %q: %w: contains ..", p, ErrUnsafePath)
		}
	}
	clean := filepath.Clean(p)
	if clean == "/" {
		return "", fmt.Errorf("resolve %q: %w: is the root", p, ErrUnsafePath)
	}
	dir, err := securejoin.SecureJoinVFS(root, filepath.Dir(clean), safeLinks{root: filepath.Clean(root)})
	if err != nil {
		return "", fmt.Errorf("resolve %q under %s: %w", p, root, err)
	}
	return filepath.Join(dir, filepath.Base(clean)), nil
}

// ErrUnsafeSymlink is matched (errors.Is, along with ErrUnsafePath) by a
// refusal to follow a symlink in a parent directory of a managed path.
var ErrUnsafeSymlink = fmt.Errorf("%w: unsafe symlink", ErrUnsafePath)

// safeLinks is the securejoin VFS Resolve walks with. It follows a
// symlink in a parent directory only when systemd would in safe mode
// (chase()'s CHASE_SAFE): the link and the directory holding it are owned
// by root (or by the agent's own user, which can write there anyway) and
// the directory is writable by no one else. RHCOS's /home, /root, /opt,
// /srv and /usr/local -> /var links pass; a link a user planted in /tmp
// or in their own directory does not, so Stoker, as root, never writes —
// or deletes — through it.
type safeLinks struct{ root string }

func (v safeLinks) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }

func (v safeLinks) Readlink(name string) (string, error) {
	if err := v.check(name); err != nil {
		return "", err
	}
	return os.Readlink(name)
}

func (v safeLinks) check(link string) error {
	link = filepath.Clean(link)
	host := "/" + strings.TrimPrefix(strings.TrimPrefix(link, v.root), "/")
	lfi, err := os.Lstat(link)
	if err != nil {
		return err
	}
	dfi, err := os.Lstat(filepath.Dir(link))
	if err != nil {
		return err
	}
	trusted := func(fi os.FileInfo) bool {
		st, ok := fi.Sys().(*syscall.Stat_t)
		return ok && (st.Uid == 0 || int(st.Uid) == os.Geteuid())
	}
	switch {
	case !trusted(lfi):
		return fmt.Errorf("symlink %s: %w: the link is not owned by root", host, ErrUnsafeSymlink)
	case !trusted(dfi):
		return fmt.Errorf("symlink %s: %w: %s is not owned by root", host, ErrUnsafeSymlink, filepath.Dir(host))
	case dfi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("symlink %s: %w: %s is writable by others (mode %04o)", host, ErrUnsafeSymlink, filepath.Dir(host), dfi.Mode().Perm())
	}
	return nil
}

// FileOptions are the attributes WriteFile gives a file.
type FileOptions struct {
	// Mode is the permission bits (no type bits); 0 means 0644.
	Mode os.FileMode
	// UID and GID own the file; -1 leaves the owner the process's.
	UID, GID int
	// DirMode is used for parent directories WriteFile creates; 0 means 0755.
	DirMode os.FileMode
}

// WriteFile atomically replaces the regular file at host path target (an
// already-resolved path, see Resolve) with data: a temporary file in the
// target's directory is written, chmod-ed, chown-ed, fsync-ed, closed and
// renamed over target, then the directory is fsync-ed. The rename is done
// relative to an open handle on the directory, and target is checked with
// Lstat right before it, so a target swapped for a symlink or a directory
// after planning is refused and left alone. On any error the temporary
// file is removed and target is unchanged.
//
// It is the one atomic write of the project: state files use it too.
func WriteFile(target string, data []byte, o FileOptions) error {
	return writeFrom(target, bytes.NewReader(data), o)
}

// writeFrom is WriteFile streaming its content from r, so a large file
// is never held in memory.
func writeFrom(target string, r io.Reader, o FileOptions) error {
	mode := o.Mode
	if mode == 0 {
		mode = 0o644
	}
	dirMode := o.DirMode
	if dirMode == 0 {
		dirMode = 0o755
	}
	dir, base := filepath.Split(target)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("write %s: create parent: %w", target, err)
	}
	droot, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("write %s: open parent: %w", target, err)
	}
	defer droot.Close()
	if err := checkRegular(droot, base, target); err != nil {
		return err
	}
	pf, err := renameio.NewPendingFile(base, renameio.WithRoot(droot), renameio.WithStaticPermissions(mode.Perm()))
	if err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", target, err)
	}
	defer pf.Cleanup() //nolint:errcheck // no-op after a successful replace
	if _, err := io.Copy(pf, r); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if o.UID >= 0 || o.GID >= 0 {
		if err := pf.Chown(o.UID, o.GID); err != nil {
			return fmt.Errorf("write %s: chown %d:%d: %w", target, o.UID, o.GID, err)
		}
	}
	// chown clears setuid/setgid bits, so set the mode last.
	if err := pf.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: chmod %o: %w", target, mode, err)
	}
	// Check again at the last moment: the window for a swap is now only
	// between this Lstat and the rename.
	if err := checkRegular(droot, base, target); err != nil {
		return err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %s: replace: %w", target, err)
	}
	return syncDir(dir)
}

// checkRegular refuses a target that exists and is not a regular file.
func checkRegular(droot *os.Root, base, target string) error {
	fi, err := droot.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("write %s: %w: target is a symlink", target, ErrUnsafePath)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("write %s: %w: target is a %s, not a regular file", target, ErrUnsafePath, fi.Mode().Type())
	}
	return nil
}

// removeFile removes the regular file or symlink at target, if any, and
// fsyncs its directory. It refuses directories.
func removeFile(target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", target, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("remove %s: %w: is a directory", target, ErrUnsafePath)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", target, err)
	}
	return syncDir(filepath.Dir(target))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Account is one line of a passwd or group file.
type Account struct {
	Name string
	ID   int
	// GID and Home are set for passwd entries only.
	GID  int
	Home string
}

// LookupUser finds name in root's /etc/passwd (not the host's, unless
// root is "/": the node's own accounts are what matter).
func LookupUser(root, name string) (Account, error) {
	return lookupAccount(root, PasswdFile, func(a Account) bool { return a.Name == name }, name)
}

// LookupGroup finds name in root's /etc/group.
func LookupGroup(root, name string) (Account, error) {
	return lookupAccount(root, GroupFile, func(a Account) bool { return a.Name == name }, name)
}

func lookupAccount(root, file string, match func(Account) bool, what string) (Account, error) {
	p, err := Resolve(root, file)
	if err != nil {
		return Account{}, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return Account{}, fmt.Errorf("look up %s in %s: %w", what, file, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		a := Account{Name: f[0], ID: id}
		if file == PasswdFile && len(f) >= 6 {
			a.GID, _ = strconv.Atoi(f[3])
			a.Home = f[5]
		}
		if match(a) {
			return a, nil
		}
	}
	return Account{}, fmt.Errorf("look up %s in %s: %w", what, file, fs.ErrNotExist)
}
