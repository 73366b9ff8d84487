package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=...).
var version = "dev"

// subcommands is filled by each command's file, so commands stay in their
// own files and main only wires them.
var subcommands []func() *cobra.Command

// exitError carries a specific exit status (validate and diff exit 1 on
// findings without that being a crash).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := execute(ctx, os.Args[1:])
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "stoker:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "stoker:", err)
	os.Exit(2)
}

// newRoot builds the stoker command with every subcommand.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "stoker",
		Short:         "Git-driven, pull-based configuration for fleets of Linux nodes",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	root.SetFlagErrorFunc(flagError)
	documentEnv(root)
	registerCompletions(root)
	return root
}

// execute runs the command line args; STOKER_<FLAG> variables are bound
// before it is parsed, so a variable satisfies a required flag and the
// command line still wins.
func execute(ctx context.Context, args []string) error {
	root := newRoot()
	root.SetArgs(args)
	if c, _, err := root.Find(args); err == nil {
		if err := bindEnv(c); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	return root.ExecuteContext(ctx)
}
