package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/fleetview"
)

func (h *Hub) readReports(ctx context.Context, rf refs) (map[string]*api.Report, error) {
	out := map[string]*api.Report{}
	for node, commit := range rf.reports {
		if !h.verifyReport(ctx, node, commit) {
			continue
		}
		if r, ok := h.reportCache[commit]; ok {
			out[node] = r
			continue
		}
		tree, err := h.cfg.Reports.Tree(ctx, commit)
		if err != nil {
			return nil, fmt.Errorf("read report of %s: %w", node, err)
		}
		data, err := fs.ReadFile(tree, api.ReportFile)
		if err != nil {
			h.cfg.Log.WithFields(logrus.Fields{"node": node, "commit": fleetview.Short(commit)}).WithError(err).Warn("report branch has no readable report.yaml; ignoring it")
			continue
		}
		var r api.Report
		if err := yaml.UnmarshalStrict(data, &r); err != nil {
			h.cfg.Log.WithFields(logrus.Fields{"node": node, "commit": fleetview.Short(commit)}).WithError(err).Warn("report.yaml does not parse; ignoring it")
			continue
		}
		if r.Node == "" {
			r.Node = node
		}
		out[node] = &r
		h.reportCache[commit] = &r
	}
	return out, nil
}

// statusTree is what stoker/status holds now.
type statusTree struct {
	pools    map[string]api.PoolTarget
	nodes    map[string]api.NodeTarget
	rendered map[string][]byte // by rendered name
	// layout is api.LayoutFile's bytes, nil on a branch written before
	// the marker existed.
	layout []byte
	// superseded: the branch head is not the hub's (signing.go); the
	// next commit restores this tree over it even if nothing changed.
	superseded bool
}

func (h *Hub) readStatus(ctx context.Context, commit string) (*statusTree, error) {
	st := &statusTree{pools: map[string]api.PoolTarget{}, nodes: map[string]api.NodeTarget{}, rendered: map[string][]byte{}}
	if commit == "" {
		return st, nil
	}
	tree, err := h.cfg.Status.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	if st.layout, err = api.ReadLayoutFile(tree, api.StatusBranch); err != nil {
		return nil, err
	}
	if _, err := api.CheckLayout(api.StatusBranch, st.layout); err != nil {
		return nil, err
	}
	if err := api.ReadYAMLDir(tree, "pools", func(name string, data []byte) error {
		var p api.PoolTarget
		if err := yaml.Unmarshal(data, &p); err != nil {
			return err
		}
		st.pools[name] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	if err := api.ReadYAMLDir(tree, "nodes", func(name string, data []byte) error {
		var n api.NodeTarget
		if err := yaml.Unmarshal(data, &n); err != nil {
			return err
		}
		st.nodes[name] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	entries, err := fs.ReadDir(tree, "rendered")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s rendered/: %w", api.StatusBranch, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := fs.ReadFile(tree, path.Join("rendered", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s rendered/%s: %w", api.StatusBranch, e.Name(), err)
		}
		st.rendered[name] = data
	}
	return st, nil
}

// fleetTree is what stoker/fleet holds now (for first-seen times and ages).
type fleetTree struct {
	pools      map[string]api.PoolFleet
	nodes      map[string]nodeFleetFile
	superseded bool // see statusTree
}

// nodeFleetFile is nodes/<node>.yaml on stoker/fleet; FirstSeen orders
// rollouts oldest first when no Kubernetes creationTimestamp exists.
type nodeFleetFile struct {
	api.NodeFleet `json:",inline"`
	FirstSeen     time.Time `json:"firstSeen"`
}

func (h *Hub) readFleet(ctx context.Context, commit string) (*fleetTree, error) {
	ft := &fleetTree{pools: map[string]api.PoolFleet{}, nodes: map[string]nodeFleetFile{}}
	if commit == "" {
		return ft, nil
	}
	tree, err := h.cfg.Status.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	if _, err := api.ReadLayout(tree, api.FleetBranch); err != nil {
		return nil, err
	}
	if ft.pools, ft.nodes, err = fleetview.ReadTree[nodeFleetFile](tree); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	return ft, nil
}
