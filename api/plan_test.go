package api

import (
	"encoding/json"
	"reflect"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }

func file(path, data string) ign3types.File {
	f := ign3types.File{Node: ign3types.Node{Path: path}}
	f.Contents.Source = strp("data:," + data)
	return f
}

func unit(name, contents string, enabled *bool, dropins ...ign3types.Dropin) ign3types.Unit {
	return ign3types.Unit{Name: name, Contents: strp(contents), Enabled: enabled, Dropins: dropins}
}

func rendered(name string, mod func(r *Rendered)) *Rendered {
	r := &Rendered{Name: name}
	mod(r)
	return r
}

func withKeys(keys ...string) func(r *Rendered) {
	return func(r *Rendered) {
		var ks []ign3types.SSHAuthorizedKey
		for _, k := range keys {
			ks = append(ks, ign3types.SSHAuthorizedKey(k))
		}
		r.Config.Passwd.Users = []ign3types.PasswdUser{{Name: DefaultCoreUser, SSHAuthorizedKeys: ks}}
	}
}

func TestPlanChanges(t *testing.T) {
	registries := &NodeDisruptionPolicy{
		Files: []FilePolicy{
			{Path: "/etc/containers/registries.conf", Actions: []Action{{Type: ActionReload, Reload: &ServiceTarget{ServiceName: "crio.service"}}}},
			{Path: "/etc/containers", Actions: []Action{{Type: ActionRestart, Restart: &ServiceTarget{ServiceName: "crio.service"}}}},
			{Path: "/etc/no-op/", Actions: []Action{{Type: ActionNone}}},
			{Path: "/etc/drainme", Actions: []Action{{Type: ActionDrain}}},
		},
		Units: []UnitPolicy{
			{Name: "chronyd.service", Actions: []Action{{Type: ActionDaemonReload}, {Type: ActionRestart, Restart: &ServiceTarget{ServiceName: "chronyd.service"}}}},
		},
		SSHKey: &SSHKeyPolicy{Actions: []Action{{Type: ActionRestart, Restart: &ServiceTarget{ServiceName: "sshd.service"}}}},
	}
	base := func(r *Rendered) {
		r.Config.Storage.Files = []ign3types.File{file("/etc/chrony.conf", "a")}
		r.Config.Systemd.Units = []ign3types.Unit{unit("chronyd.service", "x", boolp(true))}
		r.KernelArguments = []string{"nosmt"}
	}
	tests := []struct {
		name    string
		from    *Rendered
		to      *Rendered
		policy  *NodeDisruptionPolicy
		action  ActionType
		changes []string // "kind op path-or-name"
		reasons []string // optional, compared when set
	}{
		{
			name:   "identical configs need nothing",
			from:   rendered("a", base),
			to:     rendered("b", base),
			action: ActionNone,
		},
		{
			name:    "fresh node adds everything",
			from:    nil,
			to:      rendered("b", base),
			action:  ActionReboot,
			changes: []string{"kernelArguments changed ", "file added /etc/chrony.conf", "unit added chronyd.service"},
		},
		{
			name: "file without policy reboots",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Storage.Files[0] = file("/etc/chrony.conf", "b")
			}),
			action:  ActionReboot,
			changes: []string{"file changed /etc/chrony.conf"},
			reasons: []string{"/etc/chrony.conf changed; no policy matches: Reboot (MCO default)"},
		},
		{
			name: "exact file policy beats directory policy",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Storage.Files = append(r.Config.Storage.Files, file("/etc/containers/registries.conf", "x"))
			}),
			policy:  registries,
			action:  ActionReload,
			changes: []string{"file added /etc/containers/registries.conf"},
			reasons: []string{"/etc/containers/registries.conf added; policy for /etc/containers/registries.conf: Reload crio.service"},
		},
		{
			name: "directory policy covers files below it only",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Storage.Files = append(r.Config.Storage.Files,
					file("/etc/containers/policy.json", "x"),
					file("/etc/containersfoo", "x"),
					file("/etc/no-op/a/b", "x"))
			}),
			policy:  registries,
			action:  ActionReboot,
			changes: []string{"file added /etc/containers/policy.json", "file added /etc/containersfoo", "file added /etc/no-op/a/b"},
			reasons: []string{
				// MCO's default for policy.json is the longer match.
				"/etc/containers/policy.json added; MCO default policy for /etc/containers/policy.json: Reload crio.service",
				"/etc/containersfoo added; no policy matches: Reboot (MCO default)",
				"/etc/no-op/a/b added; policy for /etc/no-op/: None",
			},
		},
		{
			name: "drain policy",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Storage.Files = append(r.Config.Storage.Files, file("/etc/drainme", "x"))
			}),
			policy:  registries,
			action:  ActionDrain,
			changes: []string{"file added /etc/drainme"},
		},
		{
			name: "removed file without policy reboots",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Storage.Files = nil
			}),
			policy:  registries,
			action:  ActionReboot,
			changes: []string{"file removed /etc/chrony.conf"},
		},
		{
			name: "mode change counts as change",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				m := 0o600
				r.Config.Storage.Files[0].Mode = &m
			}),
			action:  ActionReboot,
			changes: []string{"file changed /etc/chrony.conf"},
		},
		{
			name: "unit policy by exact name, dropins count as their unit",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Systemd.Units[0] = unit("chronyd.service", "x", boolp(false),
					ign3types.Dropin{Name: "10-x.conf", Contents: strp("[Service]\n")})
			}),
			policy:  registries,
			action:  ActionRestart,
			changes: []string{"unit changed chronyd.service", "dropin added chronyd.service/10-x.conf"},
			reasons: []string{
				"chronyd.service enabled true → false; policy for chronyd.service: DaemonReload, Restart chronyd.service",
				"dropin chronyd.service/10-x.conf added; policy for chronyd.service: DaemonReload, Restart chronyd.service",
			},
		},
		{
			name: "unit policy does not match other units",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.Config.Systemd.Units = append(r.Config.Systemd.Units, unit("chronyd.service.bak", "y", nil))
			}),
			policy:  registries,
			action:  ActionReboot,
			changes: []string{"unit added chronyd.service.bak"},
		},
		{
			name:    "ssh keys default to None",
			from:    rendered("a", withKeys("ssh-ed25519 AAAA a")),
			to:      rendered("b", withKeys("ssh-ed25519 AAAA a", "ssh-ed25519 BBBB b")),
			action:  ActionNone,
			changes: []string{"sshkey changed core"},
			reasons: []string{"ssh keys for core changed (1 added, 0 removed); None (MCO default)"},
		},
		{
			name:    "ssh key policy",
			from:    rendered("a", withKeys("ssh-ed25519 AAAA a", "k2")),
			to:      rendered("b", withKeys("k2")),
			policy:  registries,
			action:  ActionRestart,
			changes: []string{"sshkey changed core"},
		},
		{
			// newMachineConfigDiff compares passwd exactly: order counts.
			name:    "ssh key reorder is a passwd change",
			from:    rendered("a", withKeys("k1", "k2")),
			to:      rendered("b", withKeys("k2", "k1")),
			policy:  &NodeDisruptionPolicy{SSHKey: &SSHKeyPolicy{Actions: []Action{{Type: ActionDrain}}}},
			action:  ActionDrain,
			changes: []string{"sshkey changed core"},
			reasons: []string{"passwd of core changed (keys reordered or repeated); policy for sshkey: Drain"},
		},
		{
			name: "passwordHash change goes to the sshkey policy",
			from: rendered("a", withKeys("k1")),
			to: rendered("b", func(r *Rendered) {
				withKeys("k1")(r)
				r.Config.Passwd.Users[0].PasswordHash = strp("$6$x")
			}),
			action:  ActionNone,
			changes: []string{"sshkey changed core"},
			reasons: []string{"passwd of core changed (passwordHash changed); None (MCO default)"},
		},
		{
			// isConfigReconcilable: the core user must keep a key or a hash.
			name:    "removing the last key is unreconcilable",
			from:    rendered("a", withKeys("k1")),
			to:      rendered("b", withKeys()),
			action:  ActionUnreconcilable,
			changes: []string{"sshkey changed core"},
		},
		{
			name: "kernel arguments, kernel type, extensions, os image and fips reboot",
			from: rendered("a", base),
			to: rendered("b", func(r *Rendered) {
				base(r)
				r.KernelArguments = []string{"nosmt", "quiet"}
				r.KernelType = "realtime"
				r.Extensions = []string{"usbguard"}
				r.OSImageURL = "quay.io/os@sha256:1"
			}),
			policy: registries,
			action: ActionReboot,
			changes: []string{
				"osImageURL added ", "kernelType added ", "kernelArguments changed ",
				"extensions changed ",
			},
			reasons: []string{
				`osImageURL "" → "quay.io/os@sha256:1": Reboot (MCO default)`,
				`kernelType "default" → "realtime": Reboot (MCO default)`,
				"kernel arguments (+quiet) changed: Reboot (MCO default)",
				"extensions (+usbguard) changed: Reboot (MCO default)",
			},
		},
		{
			// isConfigReconcilable refuses a FIPS change.
			name:    "fips change is unreconcilable",
			from:    rendered("a", base),
			to:      rendered("b", func(r *Rendered) { base(r); r.FIPS = true }),
			action:  ActionUnreconcilable,
			changes: []string{"fips changed "},
		},
		{
			// newMachineConfigDiff: reflect.DeepEqual on the entries.
			name:    "kernel argument order counts",
			from:    rendered("a", func(r *Rendered) { r.KernelArguments = []string{"a", "b", "a"} }),
			to:      rendered("b", func(r *Rendered) { r.KernelArguments = []string{"a", "a", "b"} }),
			action:  ActionReboot,
			changes: []string{"kernelArguments changed "},
		},
		{
			name:    "extension order counts",
			from:    rendered("a", func(r *Rendered) { r.Extensions = []string{"usbguard", "wasm"} }),
			to:      rendered("b", func(r *Rendered) { r.Extensions = []string{"wasm", "usbguard"} }),
			action:  ActionReboot,
			changes: []string{"extensions changed "},
		},
		{
			name:   "kernel type default and empty are the same",
			from:   rendered("a", func(r *Rendered) { r.KernelType = "" }),
			to:     rendered("b", func(r *Rendered) { r.KernelType = KernelTypeDefault }),
			action: ActionNone,
		},
		{
			// isConfigReconcilable: directories may not change; stoker
			// diff still shows the change.
			name: "directory change is shown and unreconcilable",
			from: rendered("a", func(r *Rendered) {
				r.Config.Storage.Directories = []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/d"}}}
			}),
			to: rendered("b", func(r *Rendered) {
				m := 0o700
				r.Config.Storage.Directories = []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/d"}, DirectoryEmbedded1: ign3types.DirectoryEmbedded1{Mode: &m}}}
			}),
			action:  ActionUnreconcilable,
			changes: []string{"directory changed /etc/d"},
		},
		{
			name: "link removed is allowed, added is not",
			from: rendered("a", func(r *Rendered) {
				r.Config.Storage.Links = []ign3types.Link{{Node: ign3types.Node{Path: "/etc/l"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: strp("/etc/x")}}}
			}),
			to:      rendered("b", func(*Rendered) {}),
			action:  ActionNone,
			changes: []string{"link removed /etc/l"},
		},
		{
			name: "link added is unreconcilable",
			from: rendered("a", func(*Rendered) {}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Links = []ign3types.Link{{Node: ign3types.Node{Path: "/etc/l"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: strp("/etc/x")}}}
			}),
			action:  ActionUnreconcilable,
			changes: []string{"link added /etc/l"},
		},
		{
			// calculatePostConfigChangeNodeDisruptionActionFromMCDiffs
			// with apihelpers' defaults: no MachineConfiguration needed.
			name: "MCO default policy: registries.d reloads crio",
			from: rendered("a", func(*Rendered) {}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file("/etc/containers/registries.d/x.yaml", "x")}
			}),
			action:  ActionReload,
			changes: []string{"file added /etc/containers/registries.d/x.yaml"},
			reasons: []string{"/etc/containers/registries.d/x.yaml added; MCO default policy for /etc/containers/registries.d: Reload crio.service"},
		},
		{
			name: "MCO default policy: user CA bundle restarts two services",
			from: rendered("a", func(*Rendered) {}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file("/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt", "x")}
			}),
			action:  ActionRestart,
			changes: []string{"file added /etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"},
		},
		{
			name: "MCO default policy: Special registries.conf, safe change",
			from: rendered("a", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file(ContainerRegistryConfPath, "unqualified-search-registries%20%3D%20%5B%22a%22%5D%0A")}
			}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file(ContainerRegistryConfPath, "unqualified-search-registries%20%3D%20%5B%22a%22%2C%20%22b%22%5D%0A")}
			}),
			action:  ActionReload,
			changes: []string{"file changed /etc/containers/registries.conf"},
			reasons: []string{"/etc/containers/registries.conf changed; MCO default policy for /etc/containers/registries.conf: Special (reload crio; no drain: the change is safe)"},
		},
		{
			name: "MCO default policy: Special registries.conf, unsafe change drains",
			from: rendered("a", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file(ContainerRegistryConfPath, "unqualified-search-registries%20%3D%20%5B%22a%22%5D%0A")}
			}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file(ContainerRegistryConfPath, "")}
			}),
			action:  ActionDrain,
			changes: []string{"file changed /etc/containers/registries.conf"},
		},
		{
			// FindClosestFilePolicyPathMatch cleans the policy path.
			name:   "policy path with a trailing slash matches below it",
			from:   rendered("a", func(*Rendered) {}),
			to:     rendered("b", func(r *Rendered) { r.Config.Storage.Files = []ign3types.File{file("/etc/app/x", "1")} }),
			policy: &NodeDisruptionPolicy{Files: []FilePolicy{{Path: "/etc/app/", Actions: []Action{reload("app.service")}}}},
			action: ActionReload, changes: []string{"file added /etc/app/x"},
		},
		{
			// apihelpers.MergeClusterPolicies: same path replaces the default.
			name: "repo policy replaces the default for the same path",
			from: rendered("a", func(*Rendered) {}),
			to: rendered("b", func(r *Rendered) {
				r.Config.Storage.Files = []ign3types.File{file(ContainerRegistryConfPath, "")}
			}),
			policy:  &NodeDisruptionPolicy{Files: []FilePolicy{{Path: ContainerRegistryConfPath, Actions: []Action{restart("crio.service")}}}},
			action:  ActionRestart,
			changes: []string{"file added /etc/containers/registries.conf"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanChanges(tc.from, tc.to, tc.policy)
			if p.Action != tc.action {
				t.Errorf("action = %s, want %s\n%+v", p.Action, tc.action, p.Changes)
			}
			var got []string
			var reasons []string
			for _, c := range p.Changes {
				got = append(got, string(c.Kind)+" "+c.Op+" "+c.Path+c.Name)
				reasons = append(reasons, c.Reason)
			}
			if !reflect.DeepEqual(got, tc.changes) {
				t.Errorf("changes = %q, want %q", got, tc.changes)
			}
			if tc.reasons != nil && !reflect.DeepEqual(reasons, tc.reasons) {
				t.Errorf("reasons =\n%q\nwant\n%q", reasons, tc.reasons)
			}
			// Pure and deterministic: a second run gives the same bytes.
			a, _ := json.Marshal(p)
			b, _ := json.Marshal(PlanChanges(tc.from, tc.to, tc.policy))
			if string(a) != string(b) {
				t.Errorf("plan is not deterministic:\n%s\n%s", a, b)
			}
		})
	}
}

