package api

import "time"

// The host agent build (tags agentonly,nokube, meta_host.go) makes api's
// Kubernetes types these structs instead of apimachinery's. The agent reads
// and writes none of the kinds that hold them (MachineConfig,
// MachineConfigPool, MachineConfiguration, the fleet's pool conditions):
// they exist so package api builds without apimachinery. They keep
// Kubernetes' Go and JSON field names (TestSlimMetaMatchesKubernetes), so
// code and documents mean the same in both builds; code that needs
// Kubernetes' methods (label selectors, IntOrString arithmetic) is the
// hub's and does not build there.
type (
	slimTypeMeta struct {
		Kind       string `json:"kind,omitempty"`
		APIVersion string `json:"apiVersion,omitempty"`
	}
	slimObjectMeta struct {
		Name        string            `json:"name,omitempty"`
		Namespace   string            `json:"namespace,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	slimLabelSelector struct {
		MatchLabels      map[string]string              `json:"matchLabels,omitempty"`
		MatchExpressions []slimLabelSelectorRequirement `json:"matchExpressions,omitempty"`
	}
	slimLabelSelectorRequirement struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values,omitempty"`
	}
	slimCondition struct {
		Type               string    `json:"type"`
		Status             string    `json:"status"`
		ObservedGeneration int64     `json:"observedGeneration,omitempty"`
		LastTransitionTime time.Time `json:"lastTransitionTime"`
		Reason             string    `json:"reason"`
		Message            string    `json:"message"`
	}
)
