package nodeops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrJournalPending is returned by Apply while an earlier apply's journal
// is still in the state dir: call Recover, then Commit or Rollback.
var ErrJournalPending = errors.New("an earlier apply is not committed or rolled back")

// Journal states. A journal moves applying → applied → committed and
// then leaves the state dir; a rollback from applying or applied ends by
// removing it. See the package doc for the ordering rules.
const (
	// JournalApplying: Apply was interrupted; Recover rolls it back.
	JournalApplying = "applying"
	// JournalApplied: Apply finished; the caller must Commit or Rollback.
	JournalApplied = "applied"
	// JournalCommitted: Commit passed its commit point; only cleanup is
	// left, which Recover (or Commit again) finishes. Nothing is rolled
	// back from here.
	JournalCommitted = "committed"
)

// ErrCommitted is returned by Rollback for an apply that is already
// committed: it can no longer be undone.
var ErrCommitted = errors.New("apply is already committed")

// Journal is the applier's write-ahead log, kept in the state dir as
// apply-journal.json until Commit or Rollback.
type Journal struct {
	State   string         `json:"state"`
	From    string         `json:"from,omitempty"`
	To      string         `json:"to"`
	Started time.Time      `json:"started"`
	Entries []journalEntry `json:"entries,omitempty"`
}

type journalEntry struct {
	// Op: file, orig-saved, orig-drop, unit, kargs, image.
	Op   string `json:"op"`
	Path string `json:"path,omitempty"`
	// For file: whether it existed, and where its old content is kept.
	Existed bool        `json:"existed,omitempty"`
	Backup  string      `json:"backup,omitempty"`
	Mode    os.FileMode `json:"mode,omitempty"`
	UID     int         `json:"uid,omitempty"`
	GID     int         `json:"gid,omitempty"`
	// For unit: its unit file state before.
	Unit      string `json:"unit,omitempty"`
	PrevState string `json:"prevState,omitempty"`
	// For kargs: what was appended and deleted; for image: the previous one.
	Add       []string `json:"add,omitempty"`
	Remove    []string `json:"remove,omitempty"`
	PrevImage string   `json:"prevImage,omitempty"`
}

type txn struct {
	a   *Applier
	j   Journal
	ctx context.Context
}

// ReadJournal returns the journal in stateDir, or nil when there is none.
func ReadJournal(stateDir string) (*Journal, error) {
	data, err := os.ReadFile(JournalPath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read apply journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("read apply journal %s: %w", JournalPath(stateDir), err)
	}
	return &j, nil
}

func (t *txn) save() error {
	data, err := json.MarshalIndent(t.j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode apply journal: %w", err)
	}
	return t.a.fs.WriteFile(JournalPath(t.a.opts.StateDir), bytes.NewReader(data), FileOptions{Mode: 0o600, UID: -1, GID: -1, DirMode: 0o700})
}

func (t *txn) record(e journalEntry) error {
	t.j.Entries = append(t.j.Entries, e)
	return t.save()
}

