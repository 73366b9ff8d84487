package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	ignerrors "github.com/coreos/ignition/v2/config/shared/errors"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"stoker.dev/stoker/api"
)

// objCtx carries where an object came from while it is checked.
type objCtx struct {
	l          *loader
	file       string
	doc, item  int
	prefix     string
	hadErrors  bool
	objectName string
}

func (c *objCtx) field(f string) string {
	switch {
	case c.prefix == "":
		return f
	case f == "":
		return c.prefix
	}
	return c.prefix + "." + f
}

func (c *objCtx) errorf(f, format string, args ...any) {
	c.hadErrors = true
	c.l.add(api.Problem{File: c.file, Field: c.field(f), Message: fmt.Sprintf(format, args...), Severity: api.SeverityError})
}

func (c *objCtx) warnf(f, format string, args ...any) {
	c.l.add(api.Problem{File: c.file, Field: c.field(f), Message: fmt.Sprintf(format, args...), Severity: api.SeverityWarning})
}

func (c *objCtx) addAll(prefix string, ps api.Problems) {
	for _, p := range ps {
		if p.Severity != api.SeverityWarning {
			c.hadErrors = true
		}
		f := p.Field
		if prefix != "" {
			if f == "" {
				f = prefix
			} else {
				f = prefix + "." + f
			}
		}
		p.Field = c.field(f)
		p.File = c.file
		c.l.add(p)
	}
}

// decode decodes js into v: type errors are errors, unknown fields
// warnings. The keys in drop (top-level, or "spec.x") are removed first:
// status and fields Stoker knows and deliberately ignores.
func (c *objCtx) decode(js []byte, v any, drop ...string) bool {
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		c.errorf("", "decode: %v", err)
		return false
	}
	delete(m, "status")
	for _, d := range drop {
		if parent, key, ok := strings.Cut(d, "."); ok {
			if sub, ok := m[parent].(map[string]any); ok {
				delete(sub, key)
			}
			continue
		}
		delete(m, d)
	}
	clean, _ := json.Marshal(m)
	return c.decodeStrict(clean, v)
}

// decodeStrict decodes js into v: type errors are errors, unknown and
// duplicate fields warnings.
func (c *objCtx) decodeStrict(js []byte, v any) bool {
	strictErrs, err := strictUnmarshal(js, v)
	if err != nil {
		c.errorf("", "%s", typeError(err))
		return false
	}
	for _, se := range strictErrs {
		if fe, ok := se.(interface{ FieldPath() string }); ok && fe.FieldPath() != "" {
			msg := "unknown field, ignored"
			if strings.Contains(se.Error(), "duplicate field") {
				msg = "duplicate field; the last value wins"
			}
			c.warnf(fe.FieldPath(), "%s", msg)
			continue
		}
		c.warnf("", "%s; ignored", strings.TrimPrefix(se.Error(), "json: "))
	}
	return true
}

func (c *objCtx) checkMeta(meta metav1.ObjectMeta) {
	if meta.Name == "" {
		c.errorf(metadataNameField, "missing")
	} else if errs := validation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
		c.errorf(metadataNameField, "invalid name %q: %s", meta.Name, strings.Join(errs, "; "))
	}
	c.objectName = meta.Name
	keys := make([]string, 0, len(meta.Labels))
	for k := range meta.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.errorf(metadataLabelsField, "invalid label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(meta.Labels[k]); len(errs) > 0 {
			c.errorf(metadataLabelsField, "invalid value %q of label %q: %s", meta.Labels[k], k, strings.Join(errs, "; "))
		}
	}
}

// mcDoc3 is mcDoc with its spec.config decoded into Ignition's 3.5 types
// (the Config field here hides MachineConfigSpec's raw one).
type mcDoc3 struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              mcSpec3         `json:"spec"`
	Status            json.RawMessage `json:"status,omitempty"`
}

type mcSpec3 struct {
	api.MachineConfigSpec
	Config *ign3types.Config `json:"config,omitempty"`
}

// mcDoc is a MachineConfig as written, status (which Stoker ignores)
// absorbed so it is no unknown field: one strict decode, no detour
// through a map.
type mcDoc struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              api.MachineConfigSpec `json:"spec"`
	Status            json.RawMessage       `json:"status,omitempty"`
}

