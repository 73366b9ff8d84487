//go:build !agentonly

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"stoker.dev/stoker/reconciler/render"
	"stoker.dev/stoker/reconciler/review"
)

func init() { subcommands = append(subcommands, newDiffCmd) }

func newDiffCmd() *cobra.Command {
	var o review.DiffOptions
	cmd := &cobra.Command{
		Use:   "diff BASE HEAD [DIR]",
		Short: "Show each pool's rendered diff between two revisions (or two directories) and what it does to the nodes",
		Example: `  stoker diff main HEAD                          # what the checkout's HEAD does to every pool
  stoker diff origin/canary HEAD --branch canary # a pull request to canary: only pools that follow canary
  stoker diff origin/main HEAD -o markdown --fail-on reboot --status-repo ssh://git@git.example.com/fleet/status.git`,
		Long: `Render BASE and HEAD (two revisions of the checkout DIR, default ".", or two
directories) and show, for each pool whose rendered config changes, the files,
units, ssh keys, kernel arguments, kernel type and OS image that change, and
the disruption each change causes under HEAD's node disruption policy.
Exit status 1 when HEAD does not validate or --fail-on is reached.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Base, o.Head = args[0], args[1]
			if len(args) == 3 {
				o.Dir = args[2]
			}
			o.Stdout = cmd.OutOrStdout()
			err := review.RunDiff(cmd.Context(), o)
			if errors.Is(err, render.ErrInvalid) || errors.Is(err, review.ErrFailOn) {
				return &exitError{code: 1, err: err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text, markdown (a pull-request comment) or json")
	f.StringVar(&o.FailOn, "fail-on", "", "exit 1 when any pool's action reaches this: reboot or drain")
	f.StringVar(&o.Branch, "branch", "", "the config-repo branch BASE and HEAD stand for, e.g. a pull request's target (default: --default-branch); only pools whose source branch it is render BASE and HEAD, the others render their own source branch on both sides")
	f.StringVar(&o.DefaultBranch, "default-branch", "main", "the hub's --branch: pools are defined there, and pools without stoker.dev/source-branch render it")
	f.StringVar(&o.StatusRepoURL, "status-repo", "", "repository holding stoker/fleet: adds nodes affected per pool and the rollout")
	f.StringVar(&o.FleetDir, "fleet", "", "a checkout of stoker/fleet (instead of --status-repo)")
	f.StringVar(&o.WorkDir, "work-dir", "", "Git cache directory for --status-repo (default: a temporary directory)")
	f.IntVar(&o.MaxDiffBytes, "max-diff-bytes", 0, "cap each file's printed diff (default 8 KiB)")
	f.StringArrayVar(&o.TrustRoots, "trust-root", nil, "the hub's trust root file(s): say whether HEAD's signature verifies (with BASE's --repo-signers file); repeatable")
	f.StringVar(&o.RepoSigners, "repo-signers", review.DefaultRepoSigners, "allowed_signers file at BASE extending --trust-root ('-' = none)")
	o.Auth.BindFlags(f)
	cmd.MarkFlagsMutuallyExclusive("status-repo", "fleet")
	return cmd
}
