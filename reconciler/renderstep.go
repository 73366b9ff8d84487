package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/render"
)

// renderState is the outcome of the render step.
type renderState struct {
	mainCommit string
	// pools from the default branch; nil when it failed to load.
	pools []render.Source[api.MachineConfigPool]
	// targets holds a fresh render per pool that rendered cleanly.
	targets map[string]*renderedPool
	// errors per pool (errors only; warnings are logged).
	errors map[string]api.Problems
	// mainErrors are the default branch's own errors (no pool renders).
	mainErrors api.Problems
	// policy is the default branch's .stoker/rollout.yaml (nil: none).
	policy *api.RolloutPolicy
}

type renderedPool struct {
	target   api.PoolTarget
	rendered *api.Rendered
	encoded  []byte
	policy   *api.NodeDisruptionPolicy
}

func (h *Hub) loadCommit(ctx context.Context, commit string) (loaded, error) {
	if l, ok := h.treeCache[commit]; ok {
		return l, nil
	}
	tree, err := h.cfg.Config.Tree(ctx, commit)
	if err != nil {
		return loaded{}, fmt.Errorf("read tree %s: %w", fleetview.Short(commit), err)
	}
	repo, ps := render.Load(tree, h.cfg.Path, h.cfg.Load)
	for i := range ps {
		ps[i].Commit = commit
	}
	l := loaded{repo: repo, problems: ps}
	l.policy, l.policyProblems = api.ReadRolloutPolicy(tree)
	for i := range l.policyProblems {
		l.policyProblems[i].Commit = commit
	}
	if len(h.treeCache) > 64 {
		h.treeCache = map[string]loaded{}
	}
	h.treeCache[commit] = l
	return l, nil
}

func (h *Hub) render(ctx context.Context, rf refs) (*renderState, error) {
	rs := &renderState{mainCommit: rf.config[h.cfg.Branch], targets: map[string]*renderedPool{}, errors: map[string]api.Problems{}}
	if ps, err := h.verifySource(ctx, h.cfg.Branch, rs.mainCommit); err != nil || ps != nil {
		rs.mainErrors = ps
		return rs, err
	}
	main, err := h.loadCommit(ctx, rs.mainCommit)
	if err != nil {
		return nil, err
	}
	h.logWarnings(main.problems, h.cfg.Branch)
	if errs := main.problems.Errors(); len(errs) > 0 {
		rs.mainErrors = errs
		h.logErrors(errs, "", h.cfg.Branch, rs.mainCommit, "every pool keeps its last good render and no node moves")
		return rs, nil
	}
	if errs := main.policyProblems.Errors(); len(errs) > 0 {
		// A broken holds file must not let a hold lapse: nothing moves.
		rs.mainErrors = errs
		h.logErrors(errs, "", h.cfg.Branch, rs.mainCommit, "every pool keeps its last good render and no node moves")
		return rs, nil
	}
	rs.policy = main.policy
	rs.pools = main.repo.Pools
	var sources []string
	for _, p := range rs.pools {
		name := p.Object.Name
		branch := p.Object.Annotations[api.SourceBranchAnnotation]
		src := main
		commit := rs.mainCommit
		if branch == "" {
			branch = h.cfg.Branch
		} else if branch != h.cfg.Branch {
			sources = append(sources, branch)
			commit = rf.config[branch]
			if commit == "" {
				if _, checked := rf.config[branch]; !checked {
					// A newly annotated pool: its branch was not checked
					// yet. Look now so the first render needs no second pass.
					c, err := h.cfg.Config.Head(ctx, branch)
					if err != nil && !errors.Is(err, gitsource.ErrRefNotFound) {
						return nil, fmt.Errorf("check branch %s: %w", branch, err)
					}
					if c != "" {
						if _, err := h.cfg.Config.Fetch(ctx, branch); err != nil {
							return nil, fmt.Errorf("fetch %s: %w", branch, err)
						}
					}
					commit = c
					rf.config[branch] = c
				}
			}
			if commit == "" {
				rs.errors[name] = api.Problems{{File: p.File, Field: "metadata.annotations." + api.SourceBranchAnnotation,
					Message: fmt.Sprintf("source branch %q does not exist", branch), Severity: api.SeverityError, Commit: rs.mainCommit}}
				h.cfg.Log.WithFields(logrus.Fields{"pool": name, "commit": fleetview.Short(rs.mainCommit), "path": p.File}).
					Warnf("pool %s renders from branch %s, which does not exist; the pool keeps its last good render", name, branch)
				continue
			}
			if ps, err := h.verifySource(ctx, branch, commit); err != nil {
				return nil, err
			} else if ps != nil {
				rs.errors[name] = ps
				continue
			}
			src, err = h.loadCommit(ctx, commit)
			if err != nil {
				return nil, err
			}
			h.logWarnings(src.problems, branch)
			if errs := src.problems.Errors(); len(errs) > 0 {
				rs.errors[name] = errs
				h.logErrors(errs, name, branch, commit, "the pool keeps its last good render")
				continue
			}
		}
		pr, ps := h.renderPool(p, src.repo, branch, commit)
		for i := range ps {
			ps[i].Commit = commit
		}
		if errs := ps.Errors(); len(errs) > 0 {
			rs.errors[name] = errs
			h.logErrors(errs, name, branch, commit, "the pool keeps its last good render")
			continue
		}
		rs.targets[name] = pr
	}
	sort.Strings(sources)
	h.sourceBranches = sources
	h.watched.set(sources)
	return rs, nil
}

