//go:build agentonly && nokube

package api

import "encoding/json"

// The host agent build's Kubernetes types (meta.go has the others): the
// slim structs of meta_slim.go, and an int-or-string kept as its raw JSON.
type (
	TypeMeta                 = slimTypeMeta
	ObjectMeta               = slimObjectMeta
	LabelSelector            = slimLabelSelector
	LabelSelectorRequirement = slimLabelSelectorRequirement
	Condition                = slimCondition
	IntOrString              = json.RawMessage
)
