package reconciler

import (
	"context"
	"fmt"
	"io"
	"io/fs"
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
		h.agentCache[commit] = readAgentInfo(tree)
	}
	return out, nil
}

// readAgentInfo reads agent.yaml from a report tree; nil when it is
// absent or unreadable (the agent is then taken to read layout 1 only).
func readAgentInfo(tree fs.FS) *api.AgentInfo {
	f, err := tree.Open(api.AgentFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAgentInfoBytes+1))
	if err != nil || len(data) > maxAgentInfoBytes {
		return nil
	}
	var info api.AgentInfo
	if yaml.Unmarshal(data, &info) != nil {
		return nil
	}
	return &info
}

// maxAgentInfoBytes bounds what is read of agent.yaml.
const maxAgentInfoBytes = 4 << 10

// statusTree is what stoker/status holds now.
type statusTree struct {
	pools    map[string]api.PoolTarget
	nodes    map[string]api.NodeTarget
	rendered map[string][]byte // by rendered name
	// rollouts are layout 2's orders and cursors (rollouts.go), also
	// present beside nodes/ while the hub writes both layouts; nil when
	// absent or unreadable on a layout 1 branch.
	rollouts map[string]*api.PoolRollout
	// layout is api.LayoutFile's bytes, nil on a branch written before
	// the marker existed.
	layout []byte
	// files is every file of the tree, so the hub can tell whether what
	// it would write is what is there.
	files map[string][]byte
	// superseded: the branch head is not the hub's (signing.go); the
	// next commit restores this tree over it even if nothing changed.
	superseded bool
}

func (h *Hub) readStatus(ctx context.Context, commit string) (*statusTree, error) {
	st := &statusTree{pools: map[string]api.PoolTarget{}, nodes: map[string]api.NodeTarget{}, rendered: map[string][]byte{}, files: map[string][]byte{}}
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
	version, err := api.CheckLayout(api.StatusBranch, st.layout)
	if err != nil {
		return nil, err
	}
	if err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		st.files[p] = data
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
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
	if st.nodes, err = api.StatusNodeTargets(tree, version); err != nil {
		return nil, err
	}
	if st.rollouts, err = api.ReadRollouts(tree); err != nil {
		if version >= api.StatusLayoutV2 {
			return nil, err
		}
		// Beside nodes/ (both layouts) they are only a starting point
		// for the next order: start afresh.
		h.cfg.Log.WithError(err).Warn("ignoring unreadable layout 2 files on a layout 1 stoker/status")
		st.rollouts = nil
	}
	for p, data := range st.files {
		if name, ok := strings.CutPrefix(p, "rendered/"); ok {
			if name, ok := strings.CutSuffix(name, ".json"); ok && !strings.Contains(name, "/") {
				st.rendered[name] = data
			}
		}
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
