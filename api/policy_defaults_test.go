package api

import (
	"reflect"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// TestDefaultNodeDisruptionPolicy pins every built-in default to MCO's
// defaultClusterPolicies (pkg/apihelpers/apihelpers.go, openshift/
// machine-config-operator@0ada93e29e7b6a334e4f5cef7398df4effbab35e), in
// MCO's order, as apihelpers.MergeClusterPolicies returns them for a
// cluster whose MachineConfiguration says nothing.
//
// The values of the constants the list names come from MCO's
// pkg/daemon/constants/constants.go: the first eight from
// openshift/origin's vendored copy (vendor/github.com/openshift/
// machine-config-operator/pkg/daemon/constants/constants.go@08667cba15cf4f3ce4a530ab905ac79de823a9c5);
// KubernetesCredentialProvidersDir and KubeletCrioImageCredProviderConfPath
// from isabella-janssen/machine-config-operator (a fork of MCO)
// @32350f5c276a01ca21026f249ca7bb5ed760d126, the only stored copy that
// defines them. No stored copy of constants.go defines the Internal
// Release Image constants; their values come from MCO code that equates
// them with literals:
//   - IRIRootCAPath = "/etc/pki/ca-trust/source/anchors/iri-root-ca.crt":
//     MCO's e2e test test/e2e-iri declares iriRootCAPath as
//     "/rootfs" + constants.IRIRootCAPath where an earlier version had the
//     literal "/rootfs/etc/pki/ca-trust/source/anchors/iri-root-ca.crt",
//     and the IRI renderer's test (internalreleaseimage_renderer_test.go)
//     expects the root CA at that path (template
//     templates/worker/files/root-ca.yaml@718fb71b).
//   - IRIRegistryServiceName = "iri-registry.service":
//     test/e2e-iri/iri_delete_test.go requires the master IRI
//     MachineConfig's only unit to be named constants.IRIRegistryServiceName,
//     and that MachineConfig's only unit template
//     (templates/master/units/iri-registry.service.yaml) is named
//     iri-registry.service.
//   - IRILoadImageScriptPath = "/usr/local/bin/load-registry-image.sh":
//     the one script the IRI templates write
//     (templates/master/files/usr-local-bin-load-registry-image-sh.yaml),
//     checked at that path by the renderer's test.
//
// IRIRegistryConfigPath is left out: no MCO source shows its value.
func TestDefaultNodeDisruptionPolicy(t *testing.T) {
	none := []Action{{Type: ActionNone}}
	want := []struct {
		constant string // MCO's name for the path
		path     string
		actions  []Action
	}{
		{"KubeletAuthFile", "/var/lib/kubelet/config.json", none},
		{"GPGNoRebootPath", "/etc/machine-config-daemon/no-reboot/containers-gpg.pub", []Action{reload("crio.service")}},
		{"ContainerRegistryPolicyPath", "/etc/containers/policy.json", []Action{reload("crio.service")}},
		{"ContainerRegistryConfPath", "/etc/containers/registries.conf", []Action{{Type: ActionSpecial}}},
		{"SigstoreRegistriesConfigDir", "/etc/containers/registries.d", []Action{reload("crio.service")}},
		{"CrioPoliciesDir", "/etc/crio/policies", []Action{reload("crio.service")}},
		{"OpenShiftNMStateConfigDir", "/etc/nmstate/openshift", none},
		{"UserCABundlePath", "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
			[]Action{restart("coreos-update-ca-trust.service"), restart("crio.service")}},
		{"KubernetesCredentialProvidersDir", "/etc/kubernetes/credential-providers", []Action{restart("kubelet.service")}},
		{"KubeletCrioImageCredProviderConfPath", "/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf",
			[]Action{{Type: ActionDaemonReload}, restart("kubelet.service")}},
		// IRIRegistryConfigPath (Restart IRIRegistryServiceName) sits here in MCO's list; left out.
		{"IRILoadImageScriptPath", "/usr/local/bin/load-registry-image.sh", []Action{restart("iri-registry.service")}},
		{"IRIRootCAPath", "/etc/pki/ca-trust/source/anchors/iri-root-ca.crt", []Action{restart("coreos-update-ca-trust.service")}},
	}
	wantUnits := []UnitPolicy{{Name: "iri-registry.service", Actions: []Action{{Type: ActionDaemonReload}, restart("iri-registry.service")}}}
	for _, got := range []struct {
		name string
		p    NodeDisruptionPolicy
	}{
		{"DefaultNodeDisruptionPolicy", DefaultNodeDisruptionPolicy()},
		{"MergeClusterPolicies(nil)", MergeClusterPolicies(nil)},
		{"MergeClusterPolicies(empty)", MergeClusterPolicies(&NodeDisruptionPolicy{})},
	} {
		t.Run(got.name, func(t *testing.T) {
			if len(got.p.Files) != len(want) {
				t.Fatalf("%d file defaults, want %d", len(got.p.Files), len(want))
			}
			for i, w := range want {
				t.Run(w.constant, func(t *testing.T) {
					f := got.p.Files[i]
					if f.Path != w.path || !reflect.DeepEqual(f.Actions, w.actions) {
						t.Errorf("files[%d] = %s %v, want %s %v", i, f.Path, f.Actions, w.path, w.actions)
					}
				})
			}
			if !reflect.DeepEqual(got.p.Units, wantUnits) {
				t.Errorf("unit defaults = %+v, want %+v", got.p.Units, wantUnits)
			}
			if got.p.SSHKey == nil || !reflect.DeepEqual(got.p.SSHKey.Actions, none) {
				t.Errorf("sshkey = %v, want None", got.p.SSHKey)
			}
		})
	}
}

// TestPlanCredentialProviderDefaults follows
// calculatePostConfigChangeNodeDisruptionActionFromMCDiffs (pkg/daemon/
// update.go) under the defaults of defaultClusterPolicies merged by
// apihelpers.MergeClusterPolicies: a file below
// KubernetesCredentialProvidersDir takes that entry
// (FindClosestFilePolicyPathMatch), kubelet's crio credential provider
// dropin its own, and a repo entry for the same path replaces the default.
func TestPlanCredentialProviderDefaults(t *testing.T) {
	const dropin = "/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf"
	withFile := func(path, data string) *Rendered {
		return rendered("b", func(r *Rendered) { r.Config.Storage.Files = []ign3types.File{file(path, data)} })
	}
	empty := rendered("a", func(*Rendered) {})
	tests := []defaultsCase{
		{name: "provider config added below the directory", from: empty, to: withFile("/etc/kubernetes/credential-providers/ecr-credential-provider.yaml", "x"),
			action: ActionRestart, restarts: []string{"kubelet.service"},
			reason: "/etc/kubernetes/credential-providers/ecr-credential-provider.yaml added; MCO default policy for /etc/kubernetes/credential-providers: Restart kubelet.service"},
		{name: "provider config changed", from: withFile("/etc/kubernetes/credential-providers/a.yaml", "1"), to: withFile("/etc/kubernetes/credential-providers/a.yaml", "2"),
			action: ActionRestart, restarts: []string{"kubelet.service"}},
		{name: "provider config removed", from: withFile("/etc/kubernetes/credential-providers/a.yaml", "1"), to: empty,
			action: ActionRestart, restarts: []string{"kubelet.service"}},
		{name: "a sibling directory is not covered", from: empty, to: withFile("/etc/kubernetes/credential-providers-old/a.yaml", "1"),
			action: ActionReboot},
		{name: "kubelet dropin: daemon-reload then restart kubelet", from: empty, to: withFile(dropin, "[Service]\n"),
			action: ActionRestart, restarts: []string{"kubelet.service"}, daemon: true,
			reason: dropin + " added; MCO default policy for " + dropin + ": DaemonReload, Restart kubelet.service"},
		{name: "another kubelet dropin reboots", from: empty, to: withFile("/etc/systemd/system/kubelet.service.d/50-other.conf", "[Service]\n"),
			action: ActionReboot},
		{name: "repo policy replaces the default", from: empty, to: withFile("/etc/kubernetes/credential-providers/a.yaml", "1"),
			policy: &NodeDisruptionPolicy{Files: []FilePolicy{{Path: "/etc/kubernetes/credential-providers", Actions: []Action{{Type: ActionNone}}}}},
			action: ActionNone,
			reason: "/etc/kubernetes/credential-providers/a.yaml added; policy for /etc/kubernetes/credential-providers: None"},
	}
	runDefaultsCases(t, tests)
}

// TestPlanIRIDefaults follows
// calculatePostConfigChangeNodeDisruptionActionFromMCDiffs (pkg/daemon/
// update.go) under defaultClusterPolicies' Internal Release Image entries:
// the registry's load script restarts the registry, its root CA restarts
// update-ca-trust, a change to the registry's unit daemon-reloads and
// restarts it, and a repo policy naming the unit replaces the default
// (apihelpers.MergeClusterPolicies).
func TestPlanIRIDefaults(t *testing.T) {
	const svc = "iri-registry.service"
	withFile := func(path, data string) *Rendered {
		return rendered("b", func(r *Rendered) { r.Config.Storage.Files = []ign3types.File{file(path, data)} })
	}
	withUnit := func(name, contents string) *Rendered {
		return rendered("b", func(r *Rendered) { r.Config.Systemd.Units = []ign3types.Unit{unit(name, contents, boolp(true))} })
	}
	empty := rendered("a", func(*Rendered) {})
	tests := []defaultsCase{
		{name: "load script changed", from: withFile("/usr/local/bin/load-registry-image.sh", "1"), to: withFile("/usr/local/bin/load-registry-image.sh", "2"),
			action: ActionRestart, restarts: []string{svc}},
		{name: "root CA added", from: empty, to: withFile("/etc/pki/ca-trust/source/anchors/iri-root-ca.crt", "pem"),
			action: ActionRestart, restarts: []string{"coreos-update-ca-trust.service"}},
		{name: "another anchor reboots", from: empty, to: withFile("/etc/pki/ca-trust/source/anchors/other.crt", "pem"),
			action: ActionReboot},
		{name: "registry unit changed", from: withUnit(svc, "[Service]\nExecStart=/bin/true\n"), to: withUnit(svc, "[Service]\nExecStart=/bin/false\n"),
			action: ActionRestart, restarts: []string{svc}, daemon: true},
		{name: "another unit reboots", from: empty, to: withUnit("other.service", "[Service]\n"),
			action: ActionReboot},
		{name: "repo policy replaces the unit default", from: withUnit(svc, "a"), to: withUnit(svc, "b"),
			policy: &NodeDisruptionPolicy{Units: []UnitPolicy{{Name: svc, Actions: []Action{{Type: ActionNone}}}}},
			action: ActionNone},
	}
	runDefaultsCases(t, tests)
}

// defaultsCase is one plan under MCO's defaults: the action, the services
// restarted, whether a daemon-reload is needed and (when set) the reason.
type defaultsCase struct {
	name     string
	from, to *Rendered
	policy   *NodeDisruptionPolicy
	action   ActionType
	restarts []string
	daemon   bool // needs a daemon-reload
	reason   string
}

func runDefaultsCases(t *testing.T, tests []defaultsCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanChanges(tc.from, tc.to, tc.policy)
			if p.Action != tc.action {
				t.Errorf("action = %s, want %s\n%+v", p.Action, tc.action, p.Changes)
			}
			if got := p.Services(ActionRestart); !reflect.DeepEqual(got, tc.restarts) {
				t.Errorf("restarts = %v, want %v", got, tc.restarts)
			}
			if got := p.Needs(ActionDaemonReload); got != tc.daemon {
				t.Errorf("needs daemon-reload = %t, want %t", got, tc.daemon)
			}
			if tc.reason != "" && (len(p.Changes) != 1 || p.Changes[0].Reason != tc.reason) {
				t.Errorf("changes = %+v, want one with reason %q", p.Changes, tc.reason)
			}
		})
	}
}
