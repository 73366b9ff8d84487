package nodeops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// faultFS wraps the real filesystem and, at the nth mutation of the state
// dir (journal, journal data, originals), either fails it with an I/O
// error or "crashes": panics before doing it, as a SIGKILL there would
// leave the disk.
type faultFS struct {
	osFileSystem
	stateDir string
	n, calls int
	crash    bool
	ops      []string
}

type crashed string

func (f *faultFS) hit(op, target string) error {
	if !strings.HasPrefix(target, f.stateDir+"/") {
		return nil
	}
	f.calls++
	rel, _ := filepath.Rel(f.stateDir, target)
	f.ops = append(f.ops, op+" "+rel)
	if f.calls != f.n {
		return nil
	}
	if f.crash {
		panic(crashed(op + " " + rel))
	}
	return fmt.Errorf("injected I/O error: %s %s", op, rel)
}

func (f *faultFS) WriteFile(target string, r io.Reader, o FileOptions) error {
	if err := f.hit("write", target); err != nil {
		return err
	}
	return f.osFileSystem.WriteFile(target, r, o)
}

func (f *faultFS) Remove(target string) error {
	if err := f.hit("remove", target); err != nil {
		return err
	}
	return f.osFileSystem.Remove(target)
}

func (f *faultFS) RemoveAll(dir string) error {
	if err := f.hit("remove-all", dir); err != nil {
		return err
	}
	return f.osFileSystem.RemoveAll(dir)
}

// run calls op, turning a faultFS crash into an error.
func run(op func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crashed)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("crashed at %s", string(c))
		}
	}()
	return op()
}

// TestJournalCleanupFaultsDoNotWedge fails (or crashes at) every state-dir
// mutation of a Rollback, a Commit and a Recover of an interrupted apply,
// then restarts with a fresh applier, as the agent does: Recover, then
// the same Rollback or Commit again. Every run must end at the old
// (rollback) or the new (commit) config with no journal and no journal
// data left. Before the fix the journal's backups were deleted before the
// journal, so a fault between the two left a journal pointing at backups
// that no longer exist, and every later recovery failed.
func TestJournalCleanupFaultsDoNotWedge(t *testing.T) {
	ctx := context.Background()
	type scenario struct {
		name string
		// prepare brings a to the point before the operation under test.
		prepare func(t *testing.T, a *Applier)
		op      func(a *Applier) error
		// retry is what a restarted agent does after Recover.
		retry func(a *Applier) error
		atNew bool
	}
	applyV2 := func(t *testing.T, a *Applier) { must(t, a.Apply(ctx, cfgV1(), cfgV2())) }
	scenarios := []scenario{
		{name: "rollback", prepare: applyV2,
			op:    func(a *Applier) error { return a.Rollback(ctx) },
			retry: func(a *Applier) error { return a.Rollback(ctx) }},
		{name: "commit", prepare: applyV2,
			op:    func(a *Applier) error { return a.Commit() },
			retry: func(a *Applier) error { return a.Commit() }, atNew: true},
		{name: "recover-interrupted", prepare: func(t *testing.T, a *Applier) {
			applyV2(t, a)
			j, err := ReadJournal(a.opts.StateDir)
			must(t, err)
			j.State = JournalApplying
			must(t, (&txn{a: a, j: *j}).save())
		},
			op:    func(a *Applier) error { _, err := a.Recover(ctx); return err },
			retry: func(a *Applier) error { return nil }},
	}
	for _, sc := range scenarios {
		for _, crash := range []bool{false, true} {
			mode := "io-error"
			if crash {
				mode = "crash"
			}
			for n := 1; ; n++ {
				name := fmt.Sprintf("%s/%s/op%d", sc.name, mode, n)
				past := false
				t.Run(name, func(t *testing.T) {
					root := newRoot(t)
					must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("orig\n"), 0o644))
					a := newApplier(t, root)
					must(t, a.Apply(ctx, nil, cfgV1()))
					must(t, a.Commit())
					old := snapshot(t, root)
					sc.prepare(t, a)
					ffs := &faultFS{stateDir: a.opts.StateDir, n: n, crash: crash}
					a.fs = ffs
					ferr := run(func() error { return sc.op(a) })
					if ffs.calls < n {
						past = true
						t.Skipf("only %d state-dir mutations: %v", ffs.calls, ffs.ops)
					}
					t.Logf("fault at %s: %v", ffs.ops[n-1], ferr)

					// The restarted agent.
					b := newApplierAt(t, root, a.opts.StateDir)
					if _, err := b.Recover(ctx); err != nil {
						t.Fatalf("recover after fault at %s: %v (node wedged)", ffs.ops[n-1], err)
					}
					if err := sc.retry(b); err != nil {
						t.Fatalf("retry after fault at %s: %v (node wedged)", ffs.ops[n-1], err)
					}
					if sc.atNew {
						findings, err := b.Validate(ctx, cfgV2())
						must(t, err)
						if len(findings) != 0 {
							t.Errorf("not at v2 after fault at %s: %+v", ffs.ops[n-1], findings)
						}
						// /etc/hosts left the config at v2: its original is
						// back in place and no longer kept.
						if got := read(t, root, "etc/hosts"); got != "orig\n" {
							t.Errorf("/etc/hosts = %q, want the original", got)
						}
						if _, err := os.Lstat(OrigPath(b.opts.StateDir, "/etc/hosts")); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("original of /etc/hosts still kept after commit: %v", err)
						}
					} else if got := withoutDirs(snapshot(t, root)); !reflect.DeepEqual(got, withoutDirs(old)) {
						t.Errorf("not at v1 after fault at %s:\nwant %v\ngot  %v", ffs.ops[n-1], old, got)
					}
					if j, err := ReadJournal(b.opts.StateDir); j != nil || err != nil {
						t.Errorf("journal left: %+v %v", j, err)
					}
					// The next apply starts clean: no stale journal data.
					if sc.atNew {
						must(t, b.Apply(ctx, cfgV2(), cfgV1()))
						must(t, b.Commit())
					} else {
						must(t, b.Apply(ctx, cfgV1(), cfgV2()))
						must(t, b.Rollback(ctx))
					}
					if _, err := os.Lstat(filepath.Join(b.opts.StateDir, journalDataDir)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("journal data left after a clean apply: %v", err)
					}
				})
				if past {
					break
				}
				if n > 50 {
					t.Fatal("too many mutations")
				}
			}
		}
	}
}

// TestApplyFinishesCommittedJournal: a commit whose cleanup failed after
// its commit point does not block the next apply (the drift monitor
// applies without a Recover in between).
func TestApplyFinishesCommittedJournal(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("orig\n"), 0o644))
	a := newApplier(t, root)
	must(t, a.Apply(ctx, nil, cfgV1()))
	must(t, a.Commit())
	must(t, a.Apply(ctx, cfgV1(), cfgV2()))
	a.fs = &faultFS{stateDir: a.opts.StateDir, n: 2} // 1: save committed, 2: drop an original
	if err := a.Commit(); err == nil {
		t.Fatal("Commit with a failing cleanup succeeded")
	}
	if j, _ := ReadJournal(a.opts.StateDir); j == nil || j.State != JournalCommitted {
		t.Fatalf("journal after the failed cleanup: %+v", j)
	}
	b := newApplierAt(t, root, a.opts.StateDir)
	must(t, b.Apply(ctx, cfgV2(), cfgV1()))
	must(t, b.Commit())
	findings, err := b.Validate(ctx, cfgV1())
	must(t, err)
	if len(findings) != 0 {
		t.Errorf("not at v1: %+v", findings)
	}
}
