//go:build !agentonly

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"stoker.dev/stoker/reconciler/fleetview"
)

func init() { subcommands = append(subcommands, newStatusCmd) }

func newStatusCmd() *cobra.Command {
	var o fleetview.StatusOptions
	cmd := &cobra.Command{
		Use:   "status [POOL...] --repo URL",
		Short: "Show pools and nodes from stoker/fleet, like `oc get mcp` and `oc get nodes`",
		Example: `  stoker status --repo ssh://git@git.example.com/fleet/config.git
  stoker status worker -o wide --repo "$REPO"               # one pool, with reasons and sources
  stoker status --repo "$REPO" -o json | jq '.pools[].conditions'
  stoker status worker --repo "$REPO" --wait-for Updated --timeout 30m   # like kubectl wait`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Pools = args
			o.Out = cmd.OutOrStdout()
			err := fleetview.RunStatus(cmd.Context(), o)
			if errors.Is(err, fleetview.ErrWaitTimeout) {
				return &exitError{code: 1, err: err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RepoURL, "repo", "", "repository holding stoker/fleet (the hub's --status-repo)")
	f.StringVarP(&o.Output, "output", "o", "table", "output format: table, wide (adds unavailable count, source and reason), json or yaml (with each pool's conditions)")
	f.StringVar(&o.WaitFor, "wait-for", "", "wait until every selected pool has this condition: Updated, Updating, Degraded or RenderDegraded, optionally =True or =False (like kubectl wait --for=condition=...)")
	f.DurationVar(&o.Timeout, "timeout", 0, "with --wait-for: give up (exit 1) after this long (default: no limit)")
	f.BoolVarP(&o.Watch, "watch", "w", false, "keep printing as the fleet changes")
	f.DurationVar(&o.Interval, "interval", 0, "poll interval with --watch and --wait-for (default 5s)")
	f.StringVar(&o.WorkDir, "work-dir", "", "Git cache directory (default: a temporary directory)")
	f.StringArrayVar(&o.TrustHubKeys, "trust-hub-key", nil, "the hub's public key file(s): verify that stoker/fleet is signed by the hub and say so (fails otherwise); repeatable")
	o.Auth.BindFlags(f)
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}
