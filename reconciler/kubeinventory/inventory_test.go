package kubeinventory_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/kubeinventory"
	"stoker.dev/stoker/test/kubeapi"
)

var srv *kubeapi.Server

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m, &srv)) }

func TestInventoryNodes(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type node struct {
		name   string
		labels map[string]string
		ready  *corev1.ConditionStatus // nil: no Ready condition at all
	}
	status := func(s corev1.ConditionStatus) *corev1.ConditionStatus { return &s }
	nodes := []node{
		{name: "inv-b", labels: map[string]string{api.ZoneLabel: "zone-b", api.NodeRoleLabelPrefix + "worker": ""}, ready: status(corev1.ConditionTrue)},
		{name: "inv-a", labels: map[string]string{api.ZoneLabel: "zone-a", api.NodeRoleLabelPrefix + "infra": ""}, ready: status(corev1.ConditionFalse)},
		{name: "inv-c", labels: map[string]string{"kubernetes.io/hostname": "inv-c"}, ready: status(corev1.ConditionUnknown)},
		{name: "inv-d"},
	}
	created := map[string]time.Time{}
	for _, n := range nodes {
		obj, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: n.labels}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create node %s: %v", n.name, err)
		}
		if n.ready != nil {
			obj.Status.Conditions = []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: *n.ready},
			}
			if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("set node %s status: %v", n.name, err)
			}
		}
		created[n.name] = obj.CreationTimestamp.Time
	}

	inv := &kubeinventory.Inventory{Client: c}
	got, err := inv.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	want := map[string]struct {
		zone  string
		role  string
		ready bool
	}{
		"inv-a": {zone: "zone-a", role: "infra", ready: false},
		"inv-b": {zone: "zone-b", role: "worker", ready: true},
		"inv-c": {ready: false},
		"inv-d": {ready: false},
	}
	seen := 0
	for i, n := range got {
		if i > 0 && got[i-1].Name >= n.Name {
			t.Errorf("nodes not sorted by name: %s before %s", got[i-1].Name, n.Name)
		}
		w, ok := want[n.Name]
		if !ok {
			continue
		}
		seen++
		if n.Labels[api.ZoneLabel] != w.zone {
			t.Errorf("%s: zone = %q, want %q", n.Name, n.Labels[api.ZoneLabel], w.zone)
		}
		if w.role != "" {
			if _, ok := n.Labels[api.NodeRoleLabelPrefix+w.role]; !ok {
				t.Errorf("%s: role label %s missing: %v", n.Name, w.role, n.Labels)
			}
		}
		if n.Ready != w.ready {
			t.Errorf("%s: Ready = %v, want %v", n.Name, n.Ready, w.ready)
		}
		if !n.Created.Equal(created[n.Name]) || n.Created.IsZero() {
			t.Errorf("%s: Created = %v, want the creationTimestamp %v", n.Name, n.Created, created[n.Name])
		}
	}
	if seen != len(want) {
		t.Errorf("Nodes returned %d of the %d test nodes: %+v", seen, len(want), got)
	}

	sel := &kubeinventory.Inventory{Client: c, LabelSelector: api.ZoneLabel + "=zone-b"}
	only, err := sel.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes with a selector: %v", err)
	}
	if len(only) != 1 || only[0].Name != "inv-b" {
		t.Errorf("Nodes with selector %s = %+v, want only inv-b", sel.LabelSelector, only)
	}
}

// TestInventoryNeedsRBAC: the hub's identity without the nodes list grant
// gets an error, not an empty fleet.
func TestInventoryNeedsRBAC(t *testing.T) {
	kubeapi.Need(t, srv)
	c, err := kubernetes.NewForConfig(srv.ServiceAccountConfig("default", "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if nodes, err := (&kubeinventory.Inventory{Client: c}).Nodes(ctx); err == nil {
		t.Errorf("Nodes as an unprivileged ServiceAccount = %d nodes, want a forbidden error", len(nodes))
	}
}
