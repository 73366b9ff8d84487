package nodeops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"stoker.dev/stoker/api"
)

// Drift finding kinds (api.DriftFinding.Kind).
const (
	DriftContent     = "content"
	DriftMode        = "mode"
	DriftOwner       = "owner"
	DriftMissing     = "missing"
	DriftSymlink     = "symlink"
	DriftUnit        = "unit"
	DriftKernelArgs  = "kernelArguments"
	DriftNotRegular  = "notRegular"
	driftDigestLabel = "sha256:"
)

// Validate compares the node's on-disk state with r and returns every
// difference: each file, unit, dropin and the ssh key file (content
// digest, mode, owner, missing, symlink), each unit's enablement and
// mask, and the kernel arguments the OS backend reports (skipped when the
// backend cannot read them). An empty result means the node matches r.
// The error is for failing to look, not for drift.
func (a *Applier) Validate(ctx context.Context, r *api.Rendered) ([]api.DriftFinding, error) {
	d, err := buildDesired(a.opts.Root, a.opts.CoreUser, r, a.limits())
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	var out []api.DriftFinding
	for _, p := range d.paths() {
		f := d.files[p]
		fs, err := checkFile(a.opts.Root, f)
		if err != nil {
			return nil, fmt.Errorf("validate %s: %w", p, err)
		}
		out = append(out, fs...)
	}
	for _, u := range d.units {
		want := ""
		switch {
		case u.Mask:
			want = "masked"
		case u.Enabled != nil && *u.Enabled:
			want = "enabled"
		case u.Enabled != nil:
			want = "disabled"
		default:
			continue
		}
		got, err := a.opts.Systemd.UnitFileState(ctx, u.Name)
		if err != nil {
			return nil, fmt.Errorf("validate unit %s: %w", u.Name, err)
		}
		if got != want {
			out = append(out, api.DriftFinding{Kind: DriftUnit, Unit: u.Name, Expected: want, Found: got})
		}
	}
	if len(r.KernelArguments) > 0 {
		have, err := a.opts.OS.KernelArgs(ctx)
		switch {
		case errors.Is(err, ErrUnsupported):
		case err != nil:
			return nil, fmt.Errorf("validate kernel arguments: %w", err)
		default:
			// Entries may hold several arguments ("a=1 b=2", kept as written
			// as MCO keeps them); the node holds them split as MCO's daemon
			// splits them before applying.
			want := api.SplitKernelArguments(r.KernelArguments)
			if missing, _ := missingArgs(want, have); len(missing) > 0 {
				out = append(out, api.DriftFinding{Kind: DriftKernelArgs,
					Expected: fmt.Sprint(want), Found: fmt.Sprint(have)})
			}
		}
	}
	return out, nil
}

// missingArgs returns the arguments of want (as a multiset) not in have.
func missingArgs(want, have []string) ([]string, int) {
	count := map[string]int{}
	for _, h := range have {
		count[h]++
	}
	var missing []string
	for _, w := range want {
		if count[w] > 0 {
			count[w]--
			continue
		}
		missing = append(missing, w)
	}
	return missing, len(missing)
}

// presentArgs returns the arguments of args (as a multiset) found in have.
func presentArgs(args, have []string) []string {
	missing, _ := missingArgs(args, have)
	drop := map[string]int{}
	for _, m := range missing {
		drop[m]++
	}
	var out []string
	for _, a := range args {
		if drop[a] > 0 {
			drop[a]--
			continue
		}
		out = append(out, a)
	}
	return out
}

// Digest is how drift findings spell a content digest.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return driftDigestLabel + hex.EncodeToString(sum[:])
}

func checkFile(root string, f managedFile) ([]api.DriftFinding, error) {
	target, err := Resolve(root, f.Path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return []api.DriftFinding{{Kind: DriftMissing, Path: f.Path, Expected: f.C.Digest}}, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		dest, _ := os.Readlink(target)
		return []api.DriftFinding{{Kind: DriftSymlink, Path: f.Path, Expected: f.C.Digest, Found: "symlink to " + dest}}, nil
	}
	if !fi.Mode().IsRegular() {
		return []api.DriftFinding{{Kind: DriftNotRegular, Path: f.Path, Expected: "regular file", Found: fi.Mode().Type().String()}}, nil
	}
	st, _, err := statFile(target)
	if err != nil {
		return nil, err
	}
	mode, uid, gid := st.Mode, st.UID, st.GID
	var out []api.DriftFinding
	if want, got := f.C.Digest, st.Digest; want != got {
		out = append(out, api.DriftFinding{Kind: DriftContent, Path: f.Path, Expected: want, Found: got})
	}
	if mode != f.Mode {
		out = append(out, api.DriftFinding{Kind: DriftMode, Path: f.Path,
			Expected: fmt.Sprintf("%04o", uint32(f.Mode)), Found: fmt.Sprintf("%04o", uint32(mode))})
	}
	if uid != f.UID || gid != f.GID {
		out = append(out, api.DriftFinding{Kind: DriftOwner, Path: f.Path,
			Expected: fmt.Sprintf("%d:%d", f.UID, f.GID), Found: fmt.Sprintf("%d:%d", uid, gid)})
	}
	return out, nil
}

// ManagedPaths returns the host paths (as the config names them, not
// under root) that r puts on the node, sorted: the drift monitor watches
// their directories.
func (a *Applier) ManagedPaths(r *api.Rendered) ([]string, error) {
	d, err := buildDesired(a.opts.Root, a.opts.CoreUser, r, a.limits())
	if err != nil {
		return nil, err
	}
	return d.paths(), nil
}
