package nodeops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
)

// ApplierOptions configure an Applier.
type ApplierOptions struct {
	// Root is the host's root: "/" in production.
	Root string
	// StateDir holds the journal and the originals (a host path, not
	// under Root).
	StateDir string
	// CoreUser owns the ssh keys; default "core".
	CoreUser string
	// MaxFileBytes and MaxConfigBytes bound a file's and a config's
	// decompressed contents; zero means api.DefaultMaxFileBytes and
	// api.DefaultMaxConfigBytes, the hub's limits.
	MaxFileBytes   int64
	MaxConfigBytes int64
	Systemd        Systemd
	// OS applies kernel arguments and OS image changes; nil means none.
	OS  OSBackend
	Log logrus.FieldLogger
}

// Applier moves a node's files, units, ssh keys, kernel arguments and OS
// image from one rendered config to another, transactionally. Every step
// is recorded in a write-ahead journal in the state dir before it is
// done, so a failure — or a crash at any instant followed by Recover —
// puts everything back as it was.
type Applier struct {
	opts ApplierOptions
	fs   fileSystem
}

// fileSystem is the seam the applier mutates files through; tests wrap
// osFileSystem to inject failures.
// Managed files, the journal, its data and the originals all go through
// it, so a test can fail (or "crash" at) any step of an apply, a rollback
// or a commit, including the journal's own cleanup.
type fileSystem interface {
	WriteFile(target string, r io.Reader, o FileOptions) error
	Remove(target string) error
	RemoveAll(dir string) error
}

type osFileSystem struct{}

func (osFileSystem) WriteFile(t string, r io.Reader, o FileOptions) error { return writeFrom(t, r, o) }
func (osFileSystem) Remove(t string) error                                { return removeFile(t) }
func (osFileSystem) RemoveAll(d string) error                             { return os.RemoveAll(d) }

// NewApplier checks opts and returns an Applier.
func NewApplier(opts ApplierOptions) (*Applier, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.StateDir == "" {
		return nil, errors.New("new applier: state dir is required")
	}
	if opts.CoreUser == "" {
		opts.CoreUser = api.DefaultCoreUser
	}
	if opts.Systemd == nil {
		return nil, errors.New("new applier: systemd is required")
	}
	if opts.OS == nil {
		opts.OS = noneBackend{}
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(ioDiscard{})
		opts.Log = l
	}
	return &Applier{opts: opts, fs: osFileSystem{}}, nil
}

