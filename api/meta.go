//go:build !(agentonly && nokube)

package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Kubernetes types api's kinds are made of, as Kubernetes defines
// them. The host agent build (tags agentonly,nokube) has meta_host.go's
// instead: apimachinery's meta/v1 links its runtime, conversion, CBOR and
// structured-merge-diff packages, 1.6 MB of the host agent's binary that
// it never runs but holds in resident memory (docs/scale.md).
type (
	TypeMeta                 = metav1.TypeMeta
	ObjectMeta               = metav1.ObjectMeta
	LabelSelector            = metav1.LabelSelector
	LabelSelectorRequirement = metav1.LabelSelectorRequirement
	Condition                = metav1.Condition
	IntOrString              = intstr.IntOrString
)
