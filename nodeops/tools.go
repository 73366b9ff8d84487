package nodeops

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Tools runs the host's helper binaries (rpm-ostree, bootc, grubby) and
// its lifecycle hooks (HookRunner). With
// an empty Chroot they come from the agent's PATH (the host itself, an
// offline tree, tests' stand-ins). With Chroot set they are the host's own
// binaries, found on HostPATH inside that root and run chrooted into it,
// as MCO's daemon runs rpm-ostree after chroot("/rootfs"): the agent's
// image needs none of them, and they see the host's /etc, /boot, /run
// (rpm-ostree reaches rpm-ostreed over the host's system bus) exactly as
// when run on the host.
type Tools struct {
	Chroot string
}

// toolsFor returns how h's tools are run.
func toolsFor(h Host) Tools {
	if h.chrooted() {
		return Tools{Chroot: h.Root}
	}
	return Tools{}
}

// Has reports whether bin can be run.
func (t Tools) Has(bin string) bool {
	_, err := t.look(bin)
	return err == nil
}

// look finds bin: on PATH, or on HostPATH inside the chroot (returning the
// path as seen inside it).
func (t Tools) look(bin string) (string, error) {
	if t.Chroot == "" {
		return exec.LookPath(bin)
	}
	for _, dir := range filepath.SplitList(HostPATH) {
		inside := filepath.Join(dir, bin)
		p, err := Resolve(t.Chroot, inside)
		if err != nil {
			continue
		}
		// Follow a final symlink inside the root only (securejoin).
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return inside, nil
		}
	}
	return "", fmt.Errorf("%s not found on %s inside %s: %w", bin, HostPATH, t.Chroot, fs.ErrNotExist)
}

// Command returns a command running bin with args on the host.
func (t Tools) Command(ctx context.Context, bin string, args ...string) (*exec.Cmd, error) {
	if t.Chroot == "" {
		return exec.CommandContext(ctx, bin, args...), nil
	}
	p, err := t.look(bin)
	if err != nil {
		return nil, err
	}
	return t.commandAt(ctx, p, args...), nil
}

// commandAt returns a command running the executable at p, an absolute
// path as the host sees it (inside the chroot when Chroot is set; a path
// on this machine otherwise). The caller has checked p. Lifecycle hooks
// run this way, exactly as the OS tools do.
func (t Tools) commandAt(ctx context.Context, p string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p, args...)
	if t.Chroot == "" {
		return cmd
	}
	// exec.Command resolved nothing (p is absolute); the child chroots
	// before execve, so p is looked up inside the host's root.
	cmd.Path = p
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + HostPATH, "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: t.Chroot}
	return cmd
}

// String names where tools come from, for messages.
func (t Tools) String() string {
	if t.Chroot == "" {
		return "PATH"
	}
	return "chroot " + t.Chroot
}

// trimOut is a command's stderr for an error message.
func trimOut(b []byte) string { return strings.TrimSpace(string(b)) }
