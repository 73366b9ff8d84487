package api

import (
	"reflect"
	"strings"
	"sync"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/coreos/ignition/v2/config/validate"
	"github.com/coreos/vcontext/path"
	"github.com/coreos/vcontext/report"
	vvalidate "github.com/coreos/vcontext/validate"
)

// ValidateIgnitionConfig returns what Ignition's
// validate.ValidateWithContext(cfg, nil) returns, at a fraction of the
// cost. That function walks cfg twice with vcontext's walk: once with
// vcontext's DefaultValidator (every value's Validate method), once with
// Ignition's ValidateDups (duplicate keys in every struct's lists). Here
// one walk, in the same order over the same values with the same context
// paths, runs both of those validators, Ignition's and vcontext's own code,
// at each value, keeping their reports apart and concatenating them as
// ValidateWithContext does. What the walk saves is only what gives nothing:
// the struct fields of each type are listed once (vcontext lists them at
// every value), DefaultValidator runs only on values whose type has a
// Validate method, ValidateDups only on structs that have a list of two
// entries or more.
// TestValidateIgnitionConfigMatchesIgnition holds the report to
// ValidateWithContext's, entry by entry.
func ValidateIgnitionConfig(cfg ign3types.Config) report.Report {
	var w ignWalk
	// Walked through a pointer, every value is addressable: Validate is
	// called on its address (the same value-receiver method, without
	// boxing a copy of the value). The path has room for the deepest
	// field, so appending to it never allocates; reports copy the paths
	// they keep, as vcontext's walk relies on too.
	w.value(path.ContextPath{Tag: "json", Path: make([]any, 0, 16)}, reflect.ValueOf(&cfg).Elem())
	w.own.Merge(w.dups)
	return w.own
}

type ignWalk struct {
	own, dups report.Report
}

// value mirrors vcontext's validate.validate.
func (w *ignWalk) value(c path.ContextPath, v reflect.Value) {
	if !v.IsValid() {
		return
	}
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = reflect.ValueOf(v.Interface())
	}
	info := typeInfoOf(v.Type())
	if info.validates && !quiet(v) {
		if v.CanAddr() {
			w.own.Merge(v.Addr().Interface().(validator).Validate(c))
		} else {
			w.own.Merge(vvalidate.DefaultValidator(v, c))
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		if info.dups && (info.dynamic || hasLongList(v, info)) {
			w.dups.Merge(validate.ValidateDups(v, c))
		}
		if info.dynamic {
			for _, f := range vvalidate.GetFields(v) {
				w.value(c.Append(vvalidate.FieldName(f, c.Tag)), f.Value)
			}
			return
		}
		for _, f := range info.fields {
			w.value(c.Append(f.name), v.FieldByIndex(f.index))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			w.value(c.Append(i), v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			w.value(c, v.Elem())
		}
	}
}

var systemdType = reflect.TypeOf(ign3types.Systemd{})

// quiet reports whether v's Validate is sure to report nothing, so it need
// not run: Ignition's Systemd.Validate compiles a regular expression on
// every call and reports only on a unit whose name matches
// `^(.+?)@(.+?)\.service$`, so with no "@" in any unit name it is silent.
func quiet(v reflect.Value) bool {
	if v.Type() != systemdType {
		return false
	}
	var units []ign3types.Unit
	if v.CanAddr() {
		units = v.Addr().Interface().(*ign3types.Systemd).Units
	} else {
		units = v.Interface().(ign3types.Systemd).Units
	}
	for _, u := range units {
		if strings.Contains(u.Name, "@") {
			return false
		}
	}
	return true
}

// hasLongList reports whether a struct has a list of two entries or more
// among its fields: in shorter lists ValidateDups finds no duplicate.
func hasLongList(v reflect.Value, info *typeInfo) bool {
	for _, i := range info.lists {
		if v.FieldByIndex(info.fields[i].index).Len() > 1 {
			return true
		}
	}
	return false
}

// validator is vcontext's (unexported) interface DefaultValidator looks for.
type validator interface {
	Validate(path.ContextPath) report.Report
}

var validatorType = reflect.TypeOf((*validator)(nil)).Elem()

type walkField struct {
	// name is the field's JSON name, boxed once for the context path.
	name  any
	index []int
}

type typeInfo struct {
	// validates: DefaultValidator can return something (a value receiver
	// Validate method on a type that is no pointer).
	validates bool
	// dups: a struct with a list among its fields (as vcontext's
	// GetFields lists them), where ValidateDups can find something.
	dups bool
	// dynamic: a struct embedding an interface, whose fields are only
	// known value by value; fields is unused then.
	dynamic bool
	fields  []walkField
	// lists are the indexes in fields of the lists.
	lists []int
}

var typeInfos sync.Map // reflect.Type → *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{validates: t.Kind() != reflect.Pointer && t.Implements(validatorType)}
	if t.Kind() == reflect.Struct {
		ti.fields, ti.dynamic = structFields(t, nil)
		ti.dups = ti.dynamic
		for i, f := range ti.fields {
			if t.FieldByIndex(f.index).Type.Kind() == reflect.Slice {
				ti.dups = true
				ti.lists = append(ti.lists, i)
			}
		}
	}
	typeInfos.Store(t, ti)
	return ti
}

// structFields lists t's fields as vcontext's GetFields does: embedded
// structs flattened, an embedded pointer contributing nothing (GetFields
// of a pointer is empty), an embedded interface making the list dynamic.
func structFields(t reflect.Type, prefix []int) (fields []walkField, dynamic bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		if !f.Anonymous {
			fields = append(fields, walkField{name: vvalidate.FieldName(vvalidate.StructField{StructField: f}, "json"), index: index})
			continue
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			sub, dyn := structFields(f.Type, index)
			if dyn {
				return nil, true
			}
			fields = append(fields, sub...)
		case reflect.Interface:
			return nil, true
		}
	}
	return fields, false
}
