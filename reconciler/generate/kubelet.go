package generate

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"dario.cat/mergo"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kjson "sigs.k8s.io/json"

	"stoker.dev/stoker/api"
)

// decodeKubelet is MCO's DecodeKubeletConfig: YAML or JSON into the
// kubelet's v1beta1 KubeletConfiguration.
func decodeKubelet(data []byte) (*kubeletv1beta1.KubeletConfiguration, error) {
	cfg := &kubeletv1beta1.KubeletConfiguration{}
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), len(data)+1).Decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// encodeKubelet is MCO's EncodeKubeletConfig: the scheme's YAML encoder
// for kubelet.config.k8s.io/v1beta1.
func encodeKubelet(cfg *kubeletv1beta1.KubeletConfiguration) ([]byte, error) {
	scheme := runtime.NewScheme()
	if err := kubeletv1beta1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme)
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	if !ok {
		return nil, fmt.Errorf("no YAML serializer for kubelet config")
	}
	return runtime.Encode(codecs.EncoderForVersion(info.Serializer, kubeletv1beta1.SchemeGroupVersion), cfg)
}

// ValidateKubeletConfig checks a KubeletConfig as MCO's
// validateUserKubeletConfig does: logLevel in [1,10], the fields the
// platform owns refused (cgroupDriver, clusterDNS, clusterDomain,
// featureGates, staticPodPath, failSwapOn, memorySwap.swapBehavior),
// autoSizingReserved not with systemReserved, systemReservedCgroup
// matching systemCgroups. Unknown kubelet fields are warnings (MCO drops
// them silently). Fields are relative to the object.
func ValidateKubeletConfig(kc KubeletConfig) api.Problems {
	var ps api.Problems
	if lv := kc.Spec.LogLevel; lv != nil && (*lv < 1 || *lv > 10) {
		ps = append(ps, errorAt("", "spec.logLevel", "KubeletConfig's LogLevel is not valid [1,10]: %d", *lv))
	}
	if len(kc.Spec.TLSSecurityProfile) > 0 && string(kc.Spec.TLSSecurityProfile) != "null" {
		ps = append(ps, warnAt("", "spec.tlsSecurityProfile", "not applied by Stoker: set tlsMinVersion and tlsCipherSuites in the base kubelet config"))
	}
	raw := bytes.TrimSpace(kc.Spec.KubeletConfig)
	if len(raw) == 0 || string(raw) == "null" {
		return ps
	}
	const f = "spec.kubeletConfig"
	cfg, err := decodeKubelet(raw)
	if err != nil {
		return append(ps, errorAt("", f, "KubeletConfig could not be unmarshalled: %v", err))
	}
	var probe kubeletv1beta1.KubeletConfiguration
	if strict, err := kjson.UnmarshalStrict(raw, &probe); err == nil {
		for _, se := range strict {
			if fe, ok := se.(interface{ FieldPath() string }); ok && fe.FieldPath() != "" {
				ps = append(ps, warnAt("", f+"."+fe.FieldPath(), "not a KubeletConfiguration field; ignored"))
			}
		}
	}
	forbid := func(field string, set bool, v any) {
		if set {
			ps = append(ps, errorAt("", f+"."+field, "KubeletConfiguration: %s is not allowed to be set, but contains: %v", path.Base(strings.ReplaceAll(field, ".", "/")), v))
		}
	}
	forbid("cgroupDriver", cfg.CgroupDriver != "", cfg.CgroupDriver)
	forbid("clusterDNS", len(cfg.ClusterDNS) > 0, cfg.ClusterDNS)
	forbid("clusterDomain", cfg.ClusterDomain != "", cfg.ClusterDomain)
	forbid("featureGates", len(cfg.FeatureGates) > 0, cfg.FeatureGates)
	forbid("staticPodPath", cfg.StaticPodPath != "", cfg.StaticPodPath)
	forbid("failSwapOn", cfg.FailSwapOn != nil, cfg.FailSwapOn != nil && *cfg.FailSwapOn)
	forbid("memorySwap.swapBehavior", cfg.MemorySwap.SwapBehavior != "", cfg.MemorySwap.SwapBehavior)
	if len(cfg.SystemReserved) > 0 && kc.Spec.AutoSizingReserved != nil && *kc.Spec.AutoSizingReserved {
		ps = append(ps, errorAt("", "spec.autoSizingReserved", "KubeletConfiguration: autoSizingReserved and systemdReserved cannot be set together"))
	}
	if cfg.SystemReservedCgroup != "" && cfg.SystemCgroups != "" && cfg.SystemReservedCgroup != cfg.SystemCgroups {
		ps = append(ps, errorAt("", f+".systemReservedCgroup", "KubeletConfiguration: systemReservedCgroup (%s) must match systemCgroups (%s)", cfg.SystemReservedCgroup, cfg.SystemCgroups))
	}
	return ps
}

// kubeletConfPath is where a pool's kubelet config lives.
func kubeletConfPath(p Pool) string {
	if v := p.Annotations[KubeletConfigPathAnnotation]; v != "" {
		return v
	}
	return DefaultKubeletConfPath
}