func (a *Applier) limits() limits {
	l := limits{file: a.opts.MaxFileBytes, config: a.opts.MaxConfigBytes}
	if l.file <= 0 {
		l.file = api.DefaultMaxFileBytes
	}
	if l.config <= 0 {
		l.config = api.DefaultMaxConfigBytes
	}
	return l
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// StepError names the step of Apply that failed.
type StepError struct {
	Step string
	Err  error
	// RollbackErr is set when undoing the steps already done failed too;
	// the journal is then kept so Recover can try again.
	RollbackErr error
	// NothingWritten is set when the step failed before any change.
	NothingWritten bool
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("apply: %s: %v", e.Step, e.Err)
	switch {
	case e.NothingWritten:
		s += " (nothing written)"
	case e.RollbackErr != nil:
		s += fmt.Sprintf(" (rollback failed: %v)", e.RollbackErr)
	default:
		s += " (rolled back)"
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// RollbackTimeout bounds an undo, which runs on a context that outlives
// the caller's (see undo).
const RollbackTimeout = 2 * time.Minute

// Apply moves the node from config from (nil: nothing managed yet) to
// config to. On success the journal is left in state "applied": the
// caller persists that it applied to, does its reloads or reboot, and
// then calls Commit (or Rollback to go back). On failure every change
// already made is undone before Apply returns a *StepError naming the
// step. Hostile input (paths with "..", a symlink where a file goes) is
// refused before anything is written.
func (a *Applier) Apply(ctx context.Context, from, to *api.Rendered) error {
	if to == nil {
		return errors.New("apply: no target config")
	}
	j, err := a.load()
	if err != nil {
		return err
	}
	if j != nil && j.State == JournalCommitted {
		// Past its commit point: only cleanup was left; finish it.
		if err := a.finish(j); err != nil {
			return fmt.Errorf("apply %s: %w", to.Name, err)
		}
		j = nil
	}
	if j != nil {
		return fmt.Errorf("apply %s: %w (journal for %s, state %s)", to.Name, ErrJournalPending, j.To, j.State)
	}
	log := a.opts.Log.WithField("rendered", to.Name)
	log.Info("apply starting")
	// Check: build both desired states and check every target before
	// writing anything.
	if err := a.Reconcilable(from, to); err != nil {
		return &StepError{Step: "check target config", Err: err, NothingWritten: true}
	}
	if err := storageNodesReconcilable(from, to); err != nil {
		return &StepError{Step: "check target config", Err: err, NothingWritten: true}
	}
	fromD, err := buildDesired(a.opts.Root, a.opts.CoreUser, from, a.limits())
	if err != nil {
		return &StepError{Step: "check current config", Err: err, NothingWritten: true}
	}
	toD, err := buildDesired(a.opts.Root, a.opts.CoreUser, to, a.limits())
	if err != nil {
		return &StepError{Step: "check target config", Err: err, NothingWritten: true}
	}
	for _, p := range append(toD.paths(), fromD.paths()...) {
		if _, err := a.resolveRegular(p); err != nil {
			return &StepError{Step: "check " + p, Err: err, NothingWritten: true}
		}
	}
	t := &txn{a: a, ctx: ctx, j: Journal{State: JournalApplying, To: to.Name, Started: time.Now().UTC()}}
	if from != nil {
		t.j.From = from.Name
	}
	// No journal points at journal data now: whatever a crashed cleanup
	// left there is garbage.
	a.dropStaleData()
	if err := os.MkdirAll(filepath.Join(a.opts.StateDir, journalDataDir), 0o700); err != nil {
		return &StepError{Step: "create journal", Err: err, NothingWritten: true}
	}
	if err := t.save(); err != nil {
		return &StepError{Step: "create journal", Err: err, NothingWritten: true}
	}
	if step, err := t.run(fromD, toD, from, to); err != nil {
		log.WithError(err).WithField("step", step).Warn("apply failed; rolling back")
		se := &StepError{Step: step, Err: err}
		if rerr := a.undo(ctx, &t.j); rerr != nil {
			se.RollbackErr = rerr
		}
		return se
	}
	t.j.State = JournalApplied
	if err := t.save(); err != nil {
		se := &StepError{Step: "mark journal applied", Err: err}
		if rerr := a.undo(ctx, &t.j); rerr != nil {
			se.RollbackErr = rerr
		}
		return se
	}
	log.Info("apply finished")
	return nil
}

func (t *txn) run(fromD, toD *desired, from, to *api.Rendered) (string, error) {
	a := t.a
	sd := a.opts.Systemd
	toUnits := map[string]bool{}
	for _, u := range toD.units {
		toUnits[u.Name] = true
	}
	// 1. Units leaving the config: disable (and unmask) before their
	// files go, so no dangling enablement symlinks remain.
	for _, u := range fromD.units {
		if toUnits[u.Name] {
			continue
		}
		if err := t.setUnit(u.Name, func(state string) error {
			if state == "masked" {
				if err := sd.Unmask(t.ctx, u.Name); err != nil {
					return err
				}
			}
			if u.Enabled != nil && *u.Enabled && state != "not-found" {
				return sd.Disable(t.ctx, u.Name)
			}
			return nil
		}); err != nil {
			return "disable leaving unit " + u.Name, err
		}
	}
	// 2. Write every file of the target config that differs on disk.
	for _, p := range toD.paths() {
		f := toD.files[p]
		if err := t.writeManaged(f, fromD); err != nil {
			return "write " + string(f.Kind) + " " + p, err
		}
	}
	if len(toD.sshDirs) > 0 {
		if err := t.fixSSHDirs(toD); err != nil {
			return "set ssh directory owner", err
		}
	}
	// 3. Files leaving the config: restore the original or remove.
	for _, p := range fromD.paths() {
		if _, stays := toD.files[p]; stays {
			continue
		}
		if err := t.removeManaged(p); err != nil {
			return "remove " + string(fromD.files[p].Kind) + " " + p, err
		}
	}
	// 4. Unit enablement and masks of the target config.
	for _, u := range toD.units {
		if err := t.setUnit(u.Name, func(state string) error {
			switch {
			case u.Mask:
				if state != "masked" {
					return sd.Mask(t.ctx, u.Name)
				}
				return nil
			case state == "masked":
				if err := sd.Unmask(t.ctx, u.Name); err != nil {
					return err
				}
			}
			if u.Enabled == nil {
				return nil
			}
			if *u.Enabled {
				return sd.Enable(t.ctx, u.Name)
			}
			return sd.Disable(t.ctx, u.Name)
		}); err != nil {
			return "set enablement of unit " + u.Name, err
		}
	}
	// 5. Kernel arguments, then 6. the OS image: last, as they are the
	// slowest and only take effect at the next boot.
	add, remove := api.KernelArgsDiff(from, to)
	if len(add)+len(remove) > 0 {
		if err := t.record(journalEntry{Op: "kargs", Add: add, Remove: remove}); err != nil {
			return "journal kernel arguments", err
		}
		if err := a.opts.OS.UpdateKernelArgs(t.ctx, add, remove); err != nil {
			return "update kernel arguments", err
		}
	}
	var prevImage string
	if from != nil {
		prevImage = from.OSImageURL
	}
	if to.OSImageURL != prevImage && to.OSImageURL != "" {
		if err := t.record(journalEntry{Op: "image", PrevImage: prevImage}); err != nil {
			return "journal OS image", err
		}
		if err := a.opts.OS.SwitchImage(t.ctx, to.OSImageURL); err != nil {
			return "switch OS image", err
		}
	}
	return "", nil
}

// resolveRegular resolves p under the root and refuses a symlink or a
// non-regular file there.
func (a *Applier) resolveRegular(p string) (string, error) {
	target, err := Resolve(a.opts.Root, p)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return target, nil
	}
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", p, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "", fmt.Errorf("%s: %w: is a symlink", p, ErrUnsafePath)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w: is a %s, not a regular file", p, ErrUnsafePath, fi.Mode().Type())
	}
	return target, nil
}

