package api

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// fileChanges lists the files added, removed or changed
// (CalculateConfigFileDiffs) with the actions of the closest policy path
// (calculatePostConfigChangeNodeDisruptionActionFromMCDiffs).
func fileChanges(from, to *Rendered, m mergedPolicy) []Change {
	fromFiles := byKey(from.Config.Storage.Files, filePath)
	toFiles := byKey(to.Config.Storage.Files, filePath)
	var out []Change
	for _, p := range unionKeys(fromFiles, toFiles) {
		f, inFrom := fromFiles[p]
		t, inTo := toFiles[p]
		if inFrom && inTo && sameJSON(f, t) {
			continue
		}
		op := opOf(inFrom, inTo)
		actions, reason := fileActions(m, p, f, t)
		out = append(out, Change{Kind: ChangeFile, Path: p, Op: op, Actions: actions, Reason: p + " " + op + "; " + reason})
	}
	return out
}

func fileActions(m mergedPolicy, p string, from, to ign3types.File) ([]Action, string) {
	fp, isDefault, ok := m.filePolicy(p)
	if !ok {
		return rebootDefault, "no policy matches: Reboot (MCO default)"
	}
	reason := policyReason(isDefault, fp.Path, fp.Actions)
	var actions []Action
	for _, a := range normalizeActions(fp.Actions) {
		if a.Type != ActionSpecial {
			actions = append(actions, a)
			continue
		}
		// MCO's Special (registries.conf): a crio reload, and a drain
		// unless the change is safe (isDrainRequiredForNodeDisruptionActions).
		actions = append(actions, reload(crioService))
		safe, err := safeRegistriesFileChange(from, to)
		switch {
		case err != nil:
			actions = append(actions, Action{Type: ActionDrain})
			reason += fmt.Sprintf(" (reload crio; drain: %v)", err)
		case !safe:
			actions = append(actions, Action{Type: ActionDrain})
			reason += " (reload crio; drain: the change is not one of the safe ones)"
		default:
			reason += " (reload crio; no drain: the change is safe)"
		}
	}
	return actions, reason
}

func safeRegistriesFileChange(from, to ign3types.File) (bool, error) {
	oldData, err := DecodeFileContents(from.Contents)
	if err != nil {
		return false, fmt.Errorf("decode old contents: %w", err)
	}
	newData, err := DecodeFileContents(to.Contents)
	if err != nil {
		return false, fmt.Errorf("decode new contents: %w", err)
	}
	return SafeRegistriesChange(oldData, newData)
}

