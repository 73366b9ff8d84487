package render

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSharedMeta: MachineConfigs with equal label (or annotation) sets
// hold one map; sets that differ in any key or value, or that a plain
// concatenation of keys and values would confuse, do not.
func TestSharedMeta(t *testing.T) {
	var s sharedMeta
	ptr := func(m map[string]string) uintptr { return reflect.ValueOf(m).Pointer() }
	held := func(labels, annotations map[string]string) metav1.ObjectMeta {
		meta := metav1.ObjectMeta{Labels: labels, Annotations: annotations}
		var tm metav1.TypeMeta
		s.share(&tm, &meta)
		return meta
	}
	a := held(map[string]string{"role": "worker", "x": "1"}, map[string]string{"role": "worker", "x": "1"})
	b := held(map[string]string{"x": "1", "role": "worker"}, nil)
	if ptr(a.Labels) != ptr(b.Labels) {
		t.Error("equal label sets: two maps, want one")
	}
	if ptr(a.Annotations) == ptr(a.Labels) {
		t.Error("annotations share the labels' map")
	}
	for name, m := range map[string]map[string]string{
		"other value":         {"role": "worker", "x": "2"},
		"fewer keys":          {"role": "worker"},
		"key and value moved": {"rolew": "orker", "x": "1"},
		"separator in value":  {"role": "worker1:x", "": ""},
	} {
		if got := held(m, nil); ptr(got.Labels) == ptr(a.Labels) || !reflect.DeepEqual(got.Labels, m) {
			t.Errorf("%s: shares the map of %v, or changed: %v", name, a.Labels, got.Labels)
		}
	}
	if got := held(nil, map[string]string{}); got.Labels != nil || got.Annotations == nil || len(got.Annotations) != 0 {
		t.Errorf("nil labels and empty annotations: got %#v, %#v", got.Labels, got.Annotations)
	}
}
