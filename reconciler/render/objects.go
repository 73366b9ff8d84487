package render

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"stoker.dev/stoker/api"
)

// strictUnmarshal decodes case-sensitively; unknown and duplicate fields
// come back as strict errors (warnings to us), type errors as err.
func strictUnmarshal(data []byte, v any) ([]error, error) {
	return kjson.UnmarshalStrict(data, v)
}

var typeErrRe = regexp.MustCompile(`cannot unmarshal (.+) into Go struct field \w+\.(\S+) of type (\S+)`)

// typeError turns a JSON type error into "field: got X, want Y" wording
// people can act on.
func typeError(err error) string {
	if m := typeErrRe.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("%s: wrong type: got %s, want %s", m[2], m[1], friendlyType(m[3]))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func friendlyType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		return "an object (" + t + ")"
	case t == "bool":
		return "a boolean"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	}
	return t
}

// ValidatePool checks a MachineConfigPool on its own: selectors,
// maxUnavailable, Stoker's annotations, and MCO's admission rule that a
// custom pool must take in the MachineConfigs of role worker.
func ValidatePool(pool api.MachineConfigPool) api.Problems {
	var ps api.Problems
	add := func(f, format string, args ...any) { ps = append(ps, errorAt(f, format, args...)...) }
	ps = append(ps, selectorProblems(pool.Spec.MachineConfigSelector, "spec.machineConfigSelector")...)
	ps = append(ps, selectorProblems(pool.Spec.NodeSelector, "spec.nodeSelector")...)
	if mu := pool.Spec.MaxUnavailable; mu != nil {
		if _, err := ParseMaxUnavailable(mu); err != nil {
			add("spec.maxUnavailable", "%v", err)
		}
	}
	switch pool.Name {
	case api.PoolMaster, api.PoolWorker, api.PoolArbiter:
	default:
		if pool.Name != "" && !inheritsWorker(pool.Spec.MachineConfigSelector) {
			add("spec.machineConfigSelector", "custom pool %q must select MachineConfigs with %s: worker (matchLabels, or matchExpressions In [worker, ...]), as MCO's admission policy custom-machine-config-pool-selector requires", pool.Name, api.RoleLabel)
		}
	}
	if b, ok := pool.Annotations[api.SourceBranchAnnotation]; ok {
		if err := checkBranchName(b); err != nil {
			add("metadata.annotations["+api.SourceBranchAnnotation+"]", "%v", err)
		}
	}
	if d, ok := pool.Annotations[api.DriftAnnotation]; ok {
		switch api.DriftPolicy(d) {
		case api.DriftReport, api.DriftRestore:
		default:
			add("metadata.annotations["+api.DriftAnnotation+"]", "%q is not one of report, restore", d)
		}
	}
	return ps
}

// ParseMaxUnavailable checks maxUnavailable (a non-negative int or a
// percentage from 0% to 100%) and returns it as a string.
func ParseMaxUnavailable(mu *intstr.IntOrString) (string, error) {
	if mu == nil {
		return "", nil
	}
	if mu.Type == intstr.Int {
		if mu.IntVal < 0 {
			return "", fmt.Errorf("%d is negative", mu.IntVal)
		}
		return strconv.Itoa(int(mu.IntVal)), nil
	}
	s := mu.StrVal
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if !strings.HasSuffix(s, "%") || err != nil || n < 0 || n > 100 {
		return "", fmt.Errorf("%q is neither a non-negative integer nor a percentage from 0%% to 100%%", s)
	}
	return s, nil
}

func inheritsWorker(sel *metav1.LabelSelector) bool {
	if sel == nil {
		return false
	}
	if sel.MatchLabels[api.RoleLabel] == api.PoolWorker {
		return true
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == api.RoleLabel && e.Operator == metav1.LabelSelectorOpIn {
			for _, v := range e.Values {
				if v == api.PoolWorker {
					return true
				}
			}
		}
	}
	return false
}

func selectorProblems(sel *metav1.LabelSelector, fld string) api.Problems {
	if sel == nil {
		return nil
	}
	var ps api.Problems
	for _, e := range metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, field.NewPath(fld)) {
		ps = append(ps, errorAt(e.Field, "%s", e.ErrorBody())...)
	}
	if len(ps) > 0 {
		return ps
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		ps = append(ps, errorAt(fld, "invalid selector: %v", err)...)
	}
	return ps
}