// maxLoggedErrors bounds the validation errors logged per source; the
// rest are counted (all of them are on stoker/fleet).
const maxLoggedErrors = 20

// logErrors logs a source's validation errors, each with its file and
// field, once per render of that commit (an unchanged commit is not
// rendered again), then one line saying what the hub does about it.
func (h *Hub) logErrors(errs api.Problems, pool, branch, commit, consequence string) {
	fields := logrus.Fields{"commit": fleetview.Short(commit)}
	if pool != "" {
		fields["pool"] = pool
	}
	for i, e := range errs {
		if i == maxLoggedErrors {
			h.cfg.Log.WithFields(fields).Warnf("%s: %d more validation error(s) on stoker/fleet", branch, len(errs)-i)
			break
		}
		f := logrus.Fields{"path": e.File}
		for k, v := range fields {
			f[k] = v
		}
		h.cfg.Log.WithFields(f).Warnf("%s fails validation: %s", branch, e.String())
	}
	h.cfg.Log.WithFields(fields).Warnf("%s fails validation (%d error(s)); %s", branch, len(errs), consequence)
}

func (h *Hub) logWarnings(ps api.Problems, branch string) {
	for _, w := range ps.Warnings() {
		h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(w.Commit), "path": w.File}).Debugf("%s: %s", branch, w.String())
	}
}

// renderPool renders one pool from the MachineConfigs of src (the pool's
// source branch) and builds its status-branch target.
func (h *Hub) renderPool(pool render.Source[api.MachineConfigPool], src *render.Repo, branch, commit string) (*renderedPool, api.Problems) {
	pr, ps := render.RenderPool(pool, src.MachineConfigs, src.RenderOptions(render.RenderOptions{Validation: h.cfg.Load.Validation}))
	if len(ps.Errors()) > 0 || pr == nil {
		return nil, ps
	}
	enc, err := pr.Rendered.Encode()
	if err != nil {
		return nil, append(ps, api.Problem{File: pool.File, Message: err.Error(), Severity: api.SeverityError})
	}
	policy := src.DisruptionPolicy()
	return &renderedPool{
		rendered: pr.Rendered,
		encoded:  enc,
		policy:   policy,
		target:   pr.Target(policy, branch, commit),
	}, ps
}

// refreshTarget keeps a pool's last good render but takes pause,
// maxUnavailable and drift policy from the pool's current definition, so a
// pool whose source branch is broken can still be paused.
func refreshTarget(pool api.MachineConfigPool, t api.PoolTarget) api.PoolTarget {
	t.Name = pool.Name
	t.Paused = pool.Spec.Paused
	t.MaxUnavailable, _ = render.ParseMaxUnavailable(pool.Spec.MaxUnavailable)
	t.Drift = api.DriftReport
	if d := pool.Annotations[api.DriftAnnotation]; d != "" {
		t.Drift = api.DriftPolicy(d)
	}
	return t
}
