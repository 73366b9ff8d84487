package render

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/go-semver/semver"
	v24tov31 "github.com/coreos/ign-converter/translate/v24tov31"
	ign2_2 "github.com/coreos/ignition/config/v2_2"
	ign2_2types "github.com/coreos/ignition/config/v2_2/types"
	ign2_3 "github.com/coreos/ignition/config/v2_3"
	ign2_4 "github.com/coreos/ignition/config/v2_4"
	translate3_2 "github.com/coreos/ignition/v2/config/v3_2/translate"
	translate3_3 "github.com/coreos/ignition/v2/config/v3_3/translate"
	translate3_4 "github.com/coreos/ignition/v2/config/v3_4/translate"
	translate3_5 "github.com/coreos/ignition/v2/config/v3_5/translate"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// configField is the field path of a MachineConfig's Ignition config.
const configField = "spec.config"

// ParseIgnition parses a MachineConfig's spec.config (JSON) of spec 2.2 or
// 3.0–3.5 and returns it normalised to 3.5, with Ignition's own validation
// applied. Unknown keys are warnings with their field path under
// spec.config, as MCO logs them; everything else Ignition refuses is an
// error.
func ParseIgnition(raw []byte) (ign3types.Config, api.Problems) {
	// Most configs are spec 3: decoded straight into the 3.5 types, their
	// version is read from there, without a first pass for the version
	// alone. Anything else (spec 2, a missing or bad version, a config
	// the 3.5 types cannot hold, any unknown, duplicate or wrongly cased
	// key, which the case-blind probe below might read differently) takes
	// the path below, which gives the same result for spec 3 configs.
	if cfg, strictErrs, err := decodeIgnition3(raw); err == nil && len(strictErrs) == 0 {
		if isSpec3(cfg.Ignition.Version) {
			return validateIgnition3(cfg, strictErrs)
		}
	}
	var probe struct {
		Ignition struct {
			Version *string `json:"version"`
		} `json:"ignition"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ign3types.Config{}, errorAt(configField, "not an Ignition config: %v", err)
	}
	if probe.Ignition.Version == nil || *probe.Ignition.Version == "" {
		return ign3types.Config{}, errorAt(configField+".ignition.version", "missing: every Ignition config must say its spec version (2.2.0 or 3.0.0–3.5.0)")
	}
	v, err := semver.NewVersion(*probe.Ignition.Version)
	if err != nil {
		return ign3types.Config{}, errorAt(configField+".ignition.version", "invalid version %q: %v", *probe.Ignition.Version, err)
	}
	switch v.Major {
	case 2:
		if v.Minor != 2 {
			return ign3types.Config{}, errorAt(configField+".ignition.version", "spec %s is not supported: of spec 2 only 2.2.0 is (as in MCO)", v)
		}
		return parseIgnition22(raw)
	case 3:
		if v.Minor > 5 || v.PreRelease != "" || v.Metadata != "" {
			return ign3types.Config{}, errorAt(configField+".ignition.version", "spec %s is not supported (2.2.0 and 3.0.0–3.5.0 are)", v)
		}
		return parseIgnition3(raw)
	}
	return ign3types.Config{}, errorAt(configField+".ignition.version", "spec %s is not supported (2.2.0 and 3.0.0–3.5.0 are)", v)
}

// isSpec3 reports whether version is one ParseIgnition reads as spec
// 3.0–3.5.
func isSpec3(version string) bool {
	v, err := semver.NewVersion(version)
	return err == nil && v.Major == 3 && v.Minor <= 5 && v.PreRelease == "" && v.Metadata == ""
}

// parseIgnition22 converts spec 2.2 the way MCO does: 2.2 → 2.3 → 2.4 with
// Ignition v0's translators, 2.4 → 3.1 with ign-converter (only the root
// filesystem may be used), then up to 3.5 with Ignition v2's translators.
func parseIgnition22(raw []byte) (ign3types.Config, api.Problems) {
	ps := unknownKeys(raw, reflect.TypeOf(ign2_2types.Config{}), configField)
	cfg22, rpt, err := ign2_2.Parse(raw)
	if err != nil {
		msg := err.Error()
		if s := strings.TrimSpace(rpt.String()); s != "" {
			msg += ": " + strings.ReplaceAll(s, "\n", "; ")
		}
		return ign3types.Config{}, append(ps, errorAt(configField, "parse Ignition 2.2 config: %s", msg)...)
	}
	cfg22 = dedupeIgnition22(cfg22, api.DefaultCoreUser)
	cfg24 := ign2_4.Translate(ign2_3.Translate(cfg22))
	cfg31, err := v24tov31.Translate(cfg24, map[string]string{"root": "/"})
	if err != nil {
		return ign3types.Config{}, append(ps, errorAt(configField, "convert Ignition 2.2 to 3.1: %v", err)...)
	}
	cfg := translate3_5.Translate(translate3_4.Translate(translate3_3.Translate(translate3_2.Translate(cfg31))))
	cfg.Ignition.Version = api.IgnitionVersion
	ps = append(ps, api.IgnitionProblems(cfg, nil, configField).Errors()...)
	return cfg, ps
}

// unknownKeys walks raw JSON alongside the Go type t and warns about every
// key t has no field for (Ignition v0 reports them without a field path).
func unknownKeys(raw []byte, t reflect.Type, field string) api.Problems {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	var ps api.Problems
	walkUnknown(v, t, field, &ps)
	return ps
}

func walkUnknown(v any, t reflect.Type, field string, ps *api.Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch val := v.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		keys := make([]string, 0, len(val))
		for k := range val {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				*ps = append(*ps, api.Problem{Field: field + "." + k, Message: "unused key, ignored (as MCO ignores it)", Severity: api.SeverityWarning})
				continue
			}
			walkUnknown(val[k], ft, field+"."+k, ps)
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, item := range val {
			walkUnknown(item, t.Elem(), field+"["+strconv.Itoa(i)+"]", ps)
		}
	}
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
				continue
			}
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

func errorAt(field, format string, args ...any) api.Problems {
	return api.Problems{{Field: field, Message: fmt.Sprintf(format, args...), Severity: api.SeverityError}}
}

func warningAt(field, format string, args ...any) api.Problems {
	return api.Problems{{Field: field, Message: fmt.Sprintf(format, args...), Severity: api.SeverityWarning}}
}

// parseIgnition3 reads a spec 3.0–3.5 config straight into the 3.5 types
// and validates it once there. Every 3.x spec is a JSON subset of 3.5 and
// Ignition's 3.x translators only copy fields up, so this gives what
// ParseCompatibleVersion's chain of parses, validations and translations
// gives (TestParseIgnition3MatchesIgnition holds it to that on every
// corpus and conformance config) at the cost of one decode and one
// validation. Unknown keys are warnings (as Ignition and MCO report them),
// checked against 3.5, so a newer key in an older config is used rather
// than ignored.
func parseIgnition3(raw []byte) (ign3types.Config, api.Problems) {
	cfg, strictErrs, err := decodeIgnition3(raw)
	if err != nil {
		return ign3types.Config{}, errorAt(configField, "parse Ignition config: %s", typeError(err))
	}
	return validateIgnition3(cfg, strictErrs)
}

// decodeIgnition3 decodes raw into the 3.5 types, strictly: strictErrs are
// the unknown and duplicate keys.
func decodeIgnition3(raw []byte) (cfg ign3types.Config, strictErrs []error, err error) {
	strictErrs, err = strictUnmarshal(raw, &cfg)
	return cfg, strictErrs, err
}

// validateIgnition3 reports a decoded spec 3 config's unknown keys and
// runs Ignition's validation on it once, at spec 3.5.
func validateIgnition3(cfg ign3types.Config, strictErrs []error) (ign3types.Config, api.Problems) {
	var ps api.Problems
	for _, se := range strictErrs {
		if fe, ok := se.(interface{ FieldPath() string }); ok && fe.FieldPath() != "" {
			msg := "unused key, ignored (as MCO ignores it)"
			if strings.Contains(se.Error(), "duplicate field") {
				msg = "duplicate key; the last value wins"
			}
			ps = append(ps, api.Problem{Field: configField + "." + fe.FieldPath(), Message: msg, Severity: api.SeverityWarning})
		}
	}
	cfg.Ignition.Version = api.IgnitionVersion
	ps = append(ps, api.IgnitionProblems(cfg, nil, configField)...)
	return cfg, ps
}
