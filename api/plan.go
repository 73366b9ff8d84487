package api

import (
	"encoding/json"
	"fmt"
	"reflect"
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
// actions the node disruption policy gives it, with MCO's defaults where
// the policy is silent: ssh keys → None; files and units → Reboot; kernel
// arguments, kernel type, extensions, OS image and FIPS → Reboot.
//
// from may be nil (a fresh node): everything in to is then added. policy
// may be nil. The result is deterministic (same inputs, same bytes) and
// PlanChanges has no side effects, so `stoker diff` and the agent share it.
func PlanChanges(from, to *Rendered, policy *NodeDisruptionPolicy) Plan {
	if from == nil {
		from = &Rendered{}
	}
	if to == nil {
		to = &Rendered{}
	}
	p := Plan{From: from.Name, To: to.Name}
	p.Changes = append(p.Changes, osChanges(from, to)...)
	p.Changes = append(p.Changes, fileChanges(from, to, policy)...)
	p.Changes = append(p.Changes, unitChanges(from, to, policy)...)
	p.Changes = append(p.Changes, sshChanges(from, to, policy)...)
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
// action is Drain or Reboot.
func (p Plan) Disruptive() bool {
	return p.Action.Strength() >= ActionDrain.Strength()
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
	return fmt.Sprintf("%d change(s); %s", len(p.Changes), p.Action)
}

func kindOrder(k ChangeKind) int {
	switch k {
	case ChangeOSImage:
		return 0
	case ChangeKernelType:
		return 1
	case ChangeKargs:
		return 2
	case ChangeExtensions:
		return 3
	case ChangeFIPS:
		return 4
	case ChangeFile:
		return 5
	case ChangeUnit:
		return 6
	case ChangeDropin:
		return 7
	case ChangeSSHKey:
		return 8
	}
	return 9
}

var rebootDefault = []Action{{Type: ActionReboot}}

func osChanges(from, to *Rendered) []Change {
	var out []Change
	add := func(kind ChangeKind, op, what string) {
		out = append(out, Change{Kind: kind, Op: op, Actions: rebootDefault,
			Reason: what + ": Reboot (MCO default)"})
	}
	if from.OSImageURL != to.OSImageURL {
		add(ChangeOSImage, opOf(from.OSImageURL != "", to.OSImageURL != ""),
			fmt.Sprintf("osImageURL %q → %q", from.OSImageURL, to.OSImageURL))
	}
	if from.KernelType != to.KernelType {
		add(ChangeKernelType, opOf(from.KernelType != "", to.KernelType != ""),
			fmt.Sprintf("kernelType %q → %q", orDefault(from.KernelType), orDefault(to.KernelType)))
	}
	if added, removed := listDiff(from.KernelArguments, to.KernelArguments); len(added)+len(removed) > 0 {
		add(ChangeKargs, OpChanged, "kernel arguments"+describeListDiff(added, removed)+" changed")
	}
	if added, removed := listDiff(from.Extensions, to.Extensions); len(added)+len(removed) > 0 {
		add(ChangeExtensions, OpChanged, "extensions"+describeListDiff(added, removed)+" changed")
	}
	if from.FIPS != to.FIPS {
		add(ChangeFIPS, OpChanged, fmt.Sprintf("fips %t → %t", from.FIPS, to.FIPS))
	}
	return out
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
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

// listDiff compares two lists as multisets, as MCO does for kernel
// arguments: an argument given twice must be given twice.
func listDiff(from, to []string) (added, removed []string) {
	count := map[string]int{}
	for _, s := range from {
		count[s]++
	}
	for _, s := range to {
		if count[s] > 0 {
			count[s]--
			continue
		}
		added = append(added, s)
	}
	for _, s := range from {
		if count[s] > 0 {
			count[s]--
			removed = append(removed, s)
		}
	}
	return added, removed
}

// KernelArgsDiff returns the kernel arguments to append and to delete to
// move a node from one rendered config to another.
func KernelArgsDiff(from, to *Rendered) (add, remove []string) {
	var f, t []string
	if from != nil {
		f = from.KernelArguments
	}
	if to != nil {
		t = to.KernelArguments
	}
	return listDiff(f, t)
}

func describeListDiff(added, removed []string) string {
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "+"+strings.Join(added, " +"))
	}
	if len(removed) > 0 {
		parts = append(parts, "-"+strings.Join(removed, " -"))
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func fileChanges(from, to *Rendered, policy *NodeDisruptionPolicy) []Change {
	fromFiles := filesByPath(from)
	toFiles := filesByPath(to)
	var out []Change
	for _, path := range unionKeys(fromFiles, toFiles) {
		f, inFrom := fromFiles[path]
		t, inTo := toFiles[path]
		if inFrom && inTo && sameJSON(f, t) {
			continue
		}
		op := opOf(inFrom, inTo)
		actions, reason := filePolicy(policy, path)
		out = append(out, Change{Kind: ChangeFile, Path: path, Op: op, Actions: actions,
			Reason: path + " " + op + "; " + reason})
	}
	return out
}

// filePolicy finds the policy entry whose path is the longest match for
// path: the path itself, or a directory above it (MCO's semantics).
func filePolicy(policy *NodeDisruptionPolicy, path string) ([]Action, string) {
	best := -1
	if policy != nil {
		for i, fp := range policy.Files {
			if !pathMatches(fp.Path, path) {
				continue
			}
			if best < 0 || len(strings.TrimSuffix(fp.Path, "/")) > len(strings.TrimSuffix(policy.Files[best].Path, "/")) {
				best = i
			}
		}
	}
	if best < 0 {
		return rebootDefault, "no policy matches: Reboot (MCO default)"
	}
	fp := policy.Files[best]
	return normalizeActions(fp.Actions), "policy for " + fp.Path + ": " + describeActions(fp.Actions)
}

func pathMatches(policyPath, path string) bool {
	if policyPath == "" {
		return false
	}
	if policyPath == path {
		return true
	}
	dir := strings.TrimSuffix(policyPath, "/")
	return strings.HasPrefix(path, dir+"/")
}

func unitChanges(from, to *Rendered, policy *NodeDisruptionPolicy) []Change {
	fromUnits := unitsByName(from)
	toUnits := unitsByName(to)
	var out []Change
	for _, name := range unionKeys(fromUnits, toUnits) {
		f, inFrom := fromUnits[name]
		t, inTo := toUnits[name]
		actions, reason := unitPolicy(policy, name)
		fu, tu := f, t
		fu.Dropins, tu.Dropins = nil, nil
		if !(inFrom && inTo && sameJSON(fu, tu)) {
			op := opOf(inFrom, inTo)
			what := name + " " + op
			if op == OpChanged {
				what = name + " " + describeUnitChange(f, t)
			}
			out = append(out, Change{Kind: ChangeUnit, Name: name, Op: op, Actions: actions,
				Reason: what + "; " + reason})
		}
		fd := dropinsByName(f.Dropins)
		td := dropinsByName(t.Dropins)
		for _, dn := range unionKeys(fd, td) {
			a, inA := fd[dn]
			b, inB := td[dn]
			if inA && inB && sameJSON(a, b) {
				continue
			}
			op := opOf(inA, inB)
			out = append(out, Change{Kind: ChangeDropin, Name: name + "/" + dn, Op: op, Actions: actions,
				Reason: "dropin " + name + "/" + dn + " " + op + "; " + reason})
		}
	}
	return out
}

func describeUnitChange(f, t ign3types.Unit) string {
	var parts []string
	if !reflect.DeepEqual(f.Contents, t.Contents) {
		parts = append(parts, "contents changed")
	}
	if !reflect.DeepEqual(f.Enabled, t.Enabled) {
		parts = append(parts, fmt.Sprintf("enabled %s → %s", triBool(f.Enabled), triBool(t.Enabled)))
	}
	if !reflect.DeepEqual(f.Mask, t.Mask) {
		parts = append(parts, fmt.Sprintf("mask %s → %s", triBool(f.Mask), triBool(t.Mask)))
	}
	if len(parts) == 0 {
		return OpChanged
	}
	return strings.Join(parts, ", ")
}

func triBool(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

func unitPolicy(policy *NodeDisruptionPolicy, name string) ([]Action, string) {
	if policy != nil {
		for _, up := range policy.Units {
			if up.Name == name {
				return normalizeActions(up.Actions), "policy for " + name + ": " + describeActions(up.Actions)
			}
		}
	}
	return rebootDefault, "no policy matches: Reboot (MCO default)"
}

func sshChanges(from, to *Rendered, policy *NodeDisruptionPolicy) []Change {
	added, removed := keyDiff(SSHKeys(from, DefaultCoreUser), SSHKeys(to, DefaultCoreUser))
	if len(added)+len(removed) == 0 {
		return nil
	}
	actions := []Action{{Type: ActionNone}}
	reason := "None (MCO default)"
	if policy != nil && policy.SSHKey != nil {
		actions = normalizeActions(policy.SSHKey.Actions)
		reason = "policy for sshkey: " + describeActions(policy.SSHKey.Actions)
	}
	return []Change{{Kind: ChangeSSHKey, Name: DefaultCoreUser, Op: OpChanged, Actions: actions,
		Reason: fmt.Sprintf("ssh keys for %s changed (%d added, %d removed); %s",
			DefaultCoreUser, len(added), len(removed), reason)}}
}

// SSHKeys returns the authorized keys r gives user, in config order with
// duplicates dropped. r may be nil.
func SSHKeys(r *Rendered, user string) []string {
	if r == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, u := range r.Config.Passwd.Users {
		if u.Name != user {
			continue
		}
		for _, k := range u.SSHAuthorizedKeys {
			s := strings.TrimSpace(string(k))
			if s == "" || seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func keyDiff(from, to []string) (added, removed []string) {
	for _, k := range to {
		if !slices.Contains(from, k) {
			added = append(added, k)
		}
	}
	for _, k := range from {
		if !slices.Contains(to, k) {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// normalizeActions returns a copy of actions, or None for an empty list.
func normalizeActions(actions []Action) []Action {
	if len(actions) == 0 {
		return []Action{{Type: ActionNone}}
	}
	return slices.Clone(actions)
}

func describeActions(actions []Action) string {
	if len(actions) == 0 {
		return string(ActionNone)
	}
	parts := make([]string, len(actions))
	for i, a := range actions {
		s := string(a.Type)
		switch {
		case a.Type == ActionReload && a.Reload != nil:
			s += " " + a.Reload.ServiceName
		case a.Type == ActionRestart && a.Restart != nil:
			s += " " + a.Restart.ServiceName
		}
		parts[i] = s
	}
	return strings.Join(parts, ", ")
}

func filesByPath(r *Rendered) map[string]ign3types.File {
	out := map[string]ign3types.File{}
	for _, f := range r.Config.Storage.Files {
		out[f.Path] = f
	}
	return out
}

func unitsByName(r *Rendered) map[string]ign3types.Unit {
	out := map[string]ign3types.Unit{}
	for _, u := range r.Config.Systemd.Units {
		out[u.Name] = u
	}
	return out
}

func dropinsByName(ds []ign3types.Dropin) map[string]ign3types.Dropin {
	out := map[string]ign3types.Dropin{}
	for _, d := range ds {
		out[d.Name] = d
	}
	return out
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

// sameJSON compares two values by their JSON encoding, so a nil pointer
// and an omitted field compare equal as they do on the wire.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