// checkBranchName applies the part of git check-ref-format that matters for
// a branch named in an annotation.
func checkBranchName(b string) error {
	switch {
	case b == "":
		return fmt.Errorf("empty branch name")
	case strings.HasPrefix(b, "-"), strings.HasPrefix(b, "/"), strings.HasSuffix(b, "/"),
		strings.HasSuffix(b, ".lock"), strings.HasSuffix(b, "."),
		strings.Contains(b, ".."), strings.Contains(b, "//"), strings.Contains(b, "@{"),
		strings.ContainsAny(b, " ~^:?*[\\\t\n"):
		return fmt.Errorf("%q is not a valid branch name", b)
	}
	return nil
}

// unitNameRe is a systemd unit name with a known suffix.
var unitNameRe = regexp.MustCompile(`^[a-zA-Z0-9:._\\@-]+\.(service|socket|device|mount|automount|swap|target|path|timer|snapshot|slice|scope)$`)

// ValidateDisruptionPolicy checks a node disruption policy as the
// MachineConfiguration CRD's schema and CEL rules do: paths absolute,
// units named, actions known, reload/restart present exactly when the
// type is Reload/Restart, Reboot and None alone.
func ValidateDisruptionPolicy(p api.NodeDisruptionPolicy) api.Problems {
	var ps api.Problems
	seen := map[string]bool{}
	for i, f := range p.Files {
		fld := "files[" + strconv.Itoa(i) + "]"
		switch {
		case f.Path == "":
			ps = append(ps, errorAt(fld+".path", "missing")...)
		case !path.IsAbs(f.Path) || (path.Clean(f.Path) != f.Path && path.Clean(f.Path)+"/" != f.Path):
			// A trailing slash is fine, as in MCO: the policy covers
			// what is below the directory (FindClosestFilePolicyPathMatch).
			ps = append(ps, errorAt(fld+".path", "%q must be an absolute, clean path (a trailing slash is allowed)", f.Path)...)
		case seen["f"+f.Path]:
			ps = append(ps, errorAt(fld+".path", "duplicate path %q", f.Path)...)
		}
		seen["f"+f.Path] = true
		ps = append(ps, validateActions(f.Actions, fld+".actions")...)
	}
	for i, u := range p.Units {
		fld := "units[" + strconv.Itoa(i) + "]"
		switch {
		case u.Name == "":
			ps = append(ps, errorAt(fld+".name", "missing")...)
		case !unitNameRe.MatchString(u.Name):
			ps = append(ps, errorAt(fld+".name", "%q is not a systemd unit name", u.Name)...)
		case seen["u"+u.Name]:
			ps = append(ps, errorAt(fld+".name", "duplicate unit %q", u.Name)...)
		}
		seen["u"+u.Name] = true
		ps = append(ps, validateActions(u.Actions, fld+".actions")...)
	}
	if p.SSHKey != nil {
		ps = append(ps, validateActions(p.SSHKey.Actions, "sshkey.actions")...)
	}
	return ps
}

func validateActions(actions []api.Action, fld string) api.Problems {
	var ps api.Problems
	if len(actions) == 0 {
		return errorAt(fld, "at least one action is required")
	}
	for i, a := range actions {
		af := fld + "[" + strconv.Itoa(i) + "]"
		switch a.Type {
		case api.ActionNone, api.ActionReboot:
			if len(actions) > 1 {
				ps = append(ps, errorAt(af+".type", "%s must be the only action", a.Type)...)
			}
		case api.ActionReload, api.ActionRestart, api.ActionDrain, api.ActionDaemonReload:
		case "":
			ps = append(ps, errorAt(af+".type", "missing")...)
		default:
			ps = append(ps, errorAt(af+".type", "unknown action %q (want Reboot, Drain, Reload, Restart, DaemonReload or None)", a.Type)...)
		}
		ps = append(ps, serviceTarget(a.Reload, a.Type == api.ActionReload, af+".reload", "Reload")...)
		ps = append(ps, serviceTarget(a.Restart, a.Type == api.ActionRestart, af+".restart", "Restart")...)
	}
	return ps
}

