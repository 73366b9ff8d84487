package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// Change operations.
const (
	OpAdded   = "added"
	OpChanged = "changed"
	OpRemoved = "removed"
)

// PlanChanges diffs two rendered configs and assigns every difference the
// actions the node disruption policy in force gives it, as MCO's daemon
// decides them: policy (the repo's, may be nil) merged over MCO's defaults
// (MergeClusterPolicies); files by their closest policy path, Reboot when
// none matches; units (with their dropins) by name, Reboot when none
// matches; the passwd section (ssh keys in order, passwordHash) by the
// sshkey policy; kernel arguments, extensions, kernel type and OS image by
// exact comparison, Reboot. registries.conf under MCO's Special default is a
// crio reload, plus a drain when the change is unsafe (SafeRegistriesChange).
// Changes MCO's daemon refuses on a running node (directories, links added
// or changed, FIPS, disks, filesystems, raid, Ignition kernel arguments,
// users other than the core user, file append) make the plan
// Unreconcilable (see checkReconcilable).
//
// from may be nil (a fresh node): everything in to is then added. The
// result is deterministic (same inputs, same bytes) and PlanChanges has no
// side effects, so `stoker diff` and the agent share it.
func PlanChanges(from, to *Rendered, policy *NodeDisruptionPolicy) Plan {
	if from == nil {
		from = &Rendered{}
	}
	if to == nil {
		to = &Rendered{}
	}
	m := mergePolicies(policy)
	p := Plan{From: from.Name, To: to.Name}
	p.Changes = append(p.Changes, osChanges(from, to)...)
	p.Changes = append(p.Changes, fileChanges(from, to, m)...)
	p.Changes = append(p.Changes, unitChanges(from, to, m)...)
	p.Changes = append(p.Changes, passwdChanges(from, to, m)...)
	p.Changes = append(p.Changes, storageNodeChanges(from, to)...)
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if ka, kb := kindOrder(a.Kind), kindOrder(b.Kind); ka != kb {
			return ka < kb
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Name < b.Name
	})
	p.Action = ActionNone
	for _, c := range p.Changes {
		for _, a := range c.Actions {
			if a.Type.Strength() > p.Action.Strength() {
				p.Action = a.Type
			}
		}
	}
	if why := checkReconcilable(from, to); why != "" {
		p.Action = ActionUnreconcilable
		p.Unreconcilable = why
	}
	return p
}

// Needs reports whether any change of p carries an action of type t. It
// is literal: a plan whose overall action is Reboot may still need a
// Reload for one of its changes; callers that reboot skip the weaker ones.
func (p Plan) Needs(t ActionType) bool {
	for _, c := range p.Changes {
		for _, a := range c.Actions {
			if a.Type == t {
				return true
			}
		}
	}
	return false
}

// Disruptive reports whether p must drain the node first: its strongest
// action is Drain or Reboot (an Unreconcilable plan is never applied).
func (p Plan) Disruptive() bool {
	return p.Action == ActionDrain || p.Action == ActionReboot
}

// Services returns the sorted, de-duplicated service names the plan's
// Reload (t = ActionReload) or Restart (t = ActionRestart) actions name.
func (p Plan) Services(t ActionType) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range p.Changes {
		for _, a := range c.Actions {
			if a.Type != t {
				continue
			}
			var target *ServiceTarget
			switch t {
			case ActionReload:
				target = a.Reload
			case ActionRestart:
				target = a.Restart
			}
			if target == nil || target.ServiceName == "" || seen[target.ServiceName] {
				continue
			}
			seen[target.ServiceName] = true
			out = append(out, target.ServiceName)
		}
	}
	sort.Strings(out)
	return out
}

// UnitsChanged reports whether p changes a unit or dropin file, i.e.
// whether systemd must re-read its configuration (daemon-reload) even
// when no policy asked for it.
func (p Plan) UnitsChanged() bool {
	for _, c := range p.Changes {
		if c.Kind == ChangeUnit || c.Kind == ChangeDropin {
			return true
		}
	}
	return false
}

// Summary is a one-line description for logs and commit messages, e.g.
// "3 changes; Reboot".
func (p Plan) Summary() string {
	s := fmt.Sprintf("%d change(s); %s", len(p.Changes), p.Action)
	if p.Unreconcilable != "" {
		s += ": " + p.Unreconcilable
	}
	return s
}

