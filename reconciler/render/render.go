package render

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/ignition/v2/config/merge"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
)

// RenderOptions tune rendering.
type RenderOptions struct {
	// Validation is what a node accepts; nil means
	// api.DefaultValidationOptions().
	Validation *api.ValidationOptions
}

func (o RenderOptions) validation() api.ValidationOptions {
	if o.Validation != nil {
		return *o.Validation
	}
	return api.DefaultValidationOptions()
}

// PoolRender is one pool's rendered config and the MachineConfigs it was
// merged from, in merge order.
type PoolRender struct {
	Pool           Source[api.MachineConfigPool]
	Rendered       *api.Rendered
	MachineConfigs []string
}

// RenderResult is every pool of a repo, rendered, sorted by pool name.
type RenderResult struct {
	Pools      []PoolRender
	Disruption *api.NodeDisruptionPolicy
}

// hashLen is how many hex digits of the sha256 the rendered name keeps.
const hashLen = 32

// SelectMachineConfigs returns the MachineConfigs pool takes, in MCO's
// merge order: those of role worker sorted by name first, then the rest
// sorted by name, so a custom pool's own MCs override worker MCs whatever
// their names. A pool without a machineConfigSelector takes none.
func SelectMachineConfigs(pool api.MachineConfigPool, mcs []Source[MachineConfig]) ([]Source[MachineConfig], error) {
	sel, err := selectMachineConfigs(pool, mcs)
	if err != nil || len(sel) == 0 {
		return nil, err
	}
	out := make([]Source[MachineConfig], len(sel))
	for i, mc := range sel {
		out[i] = *mc
	}
	return out, nil
}

// selectMachineConfigs is SelectMachineConfigs pointing into mcs, so a
// pool's render copies none of the (large) MachineConfigs.
func selectMachineConfigs(pool api.MachineConfigPool, mcs []Source[MachineConfig]) ([]*Source[MachineConfig], error) {
	sel := labels.Nothing()
	if pool.Spec.MachineConfigSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
		if err != nil {
			return nil, fmt.Errorf("pool %s: machineConfigSelector: %w", pool.Name, err)
		}
		sel = s
	}
	var worker, own []*Source[MachineConfig]
	for i := range mcs {
		mc := &mcs[i]
		if !sel.Matches(labels.Set(mc.Object.Labels)) {
			continue
		}
		if mc.Object.Labels[api.RoleLabel] == api.PoolWorker {
			worker = append(worker, mc)
		} else {
			own = append(own, mc)
		}
	}
	byName := func(s []*Source[MachineConfig]) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Object.Name < s[j].Object.Name })
	}
	byName(worker)
	byName(own)
	if len(worker)+len(own) == 0 {
		return nil, nil
	}
	return append(worker, own...), nil
}

// Merge merges MachineConfigs in the given order with MCO's semantics:
// Ignition configs with Ignition's merge (files, directories and links by
// path, field by field; units and dropins by name; users by name; ssh keys
// unioned), overwrite defaulting to true on files; fips if any; kernelType
// the last non-default (else "default"); kernelArguments (entries as
// written; nodes split them as MCO's daemon does, api.SplitKernelArguments)
// and extensions concatenated, kernel-devel refused with a non-default
// kernel; osImageURL the last non-empty. The result has no name; see Name.
func Merge(mcs []MachineConfig) (*api.Rendered, error) {
	ptrs := make([]*MachineConfig, len(mcs))
	for i := range mcs {
		ptrs[i] = &mcs[i]
	}
	return mergeMachineConfigs(ptrs)
}

// mergeMachineConfigs is Merge of MachineConfigs held elsewhere.
func mergeMachineConfigs(mcs []*MachineConfig) (*api.Rendered, error) {
	cfgs := make([]*Ignition, 0, len(mcs))
	for _, mc := range mcs {
		if mc.Ignition.Version() != "" {
			cfgs = append(cfgs, &mc.Ignition)
		}
	}
	out := foldIgnition(cfgs)
	r := &api.Rendered{KernelType: api.KernelTypeDefault}
	for _, mc := range mcs {
		s := mc.Spec
		r.FIPS = r.FIPS || s.FIPS
		if s.KernelType != "" && s.KernelType != api.KernelTypeDefault {
			r.KernelType = s.KernelType
		}
		r.KernelArguments = append(r.KernelArguments, s.KernelArguments...)
		r.Extensions = append(r.Extensions, s.Extensions...)
		if s.OSImageURL != "" {
			r.OSImageURL = s.OSImageURL
		}
	}
	if err := api.ValidateMergedKernel(r.KernelType, r.Extensions); err != nil {
		return nil, err
	}
	out.Ignition.Version = api.IgnitionVersion
	// The fold's lists are its own: overwrite is defaulted in place.
	setOverwriteDefault(out.Storage.Files)
	r.Config = out
	return r, nil
}

