package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envPrefix: every flag --some-flag of every command can be set as
// STOKER_SOME_FLAG (a flag on the command line wins), as Flux and Argo CD
// read their environment.
const envPrefix = "STOKER_"

// EnvName is the environment variable that sets flag name.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag of cmd from its STOKER_<FLAG> variable, before
// the command line is parsed (which then overrides it). Repeatable flags
// take a comma-separated list.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			if e := sv.Replace(strings.Split(v, ",")); e != nil {
				err = fmt.Errorf("%s=%q (--%s): %w", envName(f.Name), v, f.Name, e)
			}
		} else if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s=%q (--%s): %w", envName(f.Name), v, f.Name, e)
		}
		if err == nil {
			f.Changed = true
		}
	})
	return err
}

// documentEnv appends each flag's variable to its usage, so --help says it.
func documentEnv(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(f.Usage, envPrefix) {
			f.Usage += " [$" + envName(f.Name) + "]"
		}
	})
	for _, c := range cmd.Commands() {
		documentEnv(c)
	}
}

// enumerated are the flags whose values are a fixed set: shell completion
// offers them.
var enumerated = map[string][]string{
	"log-format":    {"text", "json"},
	"log-level":     {"debug", "info", "warn", "error"},
	"drain":         {"none", "kube", "exec:"},
	"reboot":        {"systemd", "simulate", "exec:"},
	"fail-on":       {"reboot", "drain"},
	"os-backend":    {"auto", "rpm-ostree", "bootc", "grubby", "none"},
	"drift":         {"report", "restore"},
	"status-layout": {"auto", "1", "2"},
}

// outputs are -o's values per command.
var outputs = map[string][]string{
	"status":   {"table", "wide", "json", "yaml"},
	"diff":     {"text", "markdown", "json"},
	"render":   {"table", "json"},
	"validate": {"text", "json"},
	"version":  {"text", "json", "yaml"},
}

// registerCompletions offers the enumerated values of every such flag of
// cmd and its subcommands.
func registerCompletions(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		values := enumerated[f.Name]
		if f.Name == "output" {
			values = outputs[cmd.Name()]
		}
		if len(values) == 0 {
			return
		}
		_ = cmd.RegisterFlagCompletionFunc(f.Name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		})
	})
	for _, c := range cmd.Commands() {
		registerCompletions(c)
	}
}

// flagError adds the usage hint to a bad flag or argument: what to run
// for help.
func flagError(cmd *cobra.Command, err error) error {
	return &exitError{code: 2, err: fmt.Errorf("%w\nSee '%s --help' for usage.", err, cmd.CommandPath())}
}
