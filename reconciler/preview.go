package reconciler

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/render"
)

// previewState remembers, per previewed branch, the source commit whose
// preview is already pushed, so an idle hub renders nothing.
type previewState struct {
	done map[string]string // branch -> config commit
}

// previewStep publishes previews of the config-repo branches matching
// HubConfig.Previews. A preview is for people only (no agent reads one),
// so its failure is logged and retried at the next reconcile, never a
// failed reconcile.
func (h *Hub) previewStep(ctx context.Context) {
	if len(h.cfg.Previews) == 0 {
		return
	}
	if err := h.publishPreviews(ctx); err != nil {
		h.cfg.Log.WithError(err).Warn("publish previews failed; retrying at the next reconcile")
	}
}

// publishPreviews renders every matching branch whose head moved since its
// last preview and pushes stoker/preview/<branch> in the stoker/status
// layout (pools/ and rendered/, plus errors.yaml when the branch does not
// validate), compare-and-swap, committing only when the tree changes.
func (h *Hub) publishPreviews(ctx context.Context) error {
	heads, err := h.cfg.Config.Refs(ctx, "")
	if err != nil {
		return fmt.Errorf("list config branches: %w", err)
	}
	var todo []string
	for b, c := range heads {
		if strings.HasPrefix(b, "stoker/") || c == "" {
			continue
		}
		ok, err := matchAny(h.cfg.Previews, b)
		if err != nil {
			return err
		}
		if ok && h.previews.done[b] != c {
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	sort.Strings(todo)
	if _, err := h.cfg.Config.Fetch(ctx, todo...); err != nil {
		return fmt.Errorf("fetch %s: %w", strings.Join(todo, ", "), err)
	}
	current, err := h.cfg.Status.Refs(ctx, api.PreviewBranchPrefix)
	if err != nil {
		return fmt.Errorf("check preview branches: %w", err)
	}
	var errs []error
	for _, b := range todo {
		if err := h.publishPreview(ctx, b, heads[b], current[api.PreviewBranchPrefix+b]); err != nil {
			errs = append(errs, err)
			continue
		}
		if h.previews.done == nil {
			h.previews.done = map[string]string{}
		}
		h.previews.done[b] = heads[b]
	}
	return errors.Join(errs...)
}

func matchAny(globs []string, branch string) (bool, error) {
	for _, g := range globs {
		ok, err := path.Match(g, branch)
		if err != nil {
			return false, fmt.Errorf("preview branch glob %q: %w", g, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// publishPreview renders branch at commit and pushes its preview on top of
// parent (the preview branch's current head, "" if none).
func (h *Hub) publishPreview(ctx context.Context, branch, commit, parent string) error {
	files, summary, err := h.previewFiles(ctx, branch, commit)
	if err != nil {
		return err
	}
	target := api.PreviewBranchPrefix + branch
	msg := fmt.Sprintf("preview %s@%s: %s\n", branch, fleetview.Short(commit), summary)
	pushed, err := h.cfg.Status.Commit(ctx, gitsource.CommitRequest{
		Branch: target, Parent: parent, Changes: files, Replace: true,
		Message: msg, Author: h.cfg.Author, When: h.cfg.Now(),
	})
	if errors.Is(err, gitsource.ErrNothingToCommit) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", target, err)
	}
	h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(pushed)}).Info(strings.TrimSpace(msg))
	return nil
}

// previewFiles returns the preview tree of branch at commit. The source
// commit is left out of pools/<pool>.yaml (the commit message names it),
// so a commit that renders the same leaves the preview as it is.
func (h *Hub) previewFiles(ctx context.Context, branch, commit string) (map[string][]byte, string, error) {
	l, err := h.loadCommit(ctx, commit)
	if err != nil {
		return nil, "", err
	}
	files := map[string][]byte{}
	var problems api.Problems
	var parts []string
	if errs := l.problems.Errors(); len(errs) > 0 {
		problems = errs
	} else {
		policy := l.repo.DisruptionPolicy()
		for _, pool := range l.repo.Pools {
			pr, ps := render.RenderPool(pool, l.repo.MachineConfigs, l.repo.RenderOptions(render.RenderOptions{Validation: h.cfg.Load.Validation}))
			if errs := ps.Errors(); len(errs) > 0 || pr == nil {
				problems = append(problems, errs...)
				continue
			}
			pf, err := render.PoolFiles(pr.Target(policy, branch, ""), pr.Rendered)
			if err != nil {
				return nil, "", err
			}
			for k, v := range pf {
				files[k] = v
			}
			parts = append(parts, pool.Object.Name+" → "+pr.Rendered.Name)
		}
	}
	if len(problems) > 0 {
		clean := make(api.Problems, len(problems))
		for i, p := range problems {
			p.Commit = ""
			clean[i] = p
		}
		data, err := yaml.Marshal(clean)
		if err != nil {
			return nil, "", fmt.Errorf("encode preview errors of %s: %w", branch, err)
		}
		files["errors.yaml"] = data
		parts = append(parts, plural(len(problems), "error", "errors"))
	}
	files["README.md"] = []byte(fmt.Sprintf("# Preview of `%s`\n\n"+
		"What the hub would write to `%s` if `%s` were the source branch: compare\n"+
		"this branch with `%s` to see the rendered diff. No agent reads it.\n",
		branch, api.StatusBranch, branch, api.StatusBranch))
	if sig := h.previewSignature(ctx, commit); sig != "" {
		files["README.md"] = append(files["README.md"], []byte("\nSignature of the previewed head: "+sig+".\n")...)
		if !strings.HasPrefix(sig, "verified") {
			parts = append(parts, "unverified")
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no pools")
	}
	return files, strings.Join(parts, "; "), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
