//go:build !agentonly

package main

import (
	"time"

	"github.com/spf13/cobra"

	"stoker.dev/stoker/demo"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local fleet (Git server, hub, 4 agents) from the embedded examples repo and walk a rollout",
		Example: `  stoker demo                  # the whole story, under 2 minutes, then cleans up
  stoker demo --keep-running   # leave the fleet up to push your own changes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return demo.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.KeepRunning, "keep-running", false, "leave the fleet up after the story until Ctrl-C")
	f.StringVar(&o.Dir, "dir", "", "directory for everything (default: a new temporary directory)")
	f.DurationVar(&o.Interval, "interval", time.Second, "hub and agent poll interval")
	return cmd
}