// decodeMachineConfig3 decodes js as a MachineConfig with a spec 3
// config, in one pass, config included. It says false unless that is what
// js is and nothing in it is unknown, duplicated or wrongly cased: then
// what it decoded is what decoding apiVersion and kind, the MachineConfig
// with spec.config raw, and the config with ParseIgnition gives (any other
// document takes that way).
func decodeMachineConfig3(js []byte) (*mcDoc3, bool) {
	var doc3 mcDoc3
	strictErrs, err := strictUnmarshal(js, &doc3)
	if err != nil || len(strictErrs) != 0 || doc3.APIVersion != api.MachineConfigGroupVersion || doc3.Kind != api.KindMachineConfig ||
		doc3.Spec.Config == nil || !isSpec3(doc3.Spec.Config.Ignition.Version) {
		return nil, false
	}
	return &doc3, true
}

// loadMachineConfig loads the MachineConfig js; doc3, when not nil, is js
// already decoded by decodeMachineConfig3 (which loadObject tries first).
func (l *loader) loadMachineConfig(c objCtx, js []byte, doc3 *mcDoc3) {
	var mc api.MachineConfig
	var cfg ign3types.Config
	var ps api.Problems
	hasConfig := true
	if doc3 != nil {
		mc = api.MachineConfig{TypeMeta: doc3.TypeMeta, ObjectMeta: doc3.ObjectMeta, Spec: doc3.Spec.MachineConfigSpec}
		c.checkMeta(mc.ObjectMeta)
		cfg, ps = validateIgnition3(*doc3.Spec.Config, nil)
	} else {
		var doc mcDoc
		if !c.decodeStrict(js, &doc) {
			return
		}
		mc = api.MachineConfig{TypeMeta: doc.TypeMeta, ObjectMeta: doc.ObjectMeta, Spec: doc.Spec}
		c.checkMeta(mc.ObjectMeta)
		raw := bytes.TrimSpace(mc.Spec.Config)
		if hasConfig = len(raw) > 0 && !bytes.Equal(raw, []byte("null")); hasConfig {
			cfg, ps = ParseIgnition(raw)
		}
	}
	out := MachineConfig{MachineConfig: mc}
	// The parsed config is what renders; the raw bytes are not kept (a
	// repo's worth of them is as large as the repo).
	out.Spec.Config = nil
	if hasConfig {
		c.addAll("", ps)
		// Every problem in one pass: Stoker's own rules run on whatever
		// decoded, even when Ignition refused something, skipping fields
		// Ignition already flagged.
		if cfg.Ignition.Version != "" {
			out.Ignition = NewIgnition(clipLists(cfg))
			var flagged map[string]bool
			for _, p := range ps.Errors() {
				if flagged == nil {
					flagged = map[string]bool{}
				}
				flagged[p.Field] = true
			}
			var own api.Problems
			for _, p := range api.ValidateIgnition(cfg, configField, l.vopts) {
				if !flagged[p.Field] {
					own = append(own, p)
				}
			}
			c.addAll("", own)
			// MCO defaults overwrite to true on every file when it
			// merges; a file that is valid alone may fail then: one
			// with no source cannot be overwritten (Ignition's rule).
			for i, f := range cfg.Storage.Files {
				if f.Overwrite == nil && f.Contents.Source == nil {
					c.errorf(configField+".storage.files["+strconv.Itoa(i)+"].overwrite", "%v", ignerrors.ErrOverwriteAndNilSource)
				}
			}
		}
	} else {
		out.Ignition = NewIgnition(emptyIgnition())
	}
	if v, ok := mc.Annotations[api.GeneratedByControllerVersionAnnotation]; ok {
		msg := fmt.Sprintf("generated by MCO's controller (version %s), as `oc get mc -o yaml` exports it: Stoker renders it as a plain MachineConfig", v)
		if out.Spec.OSImageURL != "" {
			msg += " and ignores its osImageURL, as MCO does"
			out.Spec.OSImageURL = ""
		}
		c.warnf("metadata.annotations["+api.GeneratedByControllerVersionAnnotation+"]", "%s", msg)
	}
	c.addAll("", api.ValidateKernelType(mc.Spec.KernelType, "spec.kernelType"))
	c.addAll("", api.ValidateExtensions(mc.Spec.Extensions, "spec.extensions"))
	if c.hadErrors {
		return
	}
	l.shared.share(&out.TypeMeta, &out.ObjectMeta)
	l.repo.MachineConfigs = append(l.repo.MachineConfigs, Source[MachineConfig]{File: c.file, Doc: c.doc, Item: c.item, Object: out})
}

