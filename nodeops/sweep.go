package nodeops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"stoker.dev/stoker/api"
)

// Temporary files of atomic writes. WriteFile (renameio) writes
// <dir>/.<name><random decimal> and renames it over <dir>/<name>; a write
// killed before the rename leaves that file behind. Only names of exactly
// that pattern next to a file Stoker writes are swept, so a user's file is
// never touched:
//
//   - in a managed directory, ".<base><digits>" where <base> is a file a
//     known config (or the journal) manages there, and the name is not
//     itself managed;
//   - in the originals tree, the same for the originals' names;
//   - in the state dir's own directories (its top level, the journal data
//     and what the agent names, see SweepDir), any ".<name><digits>":
//     nothing else writes there.

// tempOf reports whether name is a temporary file name WriteFile uses for
// base.
func tempOf(name, base string) bool {
	rest, ok := strings.CutPrefix(name, "."+base)
	return ok && base != "" && isDigits(rest)
}

// isTemp reports whether name has the shape of any WriteFile temporary.
func isTemp(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := len(name)
	for i > 1 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	return i > 1 && i < len(name)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SweepTemp removes temporary files killed atomic writes left: next to
// every file the given configs and the apply journal manage, next to
// their originals, and in the state dir (its top level and the journal
// data). It returns the host paths removed. Configs may be nil. The
// agent calls it at start; Recover calls it with the journal's paths.
func (a *Applier) SweepTemp(configs ...*api.Rendered) ([]string, error) {
	paths := map[string]bool{}
	for _, r := range configs {
		if r == nil {
			continue
		}
		d, err := buildDesired(a.opts.Root, a.opts.CoreUser, r, a.limits())
		if err != nil {
			continue // a config that does not build wrote nothing
		}
		for _, p := range d.paths() {
			paths[p] = true
		}
	}
	if j, err := ReadJournal(a.opts.StateDir); err == nil && j != nil {
		for _, e := range j.Entries {
			if e.Path != "" {
				paths[e.Path] = true
			}
		}
	}
	// dir → managed base names in it.
	byDir := map[string]map[string]bool{}
	add := func(target string) {
		dir, base := filepath.Split(target)
		dir = filepath.Clean(dir)
		if byDir[dir] == nil {
			byDir[dir] = map[string]bool{}
		}
		byDir[dir][base] = true
	}
	for p := range paths {
		if target, err := Resolve(a.opts.Root, p); err == nil {
			add(target)
		}
		add(OrigPath(a.opts.StateDir, p))
	}
	var removed []string
	var errs []error
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		bases := byDir[dir]
		r, err := sweep(dir, func(name string) bool {
			if bases[name] {
				return false
			}
			for b := range bases {
				if tempOf(name, b) {
					return true
				}
			}
			return false
		})
		removed = append(removed, r...)
		errs = append(errs, err)
	}
	for _, dir := range []string{a.opts.StateDir, filepath.Join(a.opts.StateDir, journalDataDir)} {
		r, err := SweepDir(dir)
		removed = append(removed, r...)
		errs = append(errs, err)
	}
	if len(removed) > 0 {
		a.opts.Log.WithField("path", strings.Join(removed, " ")).Info("removed temporary files of interrupted writes")
	}
	return removed, errors.Join(errs...)
}

// SweepDir removes every WriteFile temporary (".<name><digits>", a
// regular file) directly in dir, a directory only Stoker writes (the
// agent's kept configs, the state dir). A missing dir is fine.
func SweepDir(dir string) ([]string, error) {
	return sweep(dir, isTemp)
}

func sweep(dir string, match func(name string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep temporary files in %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !match(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := removeFile(p); err != nil {
			return removed, fmt.Errorf("sweep temporary files in %s: %w", dir, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
