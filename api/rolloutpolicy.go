package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// RolloutPolicyFile is the config repo's file of holds and rollout order
// (a Stoker extension), read from the default branch at the repo's root.
const RolloutPolicyFile = ".stoker/rollout.yaml"

// RolloutPolicy is .stoker/rollout.yaml: nodes held back from every update,
// and an order that comes before zone-then-age.
type RolloutPolicy struct {
	Holds []Hold        `json:"holds,omitempty"`
	Order *RolloutOrder `json:"order,omitempty"`
}

// Hold keeps one node at the config it runs: the hub gives it no new
// desiredConfig while the hold is listed.
type Hold struct {
	Node   string `json:"node"`
	Reason string `json:"reason,omitempty"`
}

// RolloutOrder orders each pool's rollout: either an explicit list of nodes
// (listed nodes first, in list order) or a label (nodes by the label's
// value: in the order of Values when given, else ascending, numbers
// numerically; nodes without a listed value last). Zone, then age, then
// name order the nodes it does not separate.
type RolloutOrder struct {
	Nodes  []string `json:"nodes,omitempty"`
	Label  string   `json:"label,omitempty"`
	Values []string `json:"values,omitempty"`
}

// ParseRolloutPolicy reads .stoker/rollout.yaml strictly: unknown keys are
// errors (a misspelt "hold:" must not let a hold lapse). Problems name the
// file and field; nil policy and no problems for an empty file.
func ParseRolloutPolicy(data []byte) (*RolloutPolicy, Problems) {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{File: RolloutPolicyFile, Field: field, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
	}
	if len(data) > MaxYAMLBytes {
		add("", "file is %d bytes, over the limit of %d", len(data), MaxYAMLBytes)
		return nil, ps
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		add("", "not YAML: %v", err)
		return nil, ps
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	var p RolloutPolicy
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		add("", "%s", strings.TrimPrefix(err.Error(), "json: "))
		return nil, ps
	}
	held := map[string]bool{}
	for i, h := range p.Holds {
		f := "holds[" + strconv.Itoa(i) + "].node"
		if err := ValidateNodeName(h.Node); err != nil {
			add(f, "%v", err)
		} else if held[h.Node] {
			add(f, "node %s is held twice", h.Node)
		}
		held[h.Node] = true
	}
	if o := p.Order; o != nil {
		switch {
		case len(o.Nodes) > 0 && o.Label != "":
			add("order", "set nodes or label, not both")
		case len(o.Nodes) == 0 && o.Label == "":
			add("order", "set nodes (an explicit list) or label (order by its value)")
		case len(o.Values) > 0 && o.Label == "":
			add("order.values", "needs order.label")
		}
		seen := map[string]bool{}
		for i, n := range o.Nodes {
			f := "order.nodes[" + strconv.Itoa(i) + "]"
			if err := ValidateNodeName(n); err != nil {
				add(f, "%v", err)
			} else if seen[n] {
				add(f, "node %s is listed twice", n)
			}
			seen[n] = true
		}
		if o.Label != "" {
			for _, msg := range validation.IsQualifiedName(o.Label) {
				add("order.label", "%q: %s", o.Label, msg)
			}
		}
		vals := map[string]bool{}
		for i, v := range o.Values {
			f := "order.values[" + strconv.Itoa(i) + "]"
			for _, msg := range validation.IsValidLabelValue(v) {
				add(f, "%q: %s", v, msg)
			}
			if vals[v] {
				add(f, "value %q is listed twice", v)
			}
			vals[v] = true
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &p, nil
}

// ReadRolloutPolicy reads .stoker/rollout.yaml (holds and order) from the
// root of a config tree (the hub's commit, a diff's side, a checkout): nil and no problems when the file is absent. Its
// size is checked before it is read.
func ReadRolloutPolicy(tree fs.FS) (*RolloutPolicy, Problems) {
	bad := func(format string, args ...any) Problems {
		return Problems{{File: RolloutPolicyFile, Message: fmt.Sprintf(format, args...), Severity: SeverityError}}
	}
	st, err := fs.Stat(tree, RolloutPolicyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, bad("read: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	if st.Size() > MaxYAMLBytes {
		return nil, bad("file is %d bytes, over the limit of %d", st.Size(), MaxYAMLBytes)
	}
	data, err := fs.ReadFile(tree, RolloutPolicyFile)
	if err != nil {
		return nil, bad("read: %v", err)
	}
	return ParseRolloutPolicy(data)
}

// Held returns the hold for node, if any.
func (p *RolloutPolicy) Held(node string) (Hold, bool) {
	if p == nil {
		return Hold{}, false
	}
	for _, h := range p.Holds {
		if h.Node == node {
			return h, true
		}
	}
	return Hold{}, false
}

// UnknownNodes are warnings for held or ordered node names the fleet does
// not know (a typo, or a node not yet joined).
func (p *RolloutPolicy) UnknownNodes(known func(string) bool) Problems {
	if p == nil {
		return nil
	}
	var ps Problems
	warn := func(field, node string) {
		if !known(node) {
			ps = append(ps, Problem{File: RolloutPolicyFile, Field: field, Message: fmt.Sprintf("no node named %s in the fleet", node), Severity: SeverityWarning})
		}
	}
	for i, h := range p.Holds {
		warn("holds["+strconv.Itoa(i)+"].node", h.Node)
	}
	if p.Order != nil {
		for i, n := range p.Order.Nodes {
			warn("order.nodes["+strconv.Itoa(i)+"]", n)
		}
	}
	return ps
}

// String is the order as `stoker diff` shows it.
func (o *RolloutOrder) String() string {
	if o == nil {
		return "zone, then oldest first"
	}
	if len(o.Nodes) > 0 {
		return "nodes " + strings.Join(o.Nodes, ", ") + " first, then zone, then oldest first"
	}
	if len(o.Values) > 0 {
		return fmt.Sprintf("label %s: %s, then the rest; zone, then oldest first within each", o.Label, strings.Join(o.Values, ", "))
	}
	return fmt.Sprintf("label %s ascending (unlabelled last); zone, then oldest first within each", o.Label)
}

// SortedHolds returns the held node names sorted.
func (p *RolloutPolicy) SortedHolds() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.Holds))
	for _, h := range p.Holds {
		out = append(out, h.Node)
	}
	sort.Strings(out)
	return out
}
