//go:build !agentonly

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"stoker.dev/stoker/reconciler/render"
)

func init() { subcommands = append(subcommands, newRenderCmd) }

func newRenderCmd() *cobra.Command {
	var opts render.RenderCommandOptions
	cmd := &cobra.Command{
		Use:   "render [DIR]",
		Short: "Render one config per pool; --out writes pools/ and rendered/ exactly as on stoker/status",
		Example: `  stoker render                 # the pools of the checkout in the current directory
  stoker render ./config -o json
  stoker render --out /tmp/status   # pools/ and rendered/ exactly as the hub writes stoker/status`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.Stdout = cmd.OutOrStdout()
			opts.Stderr = cmd.ErrOrStderr()
			err := render.RunRender(cmd.Context(), opts)
			if errors.Is(err, render.ErrInvalid) {
				return &exitError{code: 1, err: err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "write the status-branch files (pools/<pool>.yaml, rendered/<name>.json) under this directory")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table or json")
	return cmd
}
