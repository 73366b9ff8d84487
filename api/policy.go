package api

import (
	"path"
	"strings"
)

// Paths and services of MCO's default node disruption policies
// (defaultClusterPolicies in pkg/apihelpers/apihelpers.go, with the paths
// of pkg/daemon/constants). No stored copy of MCO's constants.go defines
// the Internal Release Image (IRI) constants, so their values are taken
// from MCO code that equates them with literals (cited in
// TestDefaultNodeDisruptionPolicy): IRIRootCAPath and
// IRIRegistryServiceName by MCO's own tests, IRILoadImageScriptPath by the
// one script the IRI controller's templates write. IRIRegistryConfigPath
// is left out: no MCO source shows its value, and a guessed path would be
// worse than a missing one (a missing one reboots, as MCO does for
// unlisted paths).
const (
	ContainerRegistryConfPath  = "/etc/containers/registries.conf"
	containerRegistryPolicy    = "/etc/containers/policy.json"
	sigstoreRegistriesConfDir  = "/etc/containers/registries.d"
	crioPoliciesDir            = "/etc/crio/policies"
	userCABundlePath           = "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"
	openShiftNMStateConfigDir  = "/etc/nmstate/openshift"
	kubeletAuthFile            = "/var/lib/kubelet/config.json"
	gpgNoRebootPath            = "/etc/machine-config-daemon/no-reboot/containers-gpg.pub"
	credentialProvidersDir     = "/etc/kubernetes/credential-providers"
	crioCredProviderDropin     = "/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf"
	crioService                = "crio.service"
	kubeletService             = "kubelet.service"
	updateCATrustService       = "coreos-update-ca-trust.service"
	iriRootCAPath              = "/etc/pki/ca-trust/source/anchors/iri-root-ca.crt"
	iriLoadImageScriptPath     = "/usr/local/bin/load-registry-image.sh"
	iriRegistryService         = "iri-registry.service"
	defaultPolicyReasonPrefix  = "MCO default policy for "
	userPolicyReasonPrefix     = "policy for "
	unreconcilableReasonPrefix = "MCO's daemon refuses this on a running node: "
)

func reload(svc string) Action {
	return Action{Type: ActionReload, Reload: &ServiceTarget{ServiceName: svc}}
}
func restart(svc string) Action {
	return Action{Type: ActionRestart, Restart: &ServiceTarget{ServiceName: svc}}
}

// DefaultNodeDisruptionPolicy returns MCO's built-in node disruption
// policies, the ones every cluster has before its MachineConfiguration says
// anything: the pull secret and nmstate's first-boot directory need nothing,
// container registry and signature configuration reloads crio, the user CA
// bundle restarts update-ca-trust and crio, registries.conf is Special
// (reload crio, and drain only when the change is unsafe), kubelet's image
// credential provider configuration restarts kubelet (its systemd dropin
// after a daemon-reload), the Internal Release Image registry's load
// script and unit restart that registry, its root CA restarts
// update-ca-trust, and ssh keys need nothing. The policy a node applies is a repo's policy merged over these
// (MergeClusterPolicies).
func DefaultNodeDisruptionPolicy() NodeDisruptionPolicy {
	return NodeDisruptionPolicy{
		Files: []FilePolicy{
			{Path: kubeletAuthFile, Actions: []Action{{Type: ActionNone}}},
			{Path: gpgNoRebootPath, Actions: []Action{reload(crioService)}},
			{Path: containerRegistryPolicy, Actions: []Action{reload(crioService)}},
			{Path: ContainerRegistryConfPath, Actions: []Action{{Type: ActionSpecial}}},
			{Path: sigstoreRegistriesConfDir, Actions: []Action{reload(crioService)}},
			{Path: crioPoliciesDir, Actions: []Action{reload(crioService)}},
			{Path: openShiftNMStateConfigDir, Actions: []Action{{Type: ActionNone}}},
			{Path: userCABundlePath, Actions: []Action{restart(updateCATrustService), restart(crioService)}},
			{Path: credentialProvidersDir, Actions: []Action{restart(kubeletService)}},
			{Path: crioCredProviderDropin, Actions: []Action{{Type: ActionDaemonReload}, restart(kubeletService)}},
			{Path: iriLoadImageScriptPath, Actions: []Action{restart(iriRegistryService)}},
			{Path: iriRootCAPath, Actions: []Action{restart(updateCATrustService)}},
		},
		Units: []UnitPolicy{
			{Name: iriRegistryService, Actions: []Action{{Type: ActionDaemonReload}, restart(iriRegistryService)}},
		},
		SSHKey: &SSHKeyPolicy{Actions: []Action{{Type: ActionNone}}},
	}
}

