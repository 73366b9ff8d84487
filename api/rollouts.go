package api

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"sigs.k8s.io/yaml"
)

// Layout 2 of stoker/status keeps each node's desiredConfig out of a file
// of its own, so that a rollout step does not rewrite a tree that grows
// with the fleet (in layout 1 every agent fetched the rewritten nodes/
// tree, ~42 B a node, at every step). Per pool:
//
//   - rollouts/<pool>/order.yaml: the rollout's node order, as the planner
//     ranks the pool's nodes, with each node's config before the rollout;
//     written when the pool's target changes (or when the cursor below
//     can no longer describe the pool in a few exceptions).
//   - rollouts/<pool>/cursor.yaml: how many nodes of the order run the
//     target now, plus a bounded list of exceptions (nodes the planner
//     skipped — held, unavailable — or advanced out of order, or that
//     left the pool); rewritten at each step. Its size does not depend on
//     the fleet's.
//
// A node's desiredConfig is its exception when it has one, else the
// order's target when it is among the first Advanced nodes of the order,
// else its config before the rollout.
const RolloutsDir = "rollouts"

// RolloutOrderFile and RolloutCursorFile are a pool's files in layout 2.
func RolloutOrderFile(pool string) string  { return RolloutsDir + "/" + pool + "/order.yaml" }
func RolloutCursorFile(pool string) string { return RolloutsDir + "/" + pool + "/cursor.yaml" }

// Bounds on layout 2's files, checked before they are read. An order entry
// takes about 60 bytes: MaxOrderBytes holds a pool of over 250,000 nodes.
const (
	MaxOrderBytes  = 16 << 20
	MaxCursorBytes = 1 << 20
	// MaxRolloutExceptions is the most exceptions a cursor may hold; the
	// hub writes at most HubRolloutExceptions and rewrites the order when
	// a step would need more.
	MaxRolloutExceptions = 4096
	HubRolloutExceptions = 64
)

// PoolOrder is rollouts/<pool>/order.yaml.
type PoolOrder struct {
	Pool string `json:"pool"`
	// Target is the rendered config the rollout moves the pool to ("" for
	// a pool that has none: no node advances).
	Target string `json:"target,omitempty"`
	// From is the config of every entry that names none.
	From  string       `json:"from,omitempty"`
	Nodes []OrderEntry `json:"nodes"`
}

// OrderEntry is one node of a rollout order and its config before the
// rollout: From, or the order's From when "", or none when None (a node
// that had no config yet).
type OrderEntry struct {
	Name string `json:"name"`
	From string `json:"from,omitempty"`
	None bool   `json:"none,omitempty"`
}

// EntryFrom is the config of the order's entry i before the rollout (""
// for none).
func (o *PoolOrder) EntryFrom(i int) string {
	switch e := o.Nodes[i]; {
	case e.None:
		return ""
	case e.From != "":
		return e.From
	}
	return o.From
}

// PoolCursor is rollouts/<pool>/cursor.yaml.
type PoolCursor struct {
	Pool string `json:"pool"`
	// Target repeats the order's, so a cursor is never read against an
	// order it was not written for.
	Target string `json:"target,omitempty"`
	// Advanced is how many nodes, from the top of the order, run Target.
	Advanced int `json:"advanced"`
	// Except maps a node to its desiredConfig where the order and Advanced
	// do not give it; "" means the node has none in this pool.
	Except map[string]string `json:"except,omitempty"`
}

// PoolRollout is a pool's order and cursor.
type PoolRollout struct {
	Order  PoolOrder
	Cursor PoolCursor
}

// Desired returns node's desiredConfig in this pool ("" with ok false when
// it has none here).
func (r *PoolRollout) Desired(node string) (string, bool) {
	if d, ok := r.Cursor.Except[node]; ok {
		return d, d != ""
	}
	for i, e := range r.Order.Nodes {
		if e.Name == node {
			d := r.entryDesired(i)
			return d, d != ""
		}
	}
	return "", false
}

func (r *PoolRollout) entryDesired(i int) string {
	if i < r.Cursor.Advanced {
		return r.Order.Target
	}
	return r.Order.EntryFrom(i)
}

// Targets returns every node's target in this pool.
func (r *PoolRollout) Targets() map[string]NodeTarget {
	out := map[string]NodeTarget{}
	pool := r.Order.Pool
	for i, e := range r.Order.Nodes {
		if d := r.entryDesired(i); d != "" {
			out[e.Name] = NodeTarget{Name: e.Name, Pool: pool, DesiredConfig: d}
		}
	}
	for n, d := range r.Cursor.Except {
		if d == "" {
			delete(out, n)
		} else {
			out[n] = NodeTarget{Name: n, Pool: pool, DesiredConfig: d}
		}
	}
	return out
}

