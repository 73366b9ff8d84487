package kubeinventory

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"stoker.dev/stoker/reconciler"
)

// DefaultCallTimeout bounds one list of the nodes.
const DefaultCallTimeout = 30 * time.Second

// Inventory lists nodes from the Kubernetes API.
type Inventory struct {
	Client kubernetes.Interface
	// LabelSelector narrows the nodes listed; empty lists all.
	LabelSelector string
	// CallTimeout bounds each list call; default DefaultCallTimeout.
	CallTimeout time.Duration
}

var _ reconciler.Inventory = (*Inventory)(nil)

// Nodes lists every node, sorted by name, in pages of 500.
func (inv *Inventory) Nodes(ctx context.Context) ([]reconciler.InventoryNode, error) {
	timeout := inv.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	var out []reconciler.InventoryNode
	opts := metav1.ListOptions{LabelSelector: inv.LabelSelector, Limit: 500}
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		list, err := inv.Client.CoreV1().Nodes().List(cctx, opts)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list kubernetes nodes: %w", err)
		}
		for i := range list.Items {
			out = append(out, fromNode(&list.Items[i]))
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func fromNode(n *corev1.Node) reconciler.InventoryNode {
	return reconciler.InventoryNode{
		Name:    n.Name,
		Labels:  maps.Clone(n.Labels),
		Created: n.CreationTimestamp.Time,
		Ready:   ready(n),
	}
}

// ready is true only when the node reports Ready=True; a node without the
// condition (never heard from) is not ready.
func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