// undo reverts the journal's entries newest first and removes the journal
// when all succeeded. Every undo is idempotent, so a crash during undo is
// repaired by running it again.
func (a *Applier) undo(ctx context.Context, j *Journal) error {
	// A rollback must finish even when the apply's context was cancelled
	// (the agent stopping on SIGTERM mid-apply): it runs on a context that
	// outlives ctx, bounded by RollbackTimeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RollbackTimeout)
	defer cancel()
	var errs []error
	for i := len(j.Entries) - 1; i >= 0; i-- {
		if err := a.undoEntry(ctx, j.Entries[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return a.dropJournal()
}

func (a *Applier) undoEntry(ctx context.Context, e journalEntry) error {
	switch e.Op {
	case "file":
		target, err := Resolve(a.opts.Root, e.Path)
		if err != nil {
			return err
		}
		if !e.Existed {
			if err := a.fs.Remove(target); err != nil {
				return fmt.Errorf("undo %s: %w", e.Path, err)
			}
			return nil
		}
		if _, err := os.Lstat(e.Backup); err != nil {
			return fmt.Errorf("undo %s: read journal copy: %w", e.Path, err)
		}
		if err := removeSymlink(target); err != nil {
			return fmt.Errorf("undo %s: %w", e.Path, err)
		}
		if err := a.copyTo(target, e.Backup, FileOptions{Mode: e.Mode, UID: e.UID, GID: e.GID}); err != nil {
			return fmt.Errorf("undo %s: %w", e.Path, err)
		}
	case "orig-saved":
		if err := a.fs.Remove(OrigPath(a.opts.StateDir, e.Path)); err != nil {
			return fmt.Errorf("undo original of %s: %w", e.Path, err)
		}
	case "orig-drop":
		// Nothing was dropped yet: originals go at Commit.
	case "unit":
		if err := a.restoreUnit(ctx, e.Unit, e.PrevState); err != nil {
			return fmt.Errorf("undo unit %s (back to %s): %w", e.Unit, e.PrevState, err)
		}
	case "kargs":
		// Undo only what is still to undo: the step may not have run
		// (crash after journaling it), or this undo may have run already
		// (crash after it); rpm-ostree refuses to delete an argument that
		// is not there.
		add, remove := e.Remove, e.Add
		if have, err := a.opts.OS.KernelArgs(ctx); err == nil {
			add, _ = missingArgs(e.Remove, have)
			remove = presentArgs(e.Add, have)
		}
		if len(add)+len(remove) == 0 {
			return nil
		}
		// A backend that cannot change kernel arguments cannot have
		// changed them either: the journaled step failed, nothing to undo.
		if err := a.opts.OS.UpdateKernelArgs(ctx, add, remove); err != nil && !errors.Is(err, ErrUnsupported) {
			return fmt.Errorf("undo kernel arguments: %w", err)
		}
	case "image":
		if e.PrevImage == "" {
			return fmt.Errorf("undo OS image switch: no previous image known; the staged deployment must be removed by hand")
		}
		if err := a.opts.OS.SwitchImage(ctx, e.PrevImage); err != nil {
			return fmt.Errorf("undo OS image switch: %w", err)
		}
	default:
		return fmt.Errorf("undo: unknown journal entry %q", e.Op)
	}
	return nil
}

// removeSymlink removes target if it is a symlink (one planted between
// plan and write is not followed, only removed on undo).
func removeSymlink(target string) error {
	fi, err := os.Lstat(target)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	return os.Remove(target)
}

func (a *Applier) restoreUnit(ctx context.Context, unit, prev string) error {
	sd := a.opts.Systemd
	now, err := sd.UnitFileState(ctx, unit)
	if err != nil {
		return err
	}
	if now == prev {
		return nil
	}
	if prev == "masked" {
		return sd.Mask(ctx, unit)
	}
	if now == "masked" {
		if err := sd.Unmask(ctx, unit); err != nil {
			return err
		}
	}
	switch prev {
	case "enabled":
		return sd.Enable(ctx, unit)
	case "disabled":
		return sd.Disable(ctx, unit)
	}
	return nil
}

// dropJournal removes the journal, then its data: the record goes before
// the backups it points to, so a crash between the two leaves only
// unreferenced data, which the next Recover or Apply removes. A failure
// to remove the data is logged, not returned: the operation is complete
// once the journal is gone.
func (a *Applier) dropJournal() error {
	if err := a.fs.Remove(JournalPath(a.opts.StateDir)); err != nil {
		return fmt.Errorf("remove apply journal: %w", err)
	}
	a.dropStaleData()
	return nil
}

// dropStaleData removes the journal data dir; callers make sure no
// journal points at it.
func (a *Applier) dropStaleData() {
	dir := filepath.Join(a.opts.StateDir, journalDataDir)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err := a.fs.RemoveAll(dir); err != nil {
		a.opts.Log.WithError(err).WithField("path", dir).Warn("remove unreferenced apply journal data")
	}
}

// load reads the journal. A journal whose data dir is gone is one whose
// cleanup was cut short by an older Stoker (which removed the data before
// the journal): the operation it records had finished, so the journal is
// removed and treated as absent.
func (a *Applier) load() (*Journal, error) {
	j, err := ReadJournal(a.opts.StateDir)
	if err != nil || j == nil {
		return j, err
	}
	if _, err := os.Lstat(filepath.Join(a.opts.StateDir, journalDataDir)); errors.Is(err, fs.ErrNotExist) {
		a.opts.Log.WithFields(logrus.Fields{"rendered": j.To, "stage": j.State}).Warn("removing an apply journal whose cleanup was interrupted")
		if err := a.fs.Remove(JournalPath(a.opts.StateDir)); err != nil {
			return nil, fmt.Errorf("remove finished apply journal: %w", err)
		}
		return nil, nil
	}
	return j, nil
}

// finish completes a committed journal: the originals of files that left
// the config are dropped, then the journal, then its data. Each step is
// idempotent, so a crash anywhere is finished by calling it again.
func (a *Applier) finish(j *Journal) error {
	for _, e := range j.Entries {
		if e.Op == "orig-drop" {
			if err := a.fs.Remove(OrigPath(a.opts.StateDir, e.Path)); err != nil {
				return fmt.Errorf("commit apply of %s: drop original of %s: %w", j.To, e.Path, err)
			}
		}
	}
	if err := a.dropJournal(); err != nil {
		return fmt.Errorf("commit apply of %s: %w", j.To, err)
	}
	return nil
}

// Recover finishes what a crash interrupted. With no journal it returns
// nil, nil. A journal still "applying" is rolled back (the returned
// journal says what was undone). A "committed" journal's cleanup is
// finished. A journal "applied" is returned as is: the caller decides
// from its own persisted stage whether to Commit (it reached or passed
// the reboot) or Rollback.
func (a *Applier) Recover(ctx context.Context) (*Journal, error) {
	if _, err := a.SweepTemp(); err != nil {
		a.opts.Log.WithError(err).Warn("sweep temporary files")
	}
	j, err := a.load()
	if err != nil {
		return nil, err
	}
	if j == nil {
		a.dropStaleData()
		return nil, nil
	}
	switch j.State {
	case JournalApplying:
		a.opts.Log.WithField("rendered", j.To).Warn("rolling back an interrupted apply")
		if err := a.undo(ctx, j); err != nil {
			return j, fmt.Errorf("recover: roll back interrupted apply of %s: %w", j.To, err)
		}
	case JournalCommitted:
		a.opts.Log.WithField("rendered", j.To).Info("finishing an interrupted commit")
		if err := a.finish(j); err != nil {
			return j, fmt.Errorf("recover: %w", err)
		}
	}
	return j, nil
}

// Rollback undoes an applied but uncommitted apply (journal state
// "applied" or "applying"): files, units, ssh keys, kernel arguments and
// the OS image go back to what they were. Without a journal it does
// nothing. A committed apply is not undone: its cleanup is finished and
// ErrCommitted returned.
func (a *Applier) Rollback(ctx context.Context) error {
	j, err := a.load()
	if err != nil || j == nil {
		return err
	}
	if j.State == JournalCommitted {
		if err := a.finish(j); err != nil {
			return err
		}
		return fmt.Errorf("roll back apply of %s: %w", j.To, ErrCommitted)
	}
	if err := a.undo(ctx, j); err != nil {
		return fmt.Errorf("roll back apply of %s: %w", j.To, err)
	}
	return nil
}

// Commit makes an applied config final. Saving the journal as
// "committed" is the one commit point: before it the apply can still be
// rolled back, after it only cleanup is left (originals of files that
// left the config are dropped, then the journal, then its data), which
// Commit or Recover finishes after a crash. Without a journal it does
// nothing, so it is safe to call again.
func (a *Applier) Commit() error {
	j, err := a.load()
	if err != nil || j == nil {
		return err
	}
	switch j.State {
	case JournalApplied:
		j.State = JournalCommitted
		if err := (&txn{a: a, j: *j}).save(); err != nil {
			return fmt.Errorf("commit apply of %s: %w", j.To, err)
		}
	case JournalCommitted:
	default:
		return fmt.Errorf("commit apply of %s: journal is %s, not %s", j.To, j.State, JournalApplied)
	}
	return a.finish(j)
}
