package render

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

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
	if v, ok := pool.Annotations[api.MaxFailedPercentAnnotation]; ok {
		if _, err := ParseMaxFailedPercent(v); err != nil {
			add("metadata.annotations["+api.MaxFailedPercentAnnotation+"]", "%v", err)
		}
	}
	if _, wps := api.ParseWindow(pool.Annotations); len(wps) > 0 {
		ps = append(ps, wps...)
	}
	return ps
}

// ParseMaxFailedPercent reads a pool's stoker.dev/max-failed-percent: an
// integer from 0 to 100, optionally followed by "%".
func ParseMaxFailedPercent(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "%"))
	if err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0 to 100", v)
	}
	return n, nil
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
		case api.ValidUnitName(u.Name) != nil:
			ps = append(ps, errorAt(fld+".name", "%v", api.ValidUnitName(u.Name))...)
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
	case api.ValidUnitName(t.ServiceName) != nil:
		// Beyond the CRD's pattern: systemd's own grammar, and no
		// leading "-" (see api.ValidUnitName).
		return errorAt(fld+".serviceName", "%v", api.ValidUnitName(t.ServiceName))
	}
	return nil
}