// generateKubelet is MCO's syncKubeletConfig: per pool its selector
// matches, one MachineConfig per KubeletConfig (in name order: Stoker has
// no creation time), each holding the pool's whole base kubelet config
// with that one object merged on (generateKubeletIgnFiles), plus the
// logging drop-in and the node-sizing env file when asked for.
func generateKubelet(in Input) ([]Generated, api.Problems) {
	items := append([]Item[KubeletConfig](nil), in.KubeletConfigs...)
	sort.SliceStable(items, func(i, j int) bool { return items[i].Object.Name < items[j].Object.Name })
	var out []Generated
	var ps api.Problems
	count := map[string]int{}
	for _, it := range items {
		kc := it.Object
		pools, err := selectPools(in.Pools, kc.Spec.MachineConfigPoolSelector)
		if err != nil {
			ps = append(ps, errorAt(it.File, "spec.machineConfigPoolSelector", "%v", err))
			continue
		}
		if len(pools) == 0 {
			ps = append(ps, warnAt(it.File, "spec.machineConfigPoolSelector", "could not find any MachineConfigPool set for KubeletConfig %s: the selector matches no pool's labels, so it has no effect (MCO reports the same on the object)", kc.Name))
			continue
		}
		for _, pool := range pools {
			p := kubeletConfPath(pool)
			data, mode, from, ok, err := pool.baseFile(p)
			if err != nil {
				ps = append(ps, errorAt(it.File, "", "pool %s: %v", pool.Name, err))
				continue
			}
			if !ok {
				ps = append(ps, errorAt(it.File, "", "pool %s has no base kubelet config at %s for KubeletConfig %s to merge onto: add a MachineConfig (or Butane file) the pool selects that writes it, or name the pool's kubelet config path in its %s annotation", pool.Name, p, kc.Name, KubeletConfigPathAnnotation))
				continue
			}
			files, err := kubeletFiles(kc, data)
			if err != nil {
				ps = append(ps, errorAt(it.File, "spec.kubeletConfig", "pool %s: merge onto %s from MachineConfig %s: %v", pool.Name, p, from, err))
				continue
			}
			files[0].path, files[0].mode = p, mode
			n := count[pool.Name]
			if n > maxSuffix {
				ps = append(ps, errorAt(it.File, "metadata.name", "max number of supported kubelet config (10) has been reached for pool %s", pool.Name))
				continue
			}
			count[pool.Name]++
			out = append(out, machineConfig(managedName(pool.Name, "kubelet", n), pool.Name, files, []Origin{{File: it.File, Kind: KindKubeletConfig, Name: kc.Name}}))
		}
	}
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	return out, ps
}

// kubeletFiles is MCO's generateKubeletIgnFiles for one object: the
// merged kubelet config first (its path set by the caller), then the
// logging drop-in and node-sizing env file if any.
func kubeletFiles(kc KubeletConfig, base []byte) ([]file, error) {
	orig, err := decodeKubelet(base)
	if err != nil {
		return nil, fmt.Errorf("decode base kubelet config: %w", err)
	}
	reserved := map[string]string{}
	raw := bytes.TrimSpace(kc.Spec.KubeletConfig)
	if len(raw) > 0 && string(raw) != "null" {
		spec, err := decodeKubelet(raw)
		if err != nil {
			return nil, fmt.Errorf("decode kubeletConfig: %w", err)
		}
		for _, k := range []string{"memory", "cpu", "ephemeral-storage"} {
			if v, ok := spec.SystemReserved[k]; ok {
				reserved[k] = v
				delete(spec.SystemReserved, k)
			}
		}
		spec.FeatureGates = nil
		// protectKernelDefaults: false is lost to omitempty; MCO looks for
		// it in the raw JSON.
		if bytes.Contains(raw, []byte(`"protectKernelDefaults":false`)) {
			orig.ProtectKernelDefaults = false
		}
		if err := mergo.Merge(orig, spec, mergo.WithOverride); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	if orig.ReservedSystemCPUs != "" {
		orig.SystemReservedCgroup = ""
		orig.EnforceNodeAllocatable = []string{"pods"}
	}
	enc, err := encodeKubelet(orig)
	if err != nil {
		return nil, fmt.Errorf("encode kubelet config: %w", err)
	}
	files := []file{{data: enc}}
	if kc.Spec.LogLevel != nil {
		files = append(files, file{path: KubeletLoggingPath, data: []byte("[Service]\nEnvironment=\"KUBELET_LOG_LEVEL=" + strconv.Itoa(int(*kc.Spec.LogLevel)) + "\"\n")})
	}
	if kc.Spec.AutoSizingReserved != nil || len(reserved) > 0 {
		auto := "false"
		if len(reserved) == 0 && *kc.Spec.AutoSizingReserved {
			auto = "true"
		}
		val := func(k, def string) string {
			if v := reserved[k]; v != "" {
				return v
			}
			return def
		}
		env := "NODE_SIZING_ENABLED=" + auto + "\nSYSTEM_RESERVED_MEMORY=" + val("memory", "1Gi") + "\nSYSTEM_RESERVED_CPU=" + val("cpu", "500m") + "\nSYSTEM_RESERVED_ES=" + val("ephemeral-storage", "1Gi") + "\n"
		files = append(files, file{path: NodeSizingEnvPath, data: []byte(env)})
	}
	return files, nil
}