// copyTo streams the regular file at src into dst with o, through the
// applier's filesystem; nothing is held in memory.
func (a *Applier) copyTo(dst, src string, o FileOptions) error {
	f, _, err := openRegular(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return a.fs.WriteFile(dst, f, o)
}

// journalFile records a file's current state in the journal (its old
// content copied into the journal's data dir first), so the change about
// to be made can be undone.
func (t *txn) journalFile(p, target string) error {
	st, exists, err := statFile(target)
	if err != nil {
		return err
	}
	e := journalEntry{Op: "file", Path: p, Existed: exists, Mode: st.Mode, UID: st.UID, GID: st.GID}
	if exists {
		e.Backup = filepath.Join(t.a.opts.StateDir, journalDataDir, strconv.Itoa(len(t.j.Entries)))
		if err := t.a.copyTo(e.Backup, target, FileOptions{Mode: 0o600, UID: -1, GID: -1, DirMode: 0o700}); err != nil {
			return fmt.Errorf("back up %s into the journal: %w", p, err)
		}
	}
	return t.record(e)
}

func (t *txn) writeManaged(f managedFile, fromD *desired) error {
	target, err := t.a.resolveRegular(f.Path)
	if err != nil {
		return err
	}
	st, exists, err := statFile(target)
	if err != nil {
		return err
	}
	if exists && st.Digest == f.C.Digest && st.Mode == f.Mode && st.UID == f.UID && st.GID == f.GID {
		return nil
	}
	// MCO's .mcdorig: keep the original of a file Stoker did not manage
	// yet, once, so it comes back when the file leaves the config.
	_, managedBefore := fromD.files[f.Path]
	if exists && !managedBefore {
		orig := OrigPath(t.a.opts.StateDir, f.Path)
		if _, err := os.Lstat(orig); errors.Is(err, fs.ErrNotExist) {
			if err := t.record(journalEntry{Op: "orig-saved", Path: f.Path}); err != nil {
				return err
			}
			if err := t.a.copyTo(orig, target, FileOptions{Mode: st.Mode, UID: st.UID, GID: st.GID, DirMode: 0o700}); err != nil {
				return fmt.Errorf("save original of %s: %w", f.Path, err)
			}
		}
	}
	if err := t.journalFile(f.Path, target); err != nil {
		return err
	}
	dirMode := os.FileMode(0o755)
	if f.Kind == api.ChangeSSHKey {
		dirMode = 0o700
	}
	r, err := f.C.open()
	if err != nil {
		return err
	}
	return t.a.fs.WriteFile(target, r, FileOptions{Mode: f.Mode, UID: f.UID, GID: f.GID, DirMode: dirMode})
}

func (t *txn) removeManaged(p string) error {
	target, err := t.a.resolveRegular(p)
	if err != nil {
		return err
	}
	if err := t.journalFile(p, target); err != nil {
		return err
	}
	orig := OrigPath(t.a.opts.StateDir, p)
	st, exists, err := statFile(orig)
	if err != nil {
		return fmt.Errorf("read original of %s: %w", p, err)
	}
	if !exists {
		return t.a.fs.Remove(target)
	}
	// The original is dropped only at Commit, so a rollback can still
	// find it.
	if err := t.record(journalEntry{Op: "orig-drop", Path: p}); err != nil {
		return err
	}
	return t.a.copyTo(target, orig, FileOptions{Mode: st.Mode, UID: st.UID, GID: st.GID})
}

func (t *txn) fixSSHDirs(d *desired) error {
	for _, dir := range d.sshDirs {
		target, err := Resolve(t.a.opts.Root, dir)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(target)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w: not a directory", dir, ErrUnsafePath)
		}
		if err := os.Lchown(target, d.sshUID, d.sshGID); err != nil {
			return err
		}
		if err := os.Chmod(target, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) setUnit(unit string, change func(state string) error) error {
	state, err := t.a.opts.Systemd.UnitFileState(t.ctx, unit)
	if err != nil {
		return err
	}
	if err := t.record(journalEntry{Op: "unit", Unit: unit, PrevState: state}); err != nil {
		return err
	}
	return change(state)
}