// mergedPolicy is a policy in force with where each entry came from, so
// plans can say "MCO default" or "policy".
type mergedPolicy struct {
	files       []FilePolicy
	fileDefault []bool
	units       []UnitPolicy
	unitDefault []bool
	sshKey      []Action
	sshDefault  bool
}

// MergeClusterPolicies merges a repo's node disruption policy over MCO's
// defaults as apihelpers.MergeClusterPolicies does: a file entry whose path
// is exactly a default's path replaces it in place, other entries are
// appended; units likewise by name; the repo's sshkey actions replace the
// default when it has any. user may be nil.
func MergeClusterPolicies(user *NodeDisruptionPolicy) NodeDisruptionPolicy {
	m := mergePolicies(user)
	out := NodeDisruptionPolicy{Files: m.files, Units: m.units, SSHKey: &SSHKeyPolicy{Actions: m.sshKey}}
	return out
}

func mergePolicies(user *NodeDisruptionPolicy) mergedPolicy {
	def := DefaultNodeDisruptionPolicy()
	m := mergedPolicy{files: def.Files, units: def.Units, sshKey: def.SSHKey.Actions, sshDefault: true}
	m.fileDefault = make([]bool, len(m.files))
	for i := range m.fileDefault {
		m.fileDefault[i] = true
	}
	m.unitDefault = make([]bool, len(m.units))
	for i := range m.unitDefault {
		m.unitDefault[i] = true
	}
	if user == nil {
		return m
	}
	nDefFiles, nDefUnits := len(m.files), len(m.units)
	for _, f := range user.Files {
		replaced := false
		for i := 0; i < nDefFiles; i++ {
			if m.files[i].Path == f.Path {
				m.files[i], m.fileDefault[i], replaced = f, false, true
				break
			}
		}
		if !replaced {
			m.files = append(m.files, f)
			m.fileDefault = append(m.fileDefault, false)
		}
	}
	for _, u := range user.Units {
		replaced := false
		for i := 0; i < nDefUnits; i++ {
			if m.units[i].Name == u.Name {
				m.units[i], m.unitDefault[i], replaced = u, false, true
				break
			}
		}
		if !replaced {
			m.units = append(m.units, u)
			m.unitDefault = append(m.unitDefault, false)
		}
	}
	if user.SSHKey != nil && len(user.SSHKey.Actions) > 0 {
		m.sshKey, m.sshDefault = user.SSHKey.Actions, false
	}
	return m
}

// filePolicy returns the entry whose path matches p longest, as
// FindClosestFilePolicyPathMatch does: the path itself, or a directory
// above it (the policy path cleaned, so a trailing slash is fine); the
// longest path as written wins, the first on a tie.
func (m mergedPolicy) filePolicy(p string) (FilePolicy, bool, bool) {
	best := -1
	for i, fp := range m.files {
		if fp.Path != p && !isSubdirectory(fp.Path, p) {
			continue
		}
		if best < 0 || len(fp.Path) > len(m.files[best].Path) {
			best = i
		}
	}
	if best < 0 {
		return FilePolicy{}, false, false
	}
	return m.files[best], m.fileDefault[best], true
}

func isSubdirectory(dir, target string) bool {
	if dir == "" {
		return false
	}
	return strings.HasPrefix(path.Clean(target), path.Clean(dir)+"/")
}

func (m mergedPolicy) unitPolicy(name string) (UnitPolicy, bool, bool) {
	for i, u := range m.units {
		if u.Name == name {
			return u, m.unitDefault[i], true
		}
	}
	return UnitPolicy{}, false, false
}

func policyReason(isDefault bool, what string, actions []Action) string {
	prefix := userPolicyReasonPrefix
	if isDefault {
		prefix = defaultPolicyReasonPrefix
	}
	return prefix + what + ": " + describeActions(actions)
}