// clipLists gives cfg's entry lists no spare capacity: the JSON decoder
// grows them by doubling (a third of a three-file MachineConfig's list
// unused), and a loaded config is held as long as its Repo.
func clipLists(cfg ign3types.Config) ign3types.Config {
	cfg.Storage.Files = exactCap(cfg.Storage.Files)
	cfg.Storage.Directories = exactCap(cfg.Storage.Directories)
	cfg.Storage.Links = exactCap(cfg.Storage.Links)
	cfg.Systemd.Units = exactCap(cfg.Systemd.Units)
	return cfg
}

// exactCap is s, copied to a list of its own length when it has spare
// capacity (the entries, and the pointers in them, are shared).
func exactCap[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	return append(make([]T, 0, len(s)), s...)
}

func emptyIgnition() ign3types.Config {
	return ign3types.Config{Ignition: ign3types.Ignition{Version: api.IgnitionVersion}}
}

// setOverwriteDefault sets overwrite: true on every file that does not
// say, as MCO's MergeMachineConfigs sets it.
func setOverwriteDefault(files []ign3types.File) {
	n := 0
	for i := range files {
		if files[i].Overwrite == nil {
			n++
		}
	}
	trues := make([]bool, n)
	for i := range files {
		if files[i].Overwrite == nil {
			trues[0] = true
			files[i].Overwrite = &trues[0]
			trues = trues[1:]
		}
	}
}

func (l *loader) loadPool(c objCtx, js []byte) {
	var pool api.MachineConfigPool
	if !c.decode(js, &pool) {
		return
	}
	c.checkMeta(pool.ObjectMeta)
	if pool.Name != "" && len(validation.IsDNS1123Label(pool.Name)) > 0 {
		c.errorf(metadataNameField, "pool name %q must be a DNS-1123 label (it names files and rendered configs)", pool.Name)
	}
	c.addAll("", ValidatePool(pool))
	if c.hadErrors {
		return
	}
	l.repo.Pools = append(l.repo.Pools, Source[api.MachineConfigPool]{File: c.file, Doc: c.doc, Item: c.item, Object: pool})
}

// machineConfigurationIgnored are MachineConfiguration spec fields Stoker
// knows and does not use; they are not worth a warning.
var machineConfigurationIgnored = []string{"spec.logLevel", "spec.operatorLogLevel", "spec.managementState",

	"spec.managedBootImages", "spec.unsupportedConfigOverrides", "spec.observedConfig",
	"spec.bootImageSkewEnforcement", "spec.irreconcilableValidationOverrides"}

func (l *loader) loadMachineConfiguration(c objCtx, js []byte) {
	var mcfg api.MachineConfiguration
	if !c.decode(js, &mcfg, machineConfigurationIgnored...) {
		return
	}
	c.checkMeta(mcfg.ObjectMeta)
	if mcfg.Name != "" && mcfg.Name != disruptionConfigurationName {
		c.errorf(metadataNameField, "a MachineConfiguration must be named %q (MCO's machine-configuration-guards policy)", disruptionConfigurationName)
	}
	if mcfg.Spec.NodeDisruptionPolicy != nil {
		c.addAll(nodeDisruptionPolicyField, ValidateDisruptionPolicy(*mcfg.Spec.NodeDisruptionPolicy))
	}
	if c.hadErrors {
		return
	}
	if l.configurationFile != "" {
		c.errorf(metadataNameField, "duplicate MachineConfiguration %q (also in %s)", mcfg.Name, l.configurationFile)
		return
	}
	l.configurationFile = c.file
	if mcfg.Spec.NodeDisruptionPolicy != nil {
		l.repo.Disruption = &Source[api.NodeDisruptionPolicy]{File: c.file, Doc: c.doc, Item: c.item, Object: *mcfg.Spec.NodeDisruptionPolicy}
	}
}