// unitChanges lists the units whose entry changed, contents or a dropin
// (GetChangedConfigUnitsByType), with the unit's policy; Reboot when none.
func unitChanges(from, to *Rendered, m mergedPolicy) []Change {
	fromUnits := byKey(from.Config.Systemd.Units, unitName)
	toUnits := byKey(to.Config.Systemd.Units, unitName)
	var out []Change
	for _, name := range unionKeys(fromUnits, toUnits) {
		f, inFrom := fromUnits[name]
		t, inTo := toUnits[name]
		actions, reason := rebootDefault, "no policy matches: Reboot (MCO default)"
		if up, isDefault, ok := m.unitPolicy(name); ok {
			actions, reason = normalizeActions(up.Actions), policyReason(isDefault, name, up.Actions)
		}
		fu, tu := f, t
		fu.Dropins, tu.Dropins = nil, nil
		if !(inFrom && inTo && sameJSON(fu, tu)) {
			op := opOf(inFrom, inTo)
			what := name + " " + op
			if op == OpChanged {
				what = name + " " + describeUnitChange(f, t)
			}
			out = append(out, Change{Kind: ChangeUnit, Name: name, Op: op, Actions: actions, Reason: what + "; " + reason})
		}
		fd := byKey(f.Dropins, dropinName)
		td := byKey(t.Dropins, dropinName)
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

// passwdChanges compares the whole passwd section exactly, as
// newMachineConfigDiff does: ssh keys in order and the password hash count,
// and go to the sshkey policy.
func passwdChanges(from, to *Rendered, m mergedPolicy) []Change {
	if sameJSON(from.Config.Passwd, to.Config.Passwd) {
		return nil
	}
	var what []string
	added, removed := listDiff(SSHKeys(from, DefaultCoreUser), SSHKeys(to, DefaultCoreUser))
	keysOnly := len(added)+len(removed) > 0
	if !slices.Equal(rawKeys(from), rawKeys(to)) && !keysOnly {
		what = append(what, "keys reordered or repeated")
	}
	if !reflect.DeepEqual(passwordHash(from), passwordHash(to)) {
		what = append(what, "passwordHash changed")
		keysOnly = false
	}
	reason := "None (MCO default)"
	actions := normalizeActions(m.sshKey)
	if !m.sshDefault {
		reason = userPolicyReasonPrefix + "sshkey: " + describeActions(m.sshKey)
	}
	msg := fmt.Sprintf("ssh keys for %s changed (%d added, %d removed); %s", DefaultCoreUser, len(added), len(removed), reason)
	if !keysOnly {
		if len(what) == 0 {
			what = append(what, "users changed")
		}
		if len(added)+len(removed) > 0 {
			what = append([]string{fmt.Sprintf("%d key(s) added, %d removed", len(added), len(removed))}, what...)
		}
		msg = fmt.Sprintf("passwd of %s changed (%s); %s", DefaultCoreUser, strings.Join(what, ", "), reason)
	}
	return []Change{{Kind: ChangeSSHKey, Name: DefaultCoreUser, Op: OpChanged, Actions: actions, Reason: msg}}
}

func rawKeys(r *Rendered) []string {
	var out []string
	for _, u := range r.Config.Passwd.Users {
		for _, k := range u.SSHAuthorizedKeys {
			out = append(out, u.Name+" "+string(k))
		}
	}
	return out
}

func passwordHash(r *Rendered) []string {
	var out []string
	for _, u := range r.Config.Passwd.Users {
		if u.PasswordHash != nil {
			out = append(out, u.Name+" "+*u.PasswordHash)
		}
	}
	return out
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

// storageNodeChanges lists directory and link changes so `stoker diff`
// shows them; MCO's daemon refuses them on a running node (a link may only
// be removed), so they carry no action and make the plan Unreconcilable.
func storageNodeChanges(from, to *Rendered) []Change {
	var out []Change
	fd, td := byKey(from.Config.Storage.Directories, dirPath), byKey(to.Config.Storage.Directories, dirPath)
	for _, p := range unionKeys(fd, td) {
		a, inA := fd[p]
		b, inB := td[p]
		if inA && inB && sameJSON(a, b) {
			continue
		}
		op := opOf(inA, inB)
		out = append(out, Change{Kind: ChangeDirectory, Path: p, Op: op, Actions: []Action{},
			Reason: "directory " + p + " " + op + "; " + unreconcilableReasonPrefix + "ignition directories section contains changes"})
	}
	fl, tl := byKey(from.Config.Storage.Links, linkPath), byKey(to.Config.Storage.Links, linkPath)
	for _, p := range unionKeys(fl, tl) {
		a, inA := fl[p]
		b, inB := tl[p]
		if inA && inB && sameJSON(a, b) {
			continue
		}
		op := opOf(inA, inB)
		c := Change{Kind: ChangeLink, Path: p, Op: op, Actions: []Action{{Type: ActionNone}},
			Reason: "link " + p + " " + op + "; removing links is allowed (MCO); the link is left on the node"}
		if len(to.Config.Storage.Links) > 0 {
			c.Actions = []Action{}
			c.Reason = "link " + p + " " + op + "; " + unreconcilableReasonPrefix + "ignition links section contains changes"
		}
		out = append(out, c)
	}
	return out
}

// checkReconcilable returns why MCO's daemon would refuse moving a running
// node from one rendered config to the other (isConfigReconcilable in
// pkg/controller/common), or "" when it would not.
func checkReconcilable(from, to *Rendered) string {
	fc, tc := from.Config, to.Config
	if !sameJSON(fc.Passwd, tc.Passwd) {
		if !sameJSON(fc.Passwd.Groups, tc.Passwd.Groups) {
			return "ignition Passwd Groups section contains changes"
		}
		for _, u := range tc.Passwd.Users {
			if u.Name != DefaultCoreUser {
				return "ignition passwd user section contains unsupported changes: non-core user"
			}
		}
		if n := len(tc.Passwd.Users); n > 0 {
			u := tc.Passwd.Users[n-1]
			if u.PasswordHash == nil && len(u.SSHAuthorizedKeys) == 0 {
				return "ignition passwd user section contains unsupported changes: user must be core and have 1 or more sshKeys"
			}
			u.Name, u.PasswordHash, u.SSHAuthorizedKeys = "", nil, nil
			if !sameJSON(u, ign3types.PasswdUser{}) {
				return "SSH keys and password hash are not reconcilable"
			}
		}
	}
	switch {
	case !sameJSON(fc.KernelArguments, tc.KernelArguments):
		return "ignition kargs section contains changes"
	case !sameJSON(fc.Storage.Disks, tc.Storage.Disks):
		return "ignition disks section contains changes"
	case !sameJSON(fc.Storage.Filesystems, tc.Storage.Filesystems):
		return "ignition filesystems section contains changes"
	case !sameJSON(fc.Storage.Raid, tc.Storage.Raid):
		return "ignition raid section contains changes"
	}
	if _, why := StorageNodesUnreconcilable(from, to); why != "" {
		return why
	}
	for _, f := range tc.Storage.Files {
		if len(f.Append) > 0 {
			return fmt.Sprintf("ignition file %s includes append", f.Path)
		}
	}
	if from.FIPS != to.FIPS {
		return "detected change to FIPS flag; refusing to modify FIPS on a running cluster"
	}
	return ""
}

// StorageNodesUnreconcilable returns the section (storage.directories or
// storage.links) and why MCO's daemon refuses a move from one rendered
// config to another for it, or "" twice when it accepts the move, as reconcilable() in MCO's pkg/daemon/update.go decides:
// any change to the directories section is refused, and so is any change
// to the links section that leaves links in it (removing them all is
// accepted). Unchanged sections are accepted whatever they hold: the
// daemon writes neither (its updateFiles writes files and units only;
// Ignition made them at first boot). from may be nil (nothing yet).
func StorageNodesUnreconcilable(from, to *Rendered) (field, why string) {
	var fc, tc ign3types.Config
	if from != nil {
		fc = from.Config
	}
	if to != nil {
		tc = to.Config
	}
	switch {
	case !sameJSON(fc.Storage.Directories, tc.Storage.Directories):
		return "storage.directories", "ignition directories section contains changes"
	case !sameJSON(fc.Storage.Links, tc.Storage.Links) && len(tc.Storage.Links) != 0:
		return "storage.links", "ignition links section contains changes"
	}
	return "", ""
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
