package nodeops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"stoker.dev/stoker/api"
)

// ErrIrreconcilable is matched (errors.Is) by a change this host cannot
// make on a running node; the update is refused before anything is
// written (or drained).
var ErrIrreconcilable = errors.New("cannot be applied to a running node")

// Reconcilable refuses, before anything is written, what the host cannot
// do when moving from one rendered config to another, naming the field:
//
//   - spec.fips: as MCO's checkFIPS (pkg/daemon/update.go, called from
//     reconcilable()), the desired FIPS flag must match what the running
//     kernel reports in /proc/sys/crypto/fips_enabled (under the root);
//     when the host has no such file the check is skipped, as MCO's
//     processFips does.
//   - spec.kernelType: no OS backend of Stoker switches kernels (MCO's
//     switchKernel overrides RHCOS's kernel packages from the OS image's
//     own repository, which Stoker does not have), so any change from the
//     default kernel is refused.
//   - spec.extensions: likewise (MCO's applyExtensions installs from the
//     OS image's extension repository).
func (a *Applier) Reconcilable(from, to *api.Rendered) error {
	if to == nil {
		return nil
	}
	var old api.Rendered
	if from != nil {
		old = *from
	}
	var errs []error
	if err := a.checkFIPS(to.FIPS); err != nil {
		errs = append(errs, err)
	}
	if k0, k1 := canonicalKernelType(old.KernelType), canonicalKernelType(to.KernelType); k0 != k1 {
		errs = append(errs, fmt.Errorf("%s: spec.kernelType %s → %s: %w: no OS backend switches kernels (backend %s)",
			to.Name, k0, k1, ErrIrreconcilable, a.opts.OS.Name()))
	}
	if !sameSet(old.Extensions, to.Extensions) {
		errs = append(errs, fmt.Errorf("%s: spec.extensions %q → %q: %w: no OS backend installs extensions (backend %s)",
			to.Name, old.Extensions, to.Extensions, ErrIrreconcilable, a.opts.OS.Name()))
	}
	return errors.Join(errs...)
}

func (a *Applier) checkFIPS(want bool) error {
	p, err := Resolve(a.opts.Root, FIPSFile)
	if err != nil {
		return fmt.Errorf("check spec.fips: %w", err)
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check spec.fips: read %s: %w", p, err)
	}
	have, err := strconv.ParseBool(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("check spec.fips: parse %s: %w", p, err)
	}
	if have != want {
		return fmt.Errorf("spec.fips %t: the running kernel has FIPS %t (%s): %w: detected change to FIPS flag; refusing to modify FIPS on a running node",
			want, have, FIPSFile, ErrIrreconcilable)
	}
	return nil
}

// canonicalKernelType is MCO's canonicalizeKernelType: anything but the
// named special kernels is the default one.
func canonicalKernelType(k string) string {
	switch k {
	case "realtime", "64k-pages":
		return k
	}
	return "default"
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// storageNodesReconcilable refuses a move that changes the directories
// section, or the links section while leaving links in it, as MCO's
// reconcilable() (pkg/daemon/update.go) does; unchanged directories and
// links pass, since the node does not write them (see buildDesired).
func storageNodesReconcilable(from, to *api.Rendered) error {
	field, why := api.StorageNodesUnreconcilable(from, to)
	if why == "" {
		return nil
	}
	return fmt.Errorf("rendered config %s: %s: %w: %s", to.Name, field, ErrIrreconcilable, why)
}
