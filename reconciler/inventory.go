package reconciler

import (
	"context"
	"time"
)

// InventoryNode is what the hub knows of a node apart from its report.
type InventoryNode struct {
	Name    string
	Labels  map[string]string
	Created time.Time
	// Ready is false when the node is NotReady; such a node counts as
	// unavailable in rollout planning.
	Ready bool
}

// Inventory lists nodes from an authority other than agent reports (the
// Kubernetes API). Without one, the hub works from reports alone.
type Inventory interface {
	Nodes(ctx context.Context) ([]InventoryNode, error)
}