func kindOrder(k ChangeKind) int {
	order := []ChangeKind{ChangeOSImage, ChangeKernelType, ChangeKargs, ChangeExtensions, ChangeFIPS, ChangeIgnition,
		ChangeFile, ChangeDirectory, ChangeLink, ChangeUnit, ChangeDropin, ChangeSSHKey}
	if i := slices.Index(order, k); i >= 0 {
		return i
	}
	return len(order)
}

var rebootDefault = []Action{{Type: ActionReboot}}

// osChanges compares the non-Ignition fields as newMachineConfigDiff does:
// kernel arguments and extensions by exact equality (order matters; nil and
// empty are equal), the kernel type canonicalised, the OS image by string.
// Each is a Reboot; FIPS is refused (see checkReconcilable).
func osChanges(from, to *Rendered) []Change {
	var out []Change
	add := func(kind ChangeKind, op, what string, actions []Action) {
		reason := what + ": Reboot (MCO default)"
		if len(actions) == 0 {
			reason = what + ": " + unreconcilableReasonPrefix + "FIPS cannot change on a running node"
		}
		out = append(out, Change{Kind: kind, Op: op, Actions: actions, Reason: reason})
	}
	if from.OSImageURL != to.OSImageURL {
		add(ChangeOSImage, opOf(from.OSImageURL != "", to.OSImageURL != ""),
			fmt.Sprintf("osImageURL %q → %q", from.OSImageURL, to.OSImageURL), rebootDefault)
	}
	if fk, tk := CanonicalKernelType(from.KernelType), CanonicalKernelType(to.KernelType); fk != tk {
		add(ChangeKernelType, opOf(fk != KernelTypeDefault, tk != KernelTypeDefault),
			fmt.Sprintf("kernelType %q → %q", fk, tk), rebootDefault)
	}
	if !equalLists(from.KernelArguments, to.KernelArguments) {
		add(ChangeKargs, OpChanged, "kernel arguments"+describeListChange(from.KernelArguments, to.KernelArguments)+" changed", rebootDefault)
	}
	if !equalLists(from.Extensions, to.Extensions) {
		add(ChangeExtensions, OpChanged, "extensions"+describeListChange(from.Extensions, to.Extensions)+" changed", rebootDefault)
	}
	if from.FIPS != to.FIPS {
		add(ChangeFIPS, OpChanged, fmt.Sprintf("fips %t → %t", from.FIPS, to.FIPS), nil)
	}
	return out
}

// CanonicalKernelType maps a kernel type to the one MCO's daemon acts on
// (helpers.CanonicalizeKernelType): realtime and 64k-pages, else default.
func CanonicalKernelType(kt string) string {
	switch kt {
	case KernelTypeRealtime, KernelType64kPages:
		return kt
	}
	return KernelTypeDefault
}

func equalLists(a, b []string) bool {
	return (len(a) == 0 && len(b) == 0) || slices.Equal(a, b)
}

func describeListChange(from, to []string) string {
	added, removed := listDiff(from, to)
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "+"+strings.Join(added, " +"))
	}
	if len(removed) > 0 {
		parts = append(parts, "-"+strings.Join(removed, " -"))
	}
	if len(parts) == 0 {
		return " (order)"
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func opOf(inFrom, inTo bool) string {
	switch {
	case !inFrom && inTo:
		return OpAdded
	case inFrom && !inTo:
		return OpRemoved
	}
	return OpChanged
}

// sameJSON compares two values by their JSON encoding, so a nil pointer
// and an omitted field compare equal as they do on the wire.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func byKey[T any](items []T, key func(T) string) map[string]T {
	out := make(map[string]T, len(items))
	for _, it := range items {
		out[key(it)] = it
	}
	return out
}

func filePath(f ign3types.File) string     { return f.Path }
func dirPath(d ign3types.Directory) string { return d.Path }
func linkPath(l ign3types.Link) string     { return l.Path }
func unitName(u ign3types.Unit) string     { return u.Name }
func dropinName(d ign3types.Dropin) string { return d.Name }
