package nodeops

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestSweepTemp: temporary files of killed atomic writes (renameio's
// ".<name><digits>") go, next to managed files, their originals and in
// the state dir; a user's look-alikes stay.
func TestSweepTemp(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("orig\n"), 0o644))
	a := newApplier(t, root)
	must(t, a.Apply(ctx, nil, cfgV1()))
	must(t, a.Commit())
	sd := a.opts.StateDir
	plant := func(p string) string {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte("x"), 0o600))
		return p
	}
	gone := []string{
		plant(filepath.Join(root, "etc/.chrony.conf8674665223082153551")),
		plant(filepath.Join(root, "etc/stoker/.leaves.conf12")),
		plant(filepath.Join(root, "etc/systemd/system/.a.service5")),
		plant(filepath.Join(root, "etc/systemd/system/a.service.d/.10-env.conf77")),
		plant(filepath.Join(sd, "orig/etc/.hosts4242")),
		plant(filepath.Join(sd, ".apply-journal.json123")),
		plant(filepath.Join(sd, ".agent-state.json9")),
	}
	kept := []string{
		plant(filepath.Join(root, "etc/.chrony.conf")),         // no digits
		plant(filepath.Join(root, "etc/.chrony.conf.bak1")),    // not the pattern
		plant(filepath.Join(root, "etc/.passwd123")),           // passwd is not managed
		plant(filepath.Join(root, "etc/stoker/.other.conf12")), // nor other.conf
		plant(filepath.Join(root, "var/lib/.chrony1")),         // chrony is a dir, not managed
		plant(filepath.Join(sd, "git/.x123")),                  // not a dir the sweep owns
		plant(filepath.Join(sd, "agent.lock")),
	}
	must(t, os.MkdirAll(filepath.Join(root, "etc/.hosts555"), 0o755)) // a directory
	kept = append(kept, filepath.Join(root, "etc/.hosts555"))

	removed, err := a.SweepTemp(cfgV1())
	must(t, err)
	if len(removed) != len(gone) {
		t.Errorf("removed %d files, want %d: %v", len(removed), len(gone), removed)
	}
	for _, p := range gone {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not swept: %v", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s swept, but it is not a temporary file of Stoker's: %v", p, err)
		}
	}
	for _, p := range []string{"etc/chrony.conf", "etc/hosts", "etc/stoker/leaves.conf"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("managed %s gone: %v", p, err)
		}
	}

	// Recover sweeps next to what the journal names, without configs: a
	// write of v2 killed before its rename.
	must(t, a.Apply(ctx, cfgV1(), cfgV2()))
	j, err := ReadJournal(sd)
	must(t, err)
	j.State = JournalApplying
	must(t, (&txn{a: a, j: *j}).save())
	tmp := plant(filepath.Join(root, "etc/stoker/.new.conf31337"))
	b := newApplierAt(t, root, sd)
	_, err = b.Recover(ctx)
	must(t, err)
	if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Recover left %s: %v", tmp, err)
	}
}
