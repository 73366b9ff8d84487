//go:build !agentonly

package main

import (
	"github.com/spf13/cobra"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/observe"
	"stoker.dev/stoker/reconciler/fleetview"
)

func init() { subcommands = append(subcommands, newVersionCmd) }

func newVersionCmd() *cobra.Command {
	o := fleetview.VersionOptions{Client: api.HubInfo(observe.Build(version))}
	cmd := &cobra.Command{
		Use:   "version [--repo URL]",
		Short: "Print this binary's version and, with --repo, the version of the hub that writes stoker/fleet",
		Example: `  stoker version
  stoker version -o json --repo ssh://git@git.example.com/fleet/config.git`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return fleetview.RunVersion(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text, json or yaml")
	f.StringVar(&o.RepoURL, "repo", "", "repository holding stoker/fleet (the hub's --status-repo): also print the hub's version")
	f.StringVar(&o.WorkDir, "work-dir", "", "Git cache directory for --repo (default: a temporary directory)")
	o.Auth.BindFlags(f)
	return cmd
}