func serviceTarget(t *api.ServiceTarget, want bool, fld, typ string) api.Problems {
	switch {
	case want && t == nil:
		return errorAt(fld, "required when the type is %s", typ)
	case !want && t != nil:
		return errorAt(fld, "only allowed when the type is %s", typ)
	case t == nil:
		return nil
	case t.ServiceName == "":
		return errorAt(fld+".serviceName", "missing")
	case !unitNameRe.MatchString(t.ServiceName):
		return errorAt(fld+".serviceName", "%q is not a systemd unit name", t.ServiceName)
	}
	return nil
}

// kubeletConfig is the part of a KubeletConfig Stoker reads.
type kubeletConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		MachineConfigPoolSelector *metav1.LabelSelector `json:"machineConfigPoolSelector,omitempty"`
		KubeletConfig             json.RawMessage       `json:"kubeletConfig,omitempty"`
		LogLevel                  *int32                `json:"logLevel,omitempty"`
		AutoSizingReserved        *bool                 `json:"autoSizingReserved,omitempty"`
		TLSSecurityProfile        json.RawMessage       `json:"tlsSecurityProfile,omitempty"`
	} `json:"spec"`
}

// kubeletForbidden are the KubeletConfiguration fields MCO's
// validateUserKubeletConfig refuses: the platform owns them.
var kubeletForbidden = []string{"cgroupDriver", "clusterDNS", "clusterDomain", "featureGates", "failSwapOn", "staticPodPath", "runtimeRequestTimeout"}

func (l *loader) loadKubeletConfig(c objCtx, js []byte) {
	var kc kubeletConfig
	if !c.decode(js, &kc) {
		return
	}
	c.checkMeta(kc.ObjectMeta)
	c.addAll("", selectorProblems(kc.Spec.MachineConfigPoolSelector, "spec.machineConfigPoolSelector"))
	if lv := kc.Spec.LogLevel; lv != nil && (*lv < 1 || *lv > 10) {
		c.errorf("spec.logLevel", "%d is outside [1,10]", *lv)
	}
	if len(kc.Spec.KubeletConfig) > 0 && string(kc.Spec.KubeletConfig) != "null" {
		var m map[string]any
		if err := json.Unmarshal(kc.Spec.KubeletConfig, &m); err != nil {
			c.errorf("spec.kubeletConfig", "must be an object: %v", err)
		} else {
			for _, k := range kubeletForbidden {
				if _, ok := m[k]; ok {
					c.errorf("spec.kubeletConfig."+k, "%s is not allowed to be set (MCO's validateUserKubeletConfig)", k)
				}
			}
			if ms, ok := m["memorySwap"].(map[string]any); ok {
				if sb, ok := ms["swapBehavior"]; ok && sb != "" {
					c.errorf("spec.kubeletConfig.memorySwap.swapBehavior", "swapBehavior is not allowed to be set (MCO's validateUserKubeletConfig)")
				}
			}
			soft, _ := m["evictionSoft"].(map[string]any)
			grace, _ := m["evictionSoftGracePeriod"].(map[string]any)
			for _, k := range sortedKeys(soft) {
				if _, ok := grace[k]; !ok {
					c.errorf("spec.kubeletConfig.evictionSoftGracePeriod", "evictionSoft %s has no grace period", k)
				}
			}
			for _, k := range sortedKeys(grace) {
				if _, ok := soft[k]; !ok {
					c.errorf("spec.kubeletConfig.evictionSoft", "evictionSoftGracePeriod %s has no evictionSoft threshold", k)
				}
			}
		}
	}
	l.addForeign(c, kc.APIVersion, kc.Kind, kc.ObjectMeta)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type containerRuntimeConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		MachineConfigPoolSelector *metav1.LabelSelector `json:"machineConfigPoolSelector,omitempty"`
		ContainerRuntimeConfig    *struct {
			PidsLimit      *int64             `json:"pidsLimit,omitempty"`
			LogLevel       string             `json:"logLevel,omitempty"`
			LogSizeMax     *resource.Quantity `json:"logSizeMax,omitempty"`
			OverlaySize    *resource.Quantity `json:"overlaySize,omitempty"`
			DefaultRuntime string             `json:"defaultRuntime,omitempty"`
		} `json:"containerRuntimeConfig,omitempty"`
	} `json:"spec"`
}

