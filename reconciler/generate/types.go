package generate

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds and groups this package reads.
const (
	KindKubeletConfig            = "KubeletConfig"
	KindContainerRuntimeConfig   = "ContainerRuntimeConfig"
	KindImageDigestMirrorSet     = "ImageDigestMirrorSet"
	KindImageTagMirrorSet        = "ImageTagMirrorSet"
	KindImageContentSourcePolicy = "ImageContentSourcePolicy"
	KindImage                    = "Image"
	// ImageConfigName is the only Image object MCO reads.
	ImageConfigName = "cluster"
)

// Annotations Stoker reads or writes.
const (
	// GeneratedFromAnnotation on a generated MachineConfig names the
	// objects it came from ("KubeletConfig/max-pods (kubelet.yaml)").
	GeneratedFromAnnotation = "stoker.dev/generated-from"
	// KubeletConfigPathAnnotation on a pool names the kubelet config file
	// its KubeletConfigs merge onto and write (default
	// /etc/kubernetes/kubelet.conf, as on OpenShift; kubeadm nodes use
	// /var/lib/kubelet/config.yaml).
	KubeletConfigPathAnnotation = "stoker.dev/kubelet-config-path"
)

// Paths MCO's controllers write.
const (
	RegistriesConfPath     = "/etc/containers/registries.conf"
	PolicyJSONPath         = "/etc/containers/policy.json"
	SearchRegistriesPath   = "/etc/containers/registries.conf.d/01-image-searchRegistries.conf"
	StorageConfPath        = "/etc/containers/storage.conf"
	CRIOLogLevelPath       = "/etc/crio/crio.conf.d/01-ctrcfg-logLevel"
	CRIOPidsLimitPath      = "/etc/crio/crio.conf.d/01-ctrcfg-pidsLimit"
	CRIOLogSizeMaxPath     = "/etc/crio/crio.conf.d/01-ctrcfg-logSizeMax"
	CRIODefaultRuntimePath = "/etc/crio/crio.conf.d/01-ctrcfg-defaultRuntime"
	DefaultKubeletConfPath = "/etc/kubernetes/kubelet.conf"
	NodeSizingEnvPath      = "/etc/node-sizing-enabled.env"
	KubeletLoggingPath     = "/etc/systemd/system/kubelet.service.d/20-logging.conf"
)

// KubeletConfig is machineconfiguration.openshift.io/v1 KubeletConfig.
type KubeletConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeletConfigSpec `json:"spec"`
}

// KubeletConfigSpec is the part of a KubeletConfig MCO acts on.
type KubeletConfigSpec struct {
	MachineConfigPoolSelector *metav1.LabelSelector `json:"machineConfigPoolSelector,omitempty"`
	KubeletConfig             json.RawMessage       `json:"kubeletConfig,omitempty"`
	LogLevel                  *int32                `json:"logLevel,omitempty"`
	AutoSizingReserved        *bool                 `json:"autoSizingReserved,omitempty"`
	TLSSecurityProfile        json.RawMessage       `json:"tlsSecurityProfile,omitempty"`
}

// ContainerRuntimeConfig is machineconfiguration.openshift.io/v1
// ContainerRuntimeConfig.
type ContainerRuntimeConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ContainerRuntimeConfigSpec `json:"spec"`
}

// ContainerRuntimeConfigSpec selects pools and holds the CRI-O settings.
type ContainerRuntimeConfigSpec struct {
	MachineConfigPoolSelector *metav1.LabelSelector   `json:"machineConfigPoolSelector,omitempty"`
	ContainerRuntimeConfig    *ContainerRuntimeFields `json:"containerRuntimeConfig,omitempty"`
}

// ContainerRuntimeFields are the CRI-O and storage settings MCO writes.
type ContainerRuntimeFields struct {
	PidsLimit      *int64             `json:"pidsLimit,omitempty"`
	LogLevel       string             `json:"logLevel,omitempty"`
	LogSizeMax     *resource.Quantity `json:"logSizeMax,omitempty"`
	OverlaySize    *resource.Quantity `json:"overlaySize,omitempty"`
	DefaultRuntime string             `json:"defaultRuntime,omitempty"`
}

// Mirror is one source and its mirrors, in any of the three mirror kinds.
type Mirror struct {
	Source             string   `json:"source"`
	Mirrors            []string `json:"mirrors,omitempty"`
	MirrorSourcePolicy string   `json:"mirrorSourcePolicy,omitempty"`
}

// MirrorSet is an ImageDigestMirrorSet, ImageTagMirrorSet or
// ImageContentSourcePolicy (its kind says which list counts).
type MirrorSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		ImageDigestMirrors      []Mirror `json:"imageDigestMirrors,omitempty"`
		ImageTagMirrors         []Mirror `json:"imageTagMirrors,omitempty"`
		RepositoryDigestMirrors []Mirror `json:"repositoryDigestMirrors,omitempty"`
	} `json:"spec"`
}

// Mirrors returns the list of m's kind and its field name.
func (m *MirrorSet) Mirrors() ([]Mirror, string) {
	switch m.Kind {
	case KindImageTagMirrorSet:
		return m.Spec.ImageTagMirrors, "spec.imageTagMirrors"
	case KindImageContentSourcePolicy:
		return m.Spec.RepositoryDigestMirrors, "spec.repositoryDigestMirrors"
	}
	return m.Spec.ImageDigestMirrors, "spec.imageDigestMirrors"
}

// Image is config.openshift.io/v1 Image; MCO reads the one named cluster.
type Image struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageSpec `json:"spec"`
}

// ImageSpec holds the registry sources MCO writes to the node; the other
// fields concern the cluster's image registry, not nodes.
type ImageSpec struct {
	RegistrySources            RegistrySources `json:"registrySources,omitempty"`
	AllowedRegistriesForImport json.RawMessage `json:"allowedRegistriesForImport,omitempty"`
	ExternalRegistryHostnames  []string        `json:"externalRegistryHostnames,omitempty"`
	AdditionalTrustedCA        json.RawMessage `json:"additionalTrustedCA,omitempty"`
	ImageStreamImportMode      string          `json:"imageStreamImportMode,omitempty"`
}

// RegistrySources are the node-side registry settings of Image cluster.
type RegistrySources struct {
	InsecureRegistries               []string `json:"insecureRegistries,omitempty"`
	BlockedRegistries                []string `json:"blockedRegistries,omitempty"`
	AllowedRegistries                []string `json:"allowedRegistries,omitempty"`
	ContainerRuntimeSearchRegistries []string `json:"containerRuntimeSearchRegistries,omitempty"`
}