func ignMerge(parent, child ign3types.Config) ign3types.Config {
	merged, _ := merge.MergeStructTranscribe(parent, child)
	return merged.(ign3types.Config)
}

// RenderPool renders one pool from mcs, which may come from a different
// branch's Repo than the pool (a pool annotated stoker.dev/source-branch).
// It returns nothing when the rendered config fails validation; the
// problems name the MachineConfig file that brought the offending entry
// where it can be told, else the pool's file.
func RenderPool(pool Source[api.MachineConfigPool], mcs []Source[MachineConfig], opts RenderOptions) (*PoolRender, api.Problems) {
	poolFile := pool.File
	if poolFile == "" {
		poolFile = "(built-in pool " + pool.Object.Name + ")"
	}
	selected, err := selectMachineConfigs(pool.Object, mcs)
	if err != nil {
		return nil, api.Problems{{File: poolFile, Field: "spec.machineConfigSelector", Message: err.Error(), Severity: api.SeverityError}}
	}
	objs := make([]*MachineConfig, len(selected))
	names := make([]string, len(selected))
	for i, s := range selected {
		objs[i] = &s.Object
		names[i] = s.Object.Name
	}
	r, err := mergeMachineConfigs(objs)
	if err != nil {
		return nil, api.Problems{{File: poolFile, Message: fmt.Sprintf("render pool %s: %v", pool.Object.Name, err), Severity: api.SeverityError}}
	}
	name, cfgLen, err := streamName(pool.Object.Name, r)
	if err != nil {
		return nil, api.Problems{{File: poolFile, Message: err.Error(), Severity: api.SeverityError}}
	}
	r.Name = name
	ps, size := api.ValidateMergedEncoded(r, cfgLen, opts.validation())
	oversize := -1
	if vo := opts.validation(); vo.MaxRenderedBytes > 0 && size > vo.MaxRenderedBytes {
		for i := range ps {
			if ps[i].Field == "" && strings.HasPrefix(ps[i].Message, "rendered config is ") {
				oversize = i
			}
		}
	}
	if len(ps) > 0 {
		for i := range ps {
			ps[i].File = poolFile
			if f := attribute(r.Config, ps[i].Field, selected); f != "" {
				ps[i].File = f
			}
			if i == oversize && len(selected) > 0 {
				// Blame what made it big, not the pool.
				top, desc := largestContributors(selected, 3)
				ps[i].File = top
				ps[i].Message += "; the largest MachineConfigs in it: " + desc
			}
			ps[i].Message = fmt.Sprintf("in the rendered config of pool %s: %s", pool.Object.Name, ps[i].Message)
		}
		if len(ps.Errors()) > 0 {
			return nil, ps
		}
	}
	return &PoolRender{Pool: pool, Rendered: r, MachineConfigs: names}, ps
}

var entryField = regexp.MustCompile(`^spec\.config\.(storage\.files|storage\.directories|storage\.links|systemd\.units)\[(\d+)\]`)

// attribute finds the file of the last MachineConfig that defines the
// merged entry a rendered-config problem is about.
func attribute(cfg ign3types.Config, fld string, mcs []*Source[MachineConfig]) string {
	m := entryField.FindStringSubmatch(fld)
	if m == nil {
		return ""
	}
	i, _ := strconv.Atoi(m[2])
	key := ""
	var has func(c *Ignition) bool
	switch m[1] {
	case "storage.files":
		if i < len(cfg.Storage.Files) {
			key = cfg.Storage.Files[i].Path
		}
		has = func(c *Ignition) bool {
			for _, f := range c.Storage.Files {
				if f.Path == key {
					return true
				}
			}
			return false
		}
	case "storage.directories":
		if i < len(cfg.Storage.Directories) {
			key = cfg.Storage.Directories[i].Path
		}
		has = func(c *Ignition) bool {
			for _, f := range c.Storage.Directories {
				if f.Path == key {
					return true
				}
			}
			return false
		}
	case "storage.links":
		if i < len(cfg.Storage.Links) {
			key = cfg.Storage.Links[i].Path
		}
		has = func(c *Ignition) bool {
			for _, f := range c.Storage.Links {
				if f.Path == key {
					return true
				}
			}
			return false
		}
	case "systemd.units":
		if i < len(cfg.Systemd.Units) {
			key = cfg.Systemd.Units[i].Name
		}
		has = func(c *Ignition) bool {
			for _, u := range c.Systemd.Units {
				if u.Name == key {
					return true
				}
			}
			return false
		}
	}
	if key == "" {
		return ""
	}
	for j := len(mcs) - 1; j >= 0; j-- {
		if has(&mcs[j].Object.Ignition) {
			return mcs[j].File
		}
	}
	return ""
}

