package kubedrain

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Annotator mirrors the agent's state onto its Node (keys such as
// api.NodeStateAnnotation), so `kubectl get nodes` and `kubectl describe
// node` show it.
type Annotator struct {
	Client kubernetes.Interface
	// CallTimeout bounds the patch; default DefaultCallTimeout.
	CallTimeout time.Duration
}

// Annotate sets annotations on node with one merge patch; an empty value
// removes that annotation (e.g. the reason once a node is Done).
func (a *Annotator) Annotate(ctx context.Context, node string, annotations map[string]string) error {
	if len(annotations) == 0 {
		return nil
	}
	set := make(map[string]any, len(annotations))
	for k, v := range annotations {
		if v == "" {
			set[k] = nil
		} else {
			set[k] = v
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": set}})
	if err != nil {
		return fmt.Errorf("annotate node %s: encode patch: %w", node, err)
	}
	timeout := a.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := a.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotate node %s: %w", node, err)
	}
	return nil
}
