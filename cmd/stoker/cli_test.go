package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestEveryFlagHasAnEnvironmentVariable: every flag of every command is
// documented with its STOKER_<FLAG> variable, and the variable sets it.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	root := newRoot()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(f.Usage, "$"+envName(f.Name)) && !strings.Contains(f.Usage, "$STOKER_") {
				t.Errorf("stoker %s --%s: usage names no environment variable: %q", c.Name(), f.Name, f.Usage)
			}
			n++
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if n < 40 {
		t.Fatalf("only %d flags seen", n)
	}
	t.Setenv("STOKER_OUTPUT", "json")
	t.Setenv("STOKER_STRICT", "true")
	var out bytes.Buffer
	root = newRoot()
	root.SetOut(&out)
	c, _, err := root.Find([]string{"validate"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bindEnv(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Flags().Lookup("output").Value.String(); got != "json" {
		t.Fatalf("STOKER_OUTPUT gave -o %q", got)
	}
	if got := c.Flags().Lookup("strict").Value.String(); got != "true" {
		t.Fatalf("STOKER_STRICT gave --strict %q", got)
	}
	// A required flag is satisfied by its variable.
	t.Setenv("STOKER_INTERVAL", "bogus")
	err = execute(context.Background(), []string{"hub"})
	var ee *exitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "STOKER_INTERVAL") {
		t.Fatalf("a bad STOKER_INTERVAL: %v", err)
	}
}

// TestBadFlagHint: a bad flag says what to run for help.
func TestBadFlagHint(t *testing.T) {
	err := execute(context.Background(), []string{"status", "--bogus"})
	if err == nil || !strings.Contains(err.Error(), "unknown flag: --bogus") || !strings.Contains(err.Error(), "See 'stoker status --help'") {
		t.Fatalf("err %v", err)
	}
}

// TestCompletionOfEnumeratedValues: shell completion offers the values of
// -o, --log-format, --drain, --reboot, --fail-on.
func TestCompletionOfEnumeratedValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-o", ""}, "wide"},
		{[]string{"agent", "--reboot", ""}, "simulate"},
		{[]string{"agent", "--drain", ""}, "kube"},
		{[]string{"hub", "--log-format", ""}, "json"},
		{[]string{"diff", "--fail-on", ""}, "reboot"},
		{[]string{"validate", "-o", ""}, "json"},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, tc.args...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want+"\n") {
			t.Fatalf("complete %v: %q lacks %s", tc.args, out.String(), tc.want)
		}
	}
}

// TestHelpHasExamples: every command's --help shows Examples.
func TestHelpHasExamples(t *testing.T) {
	for _, c := range newRoot().Commands() {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("stoker %s --help has no Examples", c.Name())
		}
	}
}

// TestHubIntervalDefaultShown: --help shows the hub's --interval default.
func TestHubIntervalDefaultShown(t *testing.T) {
	c, _, _ := newRoot().Find([]string{"hub"})
	if f := c.Flags().Lookup("interval"); f == nil || f.DefValue != "15s" {
		t.Fatalf("hub --interval default %v", f)
	}
}

// TestLogFormatFlag: hub and agent take --log-format text|json; another
// value is refused before anything starts.
func TestLogFormatFlag(t *testing.T) {
	for _, args := range [][]string{{"hub"}, {"agent", "--node", "n1"}} {
		cmd := args[0]
		err := execute(context.Background(), append(args, "--repo", "git://127.0.0.1:1/none.git", "--log-format", "xml"))
		if err == nil || !strings.Contains(err.Error(), "--log-format") {
			t.Fatalf("%s --log-format xml: %v", cmd, err)
		}
	}
}

// TestEnvSatisfiesRequiredFlag: STOKER_REPO stands for the required --repo.
func TestEnvSatisfiesRequiredFlag(t *testing.T) {
	t.Setenv("STOKER_REPO", "git://127.0.0.1:1/none.git")
	t.Setenv("STOKER_WORK_DIR", t.TempDir())
	err := execute(context.Background(), []string{"status"})
	if err == nil || strings.Contains(err.Error(), "required flag") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("status with STOKER_REPO: %v", err)
	}
}

// TestReportsRepoRequired: hub and agent refuse to start without
// --reports-repo, saying why (exit 2, nothing started); STOKER_REPORTS_REPO
// stands for it.
func TestReportsRepoRequired(t *testing.T) {
	for _, args := range [][]string{{"hub"}, {"agent", "--node", "n1"}} {
		err := execute(context.Background(), append(args, "--repo", "git://127.0.0.1:1/none.git", "--work-dir", t.TempDir()))
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "--reports-repo (or STOKER_REPORTS_REPO) is required") {
			t.Fatalf("%s without --reports-repo: %v, want exit 2 naming --reports-repo", args[0], err)
		}
	}
	t.Setenv("STOKER_REPORTS_REPO", "git://127.0.0.1:1/reports.git")
	// Flags are checked before the hub starts; past them it runs until
	// ctx ends, here at once (already cancelled: no clock involved).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := execute(ctx, []string{"hub", "--repo", "git://127.0.0.1:1/none.git", "--work-dir", t.TempDir(), "--interval", "1h"})
	if err != nil && strings.Contains(err.Error(), "reports-repo") {
		t.Fatalf("hub with STOKER_REPORTS_REPO: %v", err)
	}
}