// Limits from MCO's validateUserContainerRuntimeConfig.
const (
	minPidsLimit  = 20
	minLogSizeMax = 8192
)

func (l *loader) loadContainerRuntimeConfig(c objCtx, js []byte) {
	var cc containerRuntimeConfig
	if !c.decode(js, &cc) {
		return
	}
	c.checkMeta(cc.ObjectMeta)
	c.addAll("", selectorProblems(cc.Spec.MachineConfigPoolSelector, "spec.machineConfigPoolSelector"))
	if r := cc.Spec.ContainerRuntimeConfig; r == nil {
		c.errorf("spec.containerRuntimeConfig", "missing")
	} else {
		f := "spec.containerRuntimeConfig."
		if r.PidsLimit != nil && *r.PidsLimit > 0 && *r.PidsLimit < minPidsLimit {
			c.errorf(f+"pidsLimit", "%d is below the minimum of %d", *r.PidsLimit, minPidsLimit)
		}
		if r.LogSizeMax != nil && r.LogSizeMax.Value() > 0 && r.LogSizeMax.Value() < minLogSizeMax {
			c.errorf(f+"logSizeMax", "%s is below the minimum of %d bytes", r.LogSizeMax, minLogSizeMax)
		}
		if r.OverlaySize != nil && r.OverlaySize.Value() < 0 {
			c.errorf(f+"overlaySize", "%s is negative", r.OverlaySize)
		}
		switch r.LogLevel {
		case "", "error", "fatal", "panic", "warn", "info", "debug", "trace":
		default:
			c.errorf(f+"logLevel", "%q is not one of error, fatal, panic, warn, info, debug, trace", r.LogLevel)
		}
		switch r.DefaultRuntime {
		case "", "runc", "crun":
		default:
			c.errorf(f+"defaultRuntime", "%q is not one of runc, crun", r.DefaultRuntime)
		}
	}
	l.addForeign(c, cc.APIVersion, cc.Kind, cc.ObjectMeta)
}

type mirror struct {
	Source             string   `json:"source"`
	Mirrors            []string `json:"mirrors,omitempty"`
	MirrorSourcePolicy string   `json:"mirrorSourcePolicy,omitempty"`
}

type mirrorSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		ImageDigestMirrors      []mirror `json:"imageDigestMirrors,omitempty"`
		ImageTagMirrors         []mirror `json:"imageTagMirrors,omitempty"`
		RepositoryDigestMirrors []mirror `json:"repositoryDigestMirrors,omitempty"`
	} `json:"spec"`
}

func (l *loader) loadMirrorSet(c objCtx, kind string, js []byte) {
	var ms mirrorSet
	if !c.decode(js, &ms) {
		return
	}
	c.checkMeta(ms.ObjectMeta)
	lists := map[string][]mirror{
		KindImageDigestMirrorSet:     ms.Spec.ImageDigestMirrors,
		KindImageTagMirrorSet:        ms.Spec.ImageTagMirrors,
		KindImageContentSourcePolicy: ms.Spec.RepositoryDigestMirrors,
	}
	names := map[string]string{
		KindImageDigestMirrorSet:     "imageDigestMirrors",
		KindImageTagMirrorSet:        "imageTagMirrors",
		KindImageContentSourcePolicy: "repositoryDigestMirrors",
	}
	for i, m := range lists[kind] {
		f := "spec." + names[kind] + "[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(m.Source) == "" {
			c.errorf(f+".source", "missing")
		}
		for j, mr := range m.Mirrors {
			if strings.TrimSpace(mr) == "" || strings.Contains(mr, "://") {
				c.errorf(f+".mirrors["+strconv.Itoa(j)+"]", "%q is not a registry scope (host[:port][/path], no scheme)", mr)
			}
		}
		switch m.MirrorSourcePolicy {
		case "", "AllowContactingSource":
		case "NeverContactSource":
			if len(m.Mirrors) == 0 {
				c.errorf(f+".mirrors", "NeverContactSource needs at least one mirror")
			}
		default:
			c.errorf(f+".mirrorSourcePolicy", "%q is not one of NeverContactSource, AllowContactingSource", m.MirrorSourcePolicy)
		}
	}
	l.addForeign(c, ms.APIVersion, ms.Kind, ms.ObjectMeta)
}
