package render

import (
	"github.com/coreos/ignition/v2/config/merge"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// foldIgnition merges cfgs in order the way MCO's MergeMachineConfigs
// does: one Ignition merge after another (ign3.Merge(out, next)), with each
// file's compression reset to "" when the next config gives the file new
// contents without a compression, so plain contents override gzip ones
// (MCO keeps compression "" on files it writes for exactly this reason).
//
// It gets the result of that sequential fold in one pass: files,
// directories and links (one key space, by path) and units (by name) are
// kept in keyed lists; an entry seen again is merged with Ignition's own
// merge, field by field, in place; an entry whose path moves to another
// list leaves the old one and is appended to the new one, as Ignition's
// merge does. Everything else of a config (passwd, Ignition's own section,
// kernel arguments, disks...) is folded with Ignition's merge only when a
// config has any. TestFoldMatchesSequentialMerge holds this to the
// sequential fold.
func foldIgnition(cfgs []*Ignition) ign3types.Config {
	var acc accumulator
	// Sized for every entry once, so they grow without copies (result
	// drops what merged entries left unused).
	var nFiles, nDirs, nLinks, nUnits int
	for _, c := range cfgs {
		nFiles += len(c.Storage.Files)
		nDirs += len(c.Storage.Directories)
		nLinks += len(c.Storage.Links)
		nUnits += len(c.Systemd.Units)
	}
	// (Lists stay nil when there is nothing, as before.)
	acc.files = withCap[ign3types.File](nFiles)
	acc.dirs = withCap[ign3types.Directory](nDirs)
	acc.links = withCap[ign3types.Link](nLinks)
	acc.units = withCap[ign3types.Unit](nUnits)
	acc.paths = make(map[string]nodeRef, nFiles+nDirs+nLinks)
	acc.unitAt = make(map[string]int, nUnits)
	acc.rest = emptyIgnition()
	for _, c := range cfgs {
		acc.add(c)
	}
	return acc.result()
}

// withCap is an empty list with room for n entries, nil when n is 0.
func withCap[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

type nodeKind uint8

const (
	kindFile nodeKind = iota
	kindDir
	kindLink
)

type nodeRef struct {
	kind nodeKind
	idx  int
}

type accumulator struct {
	files []ign3types.File
	dirs  []ign3types.Directory
	links []ign3types.Link
	// dead marks entries that moved to another list (by kind, index).
	dead   map[nodeRef]bool
	paths  map[string]nodeRef
	units  []ign3types.Unit
	unitAt map[string]int
	rest   ign3types.Config
}

func (a *accumulator) add(c *Ignition) {
	for _, f := range c.Storage.Files {
		if f.Contents.Source != nil && f.Contents.Compression == nil {
			f.Contents.Compression = new(string)
		}
		if ref, ok := a.paths[f.Path]; ok && ref.kind == kindFile {
			merged, _ := merge.MergeStructTranscribe(a.files[ref.idx], f)
			a.files[ref.idx] = merged.(ign3types.File)
			continue
		}
		a.move(f.Path)
		a.paths[f.Path] = nodeRef{kindFile, len(a.files)}
		a.files = append(a.files, f)
	}
	for _, d := range c.Storage.Directories {
		if ref, ok := a.paths[d.Path]; ok && ref.kind == kindDir {
			merged, _ := merge.MergeStructTranscribe(a.dirs[ref.idx], d)
			a.dirs[ref.idx] = merged.(ign3types.Directory)
			continue
		}
		a.move(d.Path)
		a.paths[d.Path] = nodeRef{kindDir, len(a.dirs)}
		a.dirs = append(a.dirs, d)
	}
	for _, l := range c.Storage.Links {
		if ref, ok := a.paths[l.Path]; ok && ref.kind == kindLink {
			merged, _ := merge.MergeStructTranscribe(a.links[ref.idx], l)
			a.links[ref.idx] = merged.(ign3types.Link)
			continue
		}
		a.move(l.Path)
		a.paths[l.Path] = nodeRef{kindLink, len(a.links)}
		a.links = append(a.links, l)
	}
	for _, u := range c.Systemd.Units {
		if i, ok := a.unitAt[u.Name]; ok {
			merged, _ := merge.MergeStructTranscribe(a.units[i], u)
			a.units[i] = merged.(ign3types.Unit)
			continue
		}
		a.unitAt[u.Name] = len(a.units)
		a.units = append(a.units, u)
	}
	if c.rest == nil {
		return
	}
	rest := *c.rest
	rest.Ignition.Version = ""
	if !restIsEmpty(rest) {
		rest.Ignition.Version = api.IgnitionVersion
		merged, _ := merge.MergeStructTranscribe(a.rest, rest)
		a.rest = merged.(ign3types.Config)
	}
}

// move drops the entry at path from whatever list holds it.
func (a *accumulator) move(path string) {
	ref, ok := a.paths[path]
	if !ok {
		return
	}
	if a.dead == nil {
		a.dead = map[nodeRef]bool{}
	}
	a.dead[ref] = true
	delete(a.paths, path)
}

func (a *accumulator) result() ign3types.Config {
	out := a.rest
	out.Ignition.Version = api.IgnitionVersion
	// Entries merged into earlier ones, or moved, leave room in the lists
	// sized for every entry: the rendered config is held, so it keeps none.
	out.Storage.Files = exactCap(keepLive(a.files, kindFile, a.dead))
	for i := range out.Storage.Files {
		if c := out.Storage.Files[i].Contents.Compression; c != nil && *c == "" {
			out.Storage.Files[i].Contents.Compression = nil
		}
	}
	out.Storage.Directories = exactCap(keepLive(a.dirs, kindDir, a.dead))
	out.Storage.Links = exactCap(keepLive(a.links, kindLink, a.dead))
	out.Systemd.Units = exactCap(a.units)
	return out
}

func keepLive[T any](items []T, kind nodeKind, dead map[nodeRef]bool) []T {
	if len(dead) == 0 {
		return items
	}
	out := items[:0:0]
	for i, it := range items {
		if !dead[nodeRef{kind, i}] {
			out = append(out, it)
		}
	}
	return out
}

// restIsEmpty reports whether a config holds nothing but files,
// directories, links and units (which the caller has removed): no Ignition
// section, passwd, kernel arguments, disks, filesystems, luks, raid or
// systemd beyond units. Checked field by field, without reflection.
func restIsEmpty(c ign3types.Config) bool {
	ig := c.Ignition
	s := c.Storage
	return ig.Config.Merge == nil && ig.Config.Replace.Source == nil && ig.Config.Replace.Compression == nil &&
		ig.Config.Replace.HTTPHeaders == nil && ig.Config.Replace.Verification.Hash == nil &&
		ig.Proxy.HTTPProxy == nil && ig.Proxy.HTTPSProxy == nil && ig.Proxy.NoProxy == nil &&
		ig.Security.TLS.CertificateAuthorities == nil && ig.Timeouts.HTTPResponseHeaders == nil && ig.Timeouts.HTTPTotal == nil &&
		c.KernelArguments.ShouldExist == nil && c.KernelArguments.ShouldNotExist == nil &&
		c.Passwd.Users == nil && c.Passwd.Groups == nil &&
		s.Disks == nil && s.Filesystems == nil && s.Luks == nil && s.Raid == nil
}