// ReadRollouts reads every pool's order and cursor from a layout 2 tree of
// stoker/status, checking sizes before reading and refusing, naming the
// file and field, what does not fit together.
func ReadRollouts(tree fs.FS) (map[string]*PoolRollout, error) {
	entries, err := fs.ReadDir(tree, RolloutsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*PoolRollout{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s/: %w", StatusBranch, RolloutsDir, err)
	}
	out := map[string]*PoolRollout{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, err := ReadPoolRollout(tree, e.Name())
		if err != nil {
			return nil, err
		}
		out[e.Name()] = r
	}
	return out, nil
}

// ReadPoolRollout reads and checks one pool's order and cursor.
func ReadPoolRollout(tree fs.FS, pool string) (*PoolRollout, error) {
	r := &PoolRollout{}
	of, cf := RolloutOrderFile(pool), RolloutCursorFile(pool)
	if err := readBounded(tree, of, MaxOrderBytes, &r.Order); err != nil {
		return nil, err
	}
	if err := readBounded(tree, cf, MaxCursorBytes, &r.Cursor); err != nil {
		return nil, err
	}
	switch {
	case r.Order.Pool != pool:
		return nil, fmt.Errorf("%s: pool: %q, want %q", of, r.Order.Pool, pool)
	case r.Cursor.Pool != pool:
		return nil, fmt.Errorf("%s: pool: %q, want %q", cf, r.Cursor.Pool, pool)
	case r.Cursor.Target != r.Order.Target:
		return nil, fmt.Errorf("%s: target: %q, but %s has %q", cf, r.Cursor.Target, of, r.Order.Target)
	case r.Cursor.Advanced < 0 || r.Cursor.Advanced > len(r.Order.Nodes):
		return nil, fmt.Errorf("%s: advanced: %d, want 0 to %d (the nodes in %s)", cf, r.Cursor.Advanced, len(r.Order.Nodes), of)
	case len(r.Cursor.Except) > MaxRolloutExceptions:
		return nil, fmt.Errorf("%s: except: %d entries, over the limit of %d", cf, len(r.Cursor.Except), MaxRolloutExceptions)
	}
	seen := make(map[string]bool, len(r.Order.Nodes))
	for i, e := range r.Order.Nodes {
		if err := ValidateNodeName(e.Name); err != nil {
			return nil, fmt.Errorf("%s: nodes[%d].name: %w", of, i, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%s: nodes[%d].name: %s is listed twice", of, i, e.Name)
		}
		seen[e.Name] = true
	}
	names := make([]string, 0, len(r.Cursor.Except))
	for n := range r.Cursor.Except {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ValidateNodeName(n); err != nil {
			return nil, fmt.Errorf("%s: except.%s: %w", cf, n, err)
		}
	}
	return r, nil
}

// readBounded strictly decodes the YAML file name of tree into v after
// checking its size against max.
func readBounded(tree fs.FS, name string, max int64, v any) error {
	f, err := tree.Open(name)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		return fmt.Errorf("%s is %d bytes, over the limit of %d; not read", name, fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("%s is over the limit of %d bytes; not read", name, max)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", name, err)
	}
	return nil
}

// StatusNodeTarget returns node's target from a stoker/status tree in
// layout version (1: nodes/<node>.yaml; 2: the rollouts); ok is false
// when the node has none. A node with a target in two pools is refused.
func StatusNodeTarget(tree fs.FS, version int, node string) (t NodeTarget, ok bool, err error) {
	if version < StatusLayoutV2 {
		data, err := fs.ReadFile(tree, NodeFile(node))
		if errors.Is(err, fs.ErrNotExist) {
			return t, false, nil
		}
		if err != nil {
			return t, false, fmt.Errorf("read %s: %w", NodeFile(node), err)
		}
		if err := yaml.Unmarshal(data, &t); err != nil {
			return t, false, fmt.Errorf("parse %s: %w", NodeFile(node), err)
		}
		return t, t.DesiredConfig != "", nil
	}
	rollouts, err := ReadRollouts(tree)
	if err != nil {
		return t, false, err
	}
	pools := make([]string, 0, len(rollouts))
	for p := range rollouts {
		pools = append(pools, p)
	}
	sort.Strings(pools)
	for _, p := range pools {
		d, has := rollouts[p].Desired(node)
		if !has {
			continue
		}
		if ok {
			return t, false, fmt.Errorf("%s and %s both give node %s a desiredConfig",
				path.Dir(RolloutCursorFile(t.Pool)), path.Dir(RolloutCursorFile(p)), node)
		}
		t, ok = NodeTarget{Name: node, Pool: p, DesiredConfig: d}, true
	}
	return t, ok, nil
}

// StatusNodeTargets returns every node's target from a stoker/status tree
// in layout version; nodes/ is read leniently as it always was.
func StatusNodeTargets(tree fs.FS, version int) (map[string]NodeTarget, error) {
	out := map[string]NodeTarget{}
	if version < StatusLayoutV2 {
		err := ReadYAMLDir(tree, "nodes", func(name string, data []byte) error {
			var n NodeTarget
			if err := yaml.Unmarshal(data, &n); err != nil {
				return err
			}
			out[name] = n
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", StatusBranch, err)
		}
		return out, nil
	}
	rollouts, err := ReadRollouts(tree)
	if err != nil {
		return nil, err
	}
	for p, r := range rollouts {
		for n, t := range r.Targets() {
			if o, dup := out[n]; dup {
				return nil, fmt.Errorf("%s and %s both give node %s a desiredConfig",
					path.Dir(RolloutCursorFile(o.Pool)), path.Dir(RolloutCursorFile(p)), n)
			}
			out[n] = t
		}
	}
	return out, nil
}