// RenderOptions returns opts with the repo's decoded-size cache (unless
// opts already carries one), for rendering the repo's own MachineConfigs
// with RenderPool: their data URLs were decoded once by Load, and the
// render's size check reads their sizes from the cache instead of
// decoding (and gunzipping) every file of every pool again.
func (r *Repo) RenderOptions(opts RenderOptions) RenderOptions {
	if opts.Validation == nil || opts.Validation.Sizes == nil {
		v := opts.validation()
		v.Sizes = r.sizes
		opts.Validation = &v
	}
	return opts
}

// RenderAll renders every pool of repo from the repo's own MachineConfigs.
// A repo with errors renders nothing: there is no half-good render. The
// problems returned include warnings of pools that rendered.
func RenderAll(repo *Repo, opts RenderOptions) (*RenderResult, api.Problems) {
	var ps api.Problems
	res := &RenderResult{Disruption: repo.DisruptionPolicy()}
	opts = repo.RenderOptions(opts)
	for _, pool := range repo.Pools {
		pr, pps := RenderPool(pool, repo.MachineConfigs, opts)
		ps = append(ps, pps...)
		if pr != nil {
			res.Pools = append(res.Pools, *pr)
		}
	}
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	return res, ps
}

// Target returns pools/<pool>.yaml's content for this render. sourceBranch
// and sourceCommit say where the MachineConfigs came from; the CLI leaves
// them empty.
func (pr *PoolRender) Target(disruption *api.NodeDisruptionPolicy, sourceBranch, sourceCommit string) api.PoolTarget {
	p := pr.Pool.Object
	mu, _ := ParseMaxUnavailable(p.Spec.MaxUnavailable)
	drift := api.DriftReport
	if d := p.Annotations[api.DriftAnnotation]; d != "" {
		drift = api.DriftPolicy(d)
	}
	return api.PoolTarget{
		Name:           p.Name,
		Rendered:       pr.Rendered.Name,
		SourceBranch:   sourceBranch,
		SourceCommit:   sourceCommit,
		MachineConfigs: append([]string(nil), pr.MachineConfigs...),
		Paused:         p.Spec.Paused,
		MaxUnavailable: mu,
		Drift:          drift,
		Disruption:     disruption,
	}
}

// PoolFiles returns the two files the hub writes to stoker/status for one
// pool, keyed by their path there: pools/<pool>.yaml (target, as YAML) and
// rendered/<name>.json (api.Rendered.Encode).
func PoolFiles(target api.PoolTarget, r *api.Rendered) (map[string][]byte, error) {
	if target.Rendered != r.Name {
		return nil, fmt.Errorf("pool files for %s: target names %s but the rendered config is %s", target.Name, target.Rendered, r.Name)
	}
	y, err := yaml.Marshal(target)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", api.PoolFile(target.Name), err)
	}
	j, err := r.Encode()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{api.PoolFile(target.Name): y, api.RenderedFile(r.Name): j}, nil
}

// StatusFiles returns every pool's files (see PoolFiles) for a result
// rendered from one branch.
func (res *RenderResult) StatusFiles(sourceBranch, sourceCommit string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for i := range res.Pools {
		pr := &res.Pools[i]
		fs, err := PoolFiles(pr.Target(res.Disruption, sourceBranch, sourceCommit), pr.Rendered)
		if err != nil {
			return nil, err
		}
		for k, v := range fs {
			files[k] = v
		}
	}
	return files, nil
}

// largestContributors names the n MachineConfigs of a pool that bring the
// most bytes (their encoded Ignition config and kernel arguments), with
// their files and sizes, largest first, and returns the largest one's file:
// where to cut when a rendered config is over the limit.
func largestContributors(mcs []*Source[MachineConfig], n int) (file, desc string) {
	type contrib struct {
		name, file string
		size       int
	}
	var cs []contrib
	for _, mc := range mcs {
		b, _ := json.Marshal(mc.Object.Ignition.Config())
		size := len(b)
		for _, k := range mc.Object.Spec.KernelArguments {
			size += len(k) + 3
		}
		cs = append(cs, contrib{mc.Object.Name, mc.File, size})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].size > cs[j].size })
	if len(cs) > n {
		cs = cs[:n]
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s (%s) %d bytes", c.name, c.file, c.size)
	}
	return cs[0].file, strings.Join(parts, ", ")
}
