package review

import (
	"context"
	"fmt"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/render"
)

// sideRenderer renders the pools of one side, each from the MachineConfigs
// of its source branch, as the hub does: pool definitions from the default
// branch, MachineConfigs from the pool's source branch; the side itself
// stands for branch.
type sideRenderer struct {
	side          diffSide
	repo          *render.Repo // nil: the side does not load
	branch        string
	defaultBranch string
	// pools is where the pool definitions come from: repo when branch is
	// the default branch, else the default branch's tree.
	pools *render.Repo
	trees map[string]*render.Repo // source branch -> loaded repo (nil: missing)
}

// loadPools sets s.pools. When the side stands for another branch than the
// default one, the pools are the default branch's; a checkout without it
// falls back to the side's own pools, with a note.
func (s *sideRenderer) loadPools(ctx context.Context) (string, api.Problems, error) {
	s.pools = s.repo
	if s.branch == s.defaultBranch || s.repo == nil {
		return "", nil, nil
	}
	r, problems, err := s.branchRepo(ctx, s.defaultBranch)
	if err != nil || len(problems) > 0 {
		return "", problems, err
	}
	if r == nil {
		return fmt.Sprintf("pools are defined on branch %s, which is not in the checkout; using the pools of %s", s.defaultBranch, s.branch), nil, nil
	}
	s.pools = r
	return "", nil, nil
}

// branchRepo loads another branch of the side's checkout once; nil when
// the side has no such branch.
func (s *sideRenderer) branchRepo(ctx context.Context, b string) (*render.Repo, api.Problems, error) {
	r, ok := s.trees[b]
	if ok {
		return r, nil, nil
	}
	tree, rev, found, err := s.side.branchTree(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	if found {
		var ps api.Problems
		r, ps = render.Load(tree, ".", render.LoadOptions{})
		if len(ps.Errors()) > 0 {
			return nil, prefixProblems(ps.Errors(), "source branch "+rev+": "), nil
		}
	}
	s.trees[b] = r
	return r, nil, nil
}

// render returns the pool's rendered config and the disruption policy of
// its source (nil when the side has no such pool or the pool is skipped,
// with a note saying why) or its errors.
func (s *sideRenderer) render(ctx context.Context, name string) (*api.Rendered, *api.NodeDisruptionPolicy, string, api.Problems, error) {
	if s.repo == nil || s.pools == nil {
		return nil, nil, "", nil, nil
	}
	pool := s.pools.Pool(name)
	if pool == nil {
		return nil, nil, "", nil, nil
	}
	src := s.repo
	b := pool.Object.Annotations[api.SourceBranchAnnotation]
	if b == "" {
		b = s.defaultBranch
	}
	if b != s.branch {
		r, problems, err := s.branchRepo(ctx, b)
		if err != nil || len(problems) > 0 {
			return nil, nil, "", problems, err
		}
		if r == nil {
			return nil, nil, fmt.Sprintf("pool %s renders from branch %s, which is not in the checkout (fetch it to include the pool)", name, b), nil, nil
		}
		src = r
	}
	pr, ps := render.RenderPool(*pool, src.MachineConfigs, src.RenderOptions(render.RenderOptions{}))
	if errs := ps.Errors(); len(errs) > 0 || pr == nil {
		return nil, nil, "", errs, nil
	}
	return pr.Rendered, src.DisruptionPolicy(), "", nil, nil
}

func prefixProblems(ps api.Problems, prefix string) api.Problems {
	out := make(api.Problems, len(ps))
	for i, p := range ps {
		p.Message = prefix + p.Message
		out[i] = p
	}
	return out
}
