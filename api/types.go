package api

import (
	"encoding/json"
)

// API groups and kinds Stoker reads, spelled as OpenShift spells them so
// existing manifests load unchanged.
const (
	MachineConfigGroupVersion = "machineconfiguration.openshift.io/v1"
	OperatorGroupVersion      = "operator.openshift.io/v1"

	KindMachineConfig          = "MachineConfig"
	KindMachineConfigPool      = "MachineConfigPool"
	KindMachineConfiguration   = "MachineConfiguration"
	KindKubeletConfig          = "KubeletConfig"
	KindContainerRuntimeConfig = "ContainerRuntimeConfig"
)

// Well-known labels and annotations.
const (
	// RoleLabel is the label MachineConfigs carry to say which pool role
	// they belong to.
	RoleLabel = "machineconfiguration.openshift.io/role"
	// ZoneLabel orders rollouts: zones alphabetically, then oldest first.
	ZoneLabel = "topology.kubernetes.io/zone"
	// NodeRoleLabelPrefix prefixes the node-role labels pools select on.
	NodeRoleLabelPrefix = "node-role.kubernetes.io/"

	// GeneratedByControllerVersionAnnotation marks a MachineConfig MCO's
	// controller generated (00-worker, 01-worker-kubelet, rendered-...),
	// as `oc get mc -o yaml` exports it. MCO ignores the osImageURL of such
	// MachineConfigs and refuses those of another controller version;
	// Stoker has no controller version of its own, so it renders them as
	// plain MachineConfigs, ignores their osImageURL (the OS image comes
	// from the repo's own MachineConfigs) and warns.
	GeneratedByControllerVersionAnnotation = "machineconfiguration.openshift.io/generated-by-controller-version"

	// SourceBranchAnnotation on a pool makes it render its MachineConfigs
	// from that branch of the config repo instead of the default branch.
	SourceBranchAnnotation = "stoker.dev/source-branch"
	// DriftAnnotation on a pool selects the drift remediation policy.
	DriftAnnotation = "stoker.dev/drift"
	// MaxFailedPercentAnnotation on a pool is its rollout's success
	// threshold: the rollout stops when more than this percentage (an
	// integer 0-100, "%" optional) of the nodes given the pool's target
	// went Degraded on it. Stoker's, not MCO's (flightctl's success
	// threshold).
	MaxFailedPercentAnnotation = "stoker.dev/max-failed-percent"

	// Node annotations the agent mirrors its state onto in Kubernetes mode.
	NodeStateAnnotation         = "stoker.dev/state"
	NodeCurrentConfigAnnotation = "stoker.dev/current-config"
	NodeDesiredConfigAnnotation = "stoker.dev/desired-config"
	NodeReasonAnnotation        = "stoker.dev/reason"
)

// Built-in pool names.
const (
	PoolMaster  = "master"
	PoolWorker  = "worker"
	PoolArbiter = "arbiter"
)

// DefaultCoreUser is the only user a MachineConfig may configure by default.
const DefaultCoreUser = "core"

// MachineConfig is machineconfiguration.openshift.io/v1 MachineConfig.
type MachineConfig struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata,omitempty"`
	Spec       MachineConfigSpec `json:"spec"`
}

// MachineConfigSpec is the part of a MachineConfig a node applies.
type MachineConfigSpec struct {
	// Config is an Ignition config (spec 2.2 or 3.x) as written by people;
	// in a rendered MachineConfig it is always the normalised 3.x JSON.
	Config          json.RawMessage `json:"config,omitempty"`
	KernelArguments []string        `json:"kernelArguments,omitempty"`
	KernelType      string          `json:"kernelType,omitempty"`
	Extensions      []string        `json:"extensions,omitempty"`
	FIPS            bool            `json:"fips,omitempty"`
	OSImageURL      string          `json:"osImageURL,omitempty"`
}

// MachineConfigPool is machineconfiguration.openshift.io/v1 MachineConfigPool.
type MachineConfigPool struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata,omitempty"`
	Spec       MachineConfigPoolSpec `json:"spec"`
}

// MachineConfigPoolSpec selects the MachineConfigs and the nodes of a pool.
type MachineConfigPoolSpec struct {
	MachineConfigSelector *LabelSelector `json:"machineConfigSelector,omitempty"`
	NodeSelector          *LabelSelector `json:"nodeSelector,omitempty"`
	Paused                bool           `json:"paused,omitempty"`
	MaxUnavailable        *IntOrString   `json:"maxUnavailable,omitempty"`
}

// MachineConfiguration is operator.openshift.io/v1 MachineConfiguration;
// Stoker reads only the one named "cluster" and only its node disruption
// policy.
type MachineConfiguration struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata,omitempty"`
	Spec       MachineConfigurationSpec `json:"spec"`
}

// MachineConfigurationSpec holds the node disruption policy.
type MachineConfigurationSpec struct {
	NodeDisruptionPolicy *NodeDisruptionPolicy `json:"nodeDisruptionPolicy,omitempty"`
}

// NodeDisruptionPolicy maps changes to actions, as OpenShift's
// NodeDisruptionPolicyConfig does.
type NodeDisruptionPolicy struct {
	Files  []FilePolicy  `json:"files,omitempty"`
	Units  []UnitPolicy  `json:"units,omitempty"`
	SSHKey *SSHKeyPolicy `json:"sshkey,omitempty"`
}

// FilePolicy applies to files whose path has Path as its longest prefix.
type FilePolicy struct {
	Path    string   `json:"path"`
	Actions []Action `json:"actions"`
}

// UnitPolicy applies to the unit named Name exactly.
type UnitPolicy struct {
	Name    string   `json:"name"`
	Actions []Action `json:"actions"`
}

// SSHKeyPolicy applies to changes of the core user's ssh keys.
type SSHKeyPolicy struct {
	Actions []Action `json:"actions"`
}

// ActionType is a disruption action.
type ActionType string

// The disruption actions, weakest first (see ActionType.Strength).
const (
	ActionNone         ActionType = "None"
	ActionReload       ActionType = "Reload"
	ActionRestart      ActionType = "Restart"
	ActionDaemonReload ActionType = "DaemonReload"
	ActionDrain        ActionType = "Drain"
	ActionReboot       ActionType = "Reboot"
	// ActionSpecial is MCO's status-only action for registries.conf: reload
	// crio, and drain first when the change is not safe
	// (SafeRegistriesChange). Only the built-in defaults use it; a plan
	// never carries it, it carries the Reload (and Drain) it stands for.
	ActionSpecial ActionType = "Special"
	// ActionUnreconcilable is a plan's action when MCO's daemon would refuse
	// the change on a running node (IsRenderedConfigReconcilable): the node
	// does not apply it and reports Degraded.
	ActionUnreconcilable ActionType = "Unreconcilable"
)

// Strength orders actions so a plan's overall action is its strongest.
func (t ActionType) Strength() int {
	switch t {
	case ActionNone:
		return 0
	case ActionDaemonReload:
		return 1
	case ActionReload:
		return 2
	case ActionRestart:
		return 3
	case ActionDrain:
		return 4
	case ActionReboot:
		return 5
	case ActionUnreconcilable:
		return 6
	}
	return -1
}

// Action is one step of a disruption policy.
type Action struct {
	Type    ActionType     `json:"type"`
	Reload  *ServiceTarget `json:"reload,omitempty"`
	Restart *ServiceTarget `json:"restart,omitempty"`
}

// ServiceTarget names the systemd service a Reload or Restart acts on.
type ServiceTarget struct {
	ServiceName string `json:"serviceName"`
}
