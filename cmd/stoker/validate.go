//go:build !agentonly

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"stoker.dev/stoker/reconciler/render"
)

func init() { subcommands = append(subcommands, newValidateCmd) }

func newValidateCmd() *cobra.Command {
	var opts render.ValidateOptions
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Report every problem of a config repo checkout, with file and field; exit 1 on errors",
		Example: `  stoker validate                 # the checkout in the current directory
  stoker validate --strict ./config
  stoker validate -o json . | jq -r '.problems[] | "::error file=\(.file),line=\(.line)::\(.field): \(.message)"'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			opts.Stdout = cmd.OutOrStdout()
			err := render.RunValidate(cmd.Context(), opts)
			if errors.Is(err, render.ErrInvalid) {
				return &exitError{code: 1, err: err}
			}
			if err != nil {
				return fmt.Errorf("validate: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "treat warnings (unknown keys and fields) as errors")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text, or json (file, line, field, message and severity of every problem, for CI annotations)")
	return cmd
}
