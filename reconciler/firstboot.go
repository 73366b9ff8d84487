package reconciler

import (
	"context"
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/reconciler/configserver"
)

// Snapshot is stoker/status as this hub last wrote or read it, for the
// config server (/config/<pool>); nil before the first reconcile.
func (h *Hub) Snapshot() *configserver.Snapshot { return h.snap.Load() }

// publishSnapshot records the status tree at head for the config server,
// with each pool's node labels from the render; it reads the tree again
// only when head moved. A failure keeps the last snapshot.
func (h *Hub) publishSnapshot(ctx context.Context, head string, rs *renderState) {
	prev := h.snap.Load()
	labels := poolLabels(rs)
	if prev != nil && prev.Commit == head && maps.EqualFunc(prev.Labels, labels, maps.Equal) {
		return
	}
	st, err := h.readStatus(ctx, head)
	if err != nil {
		h.cfg.Log.WithError(err).Warn("config server: keeping the last stoker/status snapshot")
		return
	}
	h.snap.Store(&configserver.Snapshot{Commit: head, Pools: st.pools, Rendered: st.rendered, Labels: labels})
}

// poolLabels are, per pool, labels its nodeSelector selects: matchLabels,
// an In expression's first value, an Exists expression's empty value.
func poolLabels(rs *renderState) map[string]map[string]string {
	out := map[string]map[string]string{}
	if rs == nil {
		return out
	}
	for _, p := range rs.pools {
		sel := p.Object.Spec.NodeSelector
		if sel == nil {
			continue
		}
		l := map[string]string{}
		maps.Copy(l, sel.MatchLabels)
		for _, e := range sel.MatchExpressions {
			switch {
			case e.Operator == metav1.LabelSelectorOpIn && len(e.Values) > 0:
				l[e.Key] = e.Values[0]
			case e.Operator == metav1.LabelSelectorOpExists:
				l[e.Key] = ""
			}
		}
		out[p.Object.Name] = l
	}
	return out
}
