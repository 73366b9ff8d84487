package nodeops

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// managedFile is one file a rendered config puts on the node: a storage
// file, a unit or dropin, or the core user's ssh key file.
type managedFile struct {
	// Path is the host path as the config names it (not under root).
	Path string
	// C is the content, measured but not expanded.
	C    content
	Mode os.FileMode
	UID  int
	GID  int
	// Kind is file, unit, dropin or sshkey (api.ChangeKind values).
	Kind api.ChangeKind
}

// unitState is the enablement a rendered config asks of one unit.
type unitState struct {
	Name    string
	Enabled *bool
	Mask    bool
}

// desired is everything of a rendered config that lands on disk.
type desired struct {
	files map[string]managedFile
	units []unitState
	// sshDirs are the core user's .ssh directories, owned by the user.
	sshDirs []string
	sshUID  int
	sshGID  int
}

func (d *desired) paths() []string {
	out := make([]string, 0, len(d.files))
	for p := range d.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// buildDesired turns r into the files and unit states it means on this
// node, resolving owner names in root's passwd and group files. It reads
// nothing else and writes nothing. r may be nil (nothing managed).
// Directories and links are not among them: as MCO's daemon (updateFiles
// writes files and units only), a node never writes them; a change to
// them is refused before an apply (storageNodesReconcilable).
func buildDesired(root, coreUser string, r *api.Rendered, lim limits) (*desired, error) {
	d := &desired{files: map[string]managedFile{}}
	if r == nil {
		return d, nil
	}
	var total int64
	cfg := r.Config
	for i, f := range cfg.Storage.Files {
		field := fmt.Sprintf("rendered config %s: storage.files[%d] (%s)", r.Name, i, f.Path)
		if _, err := Resolve(root, f.Path); err != nil {
			return nil, fmt.Errorf("%s: path: %w", field, err)
		}
		if len(f.Append) > 0 {
			return nil, fmt.Errorf("%s: append: not supported on a running node", field)
		}
		data, err := decodeContents(f.Contents, lim.file)
		if err != nil {
			return nil, fmt.Errorf("%s: contents: %w", field, err)
		}
		if total += data.Size; total > lim.config {
			return nil, fmt.Errorf("rendered config %s: storage.files: contents expand to more than %d bytes in total, the per-config limit: %w", r.Name, lim.config, ErrTooLarge)
		}
		mode := os.FileMode(0o644)
		if f.Mode != nil {
			mode = ignitionMode(*f.Mode)
		}
		uid, gid, err := resolveOwner(root, f.User, f.Group)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if err := d.add(managedFile{Path: path.Clean(f.Path), C: data, Mode: mode, UID: uid, GID: gid, Kind: api.ChangeFile}); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
	}
	for i, u := range cfg.Systemd.Units {
		field := fmt.Sprintf("rendered config %s: systemd.units[%d] (%s)", r.Name, i, u.Name)
		if err := api.ValidUnitName(u.Name); err != nil {
			return nil, fmt.Errorf("%s: name: %w", field, err)
		}
		mask := u.Mask != nil && *u.Mask
		d.units = append(d.units, unitState{Name: u.Name, Enabled: u.Enabled, Mask: mask})
		if u.Contents != nil && !mask {
			if err := d.add(managedFile{Path: path.Join(SystemdUnitDir, u.Name), C: inline([]byte(*u.Contents)), Mode: 0o644, Kind: api.ChangeUnit}); err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
		}
		for j, dr := range u.Dropins {
			if dr.Name == "" || strings.Contains(dr.Name, "/") {
				return nil, fmt.Errorf("%s: dropins[%d]: name: must be a plain file name", field, j)
			}
			if dr.Contents == nil {
				continue
			}
			p := path.Join(SystemdUnitDir, u.Name+".d", dr.Name)
			if err := d.add(managedFile{Path: p, C: inline([]byte(*dr.Contents)), Mode: 0o644, Kind: api.ChangeDropin}); err != nil {
				return nil, fmt.Errorf("%s: dropins[%d]: %w", field, j, err)
			}
		}
	}
	keys := api.SSHKeys(r, coreUser)
	if len(keys) > 0 {
		acct, err := LookupUser(root, coreUser)
		if err != nil {
			return nil, fmt.Errorf("rendered config %s: ssh keys for %s: %w", r.Name, coreUser, err)
		}
		home := acct.Home
		if home == "" {
			home = path.Join(DefaultHomeBase, coreUser)
		}
		keyPath := path.Join(home, SSHKeyFile)
		d.sshUID, d.sshGID = acct.ID, acct.GID
		d.sshDirs = []string{path.Join(home, ".ssh"), path.Dir(keyPath)}
		data := []byte(strings.Join(keys, "\n") + "\n")
		if err := d.add(managedFile{Path: keyPath, C: inline(data), Mode: 0o600, UID: acct.ID, GID: acct.GID, Kind: api.ChangeSSHKey}); err != nil {
			return nil, fmt.Errorf("rendered config %s: ssh keys for %s: %w", r.Name, coreUser, err)
		}
	}
	return d, nil
}

func (d *desired) add(f managedFile) error {
	if _, dup := d.files[f.Path]; dup {
		return fmt.Errorf("%s is given twice", f.Path)
	}
	d.files[f.Path] = f
	return nil
}

// limits bound a config's decompressed contents on the node.
type limits struct{ file, config int64 }

// resolveOwner returns the uid and gid a node's user and group stand for,
// by id or by name in root's passwd and group files; unset means root (0).
func resolveOwner(root string, u ign3types.NodeUser, g ign3types.NodeGroup) (int, int, error) {
	uid, gid := 0, 0
	switch {
	case u.ID != nil:
		uid = *u.ID
	case u.Name != nil && *u.Name != "":
		a, err := LookupUser(root, *u.Name)
		if err != nil {
			return 0, 0, fmt.Errorf("user: %w", err)
		}
		uid = a.ID
	}
	switch {
	case g.ID != nil:
		gid = *g.ID
	case g.Name != nil && *g.Name != "":
		a, err := LookupGroup(root, *g.Name)
		if err != nil {
			return 0, 0, fmt.Errorf("group: %w", err)
		}
		gid = a.ID
	}
	return uid, gid, nil
}

// ignitionMode converts Ignition's numeric mode (0o4755) to an
// os.FileMode (ModeSetuid|0o755), the form os.Chmod and Lstat use.
func ignitionMode(m int) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