func TestPlanHelpers(t *testing.T) {
	policy := &NodeDisruptionPolicy{
		Files: []FilePolicy{
			{Path: "/etc/a", Actions: []Action{{Type: ActionReload, Reload: &ServiceTarget{ServiceName: "b.service"}}}},
			{Path: "/etc/b", Actions: []Action{{Type: ActionReload, Reload: &ServiceTarget{ServiceName: "a.service"}}, {Type: ActionRestart, Restart: &ServiceTarget{ServiceName: "c.service"}}}},
			{Path: "/etc/c", Actions: []Action{{Type: ActionReload, Reload: &ServiceTarget{ServiceName: "a.service"}}}},
		},
	}
	to := rendered("b", func(r *Rendered) {
		r.Config.Storage.Files = []ign3types.File{file("/etc/a", "1"), file("/etc/b", "1"), file("/etc/c", "1")}
	})
	p := PlanChanges(rendered("a", func(*Rendered) {}), to, policy)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"action", p.Action, ActionRestart},
		{"needs reload", p.Needs(ActionReload), true},
		{"needs restart", p.Needs(ActionRestart), true},
		{"needs reboot", p.Needs(ActionReboot), false},
		{"disruptive", p.Disruptive(), false},
		{"units changed", p.UnitsChanged(), false},
		{"reload services", p.Services(ActionReload), []string{"a.service", "b.service"}},
		{"restart services", p.Services(ActionRestart), []string{"c.service"}},
		{"summary", p.Summary(), "3 change(s); Restart"},
		{"from/to", p.From + "→" + p.To, "a→b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestKernelArgsDiff(t *testing.T) {
	tests := []struct {
		name             string
		from, to         []string
		wantAdd, wantDel []string
	}{
		{"none", []string{"a"}, []string{"a"}, nil, nil},
		{"add and delete", []string{"a", "b"}, []string{"b", "c"}, []string{"c"}, []string{"a"}},
		{"duplicate added", []string{"a"}, []string{"a", "a"}, []string{"a"}, nil},
		{"from nil", nil, []string{"x"}, []string{"x"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			add, del := KernelArgsDiff(&Rendered{KernelArguments: tc.from}, &Rendered{KernelArguments: tc.to})
			if !reflect.DeepEqual(add, tc.wantAdd) || !reflect.DeepEqual(del, tc.wantDel) {
				t.Errorf("got +%q -%q, want +%q -%q", add, del, tc.wantAdd, tc.wantDel)
			}
		})
	}
}
