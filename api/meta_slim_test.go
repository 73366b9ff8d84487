//go:build !(agentonly && nokube)

package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestSlimMetaMatchesKubernetes pins the host agent build's stand-ins to
// apimachinery's types: every field has the same Go name, JSON name and
// kind, and a document written by one decodes into the other unchanged.
func TestSlimMetaMatchesKubernetes(t *testing.T) {
	for _, c := range []struct{ slim, kube any }{
		{slimTypeMeta{}, metav1.TypeMeta{}},
		{slimObjectMeta{}, metav1.ObjectMeta{}},
		{slimLabelSelector{}, metav1.LabelSelector{}},
		{slimLabelSelectorRequirement{}, metav1.LabelSelectorRequirement{}},
		{slimCondition{}, metav1.Condition{}},
	} {
		st, kt := reflect.TypeOf(c.slim), reflect.TypeOf(c.kube)
		for i := 0; i < st.NumField(); i++ {
			f := st.Field(i)
			k, ok := kt.FieldByName(f.Name)
			if !ok {
				t.Errorf("%s.%s: no such field in %s", st.Name(), f.Name, kt)
				continue
			}
			if f.Tag.Get("json") != k.Tag.Get("json") {
				t.Errorf("%s.%s: json tag %q, %s has %q", st.Name(), f.Name, f.Tag.Get("json"), kt, k.Tag.Get("json"))
			}
			if f.Type.Kind() != k.Type.Kind() {
				t.Errorf("%s.%s: kind %s, %s has %s", st.Name(), f.Name, f.Type.Kind(), kt, k.Type.Kind())
			}
		}
	}
	when := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct{ kube, slim any }{
		"meta": {&metav1.ObjectMeta{Name: "50-chrony", Namespace: "ns", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{"stoker.dev/x": "y"}}, &slimObjectMeta{}},
		"selector": {&metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn, Values: []string{"v"}}}},
			&slimLabelSelector{}},
		"condition": {&metav1.Condition{Type: PoolUpdated, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(when),
			Reason: ReasonAllNodesUpdated, Message: "m"}, &slimCondition{}},
		"intstr": {ptr(intstr.FromString("10%")), &json.RawMessage{}},
	} {
		want, err := json.Marshal(c.kube)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, c.slim); err != nil {
			t.Fatalf("%s: decode %s into %T: %v", name, want, c.slim, err)
		}
		got, err := json.Marshal(c.slim)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: %T wrote\n%s\n%T wrote\n%s", name, c.kube, want, c.slim, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }
