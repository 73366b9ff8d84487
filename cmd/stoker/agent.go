package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"stoker.dev/stoker/agent"
	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

func init() { subcommands = append(subcommands, newAgentCmd) }

func newAgentCmd() *cobra.Command {
	o := agent.Options{Version: version}
	var logLevel, labels string
	var kube kubeFlags
	cmd := &cobra.Command{
		Use:   "agent --repo URL --reports-repo URL --node NAME",
		Short: "Apply this node's rendered config from stoker/status safely and report to stoker/reports/<node>",
		Example: `  # a host without Kubernetes, labels from the command line
  stoker agent --repo ssh://git@git.example.com/fleet/config.git \
    --reports-repo ssh://git@git.example.com/fleet/reports.git --node "$(hostname)" \
    --labels node-role.kubernetes.io/worker= --listen 127.0.0.1:9101
  # every flag from the environment (systemd EnvironmentFile, a DaemonSet)
  STOKER_REPO=https://git.example.com/fleet/config.git STOKER_REPORTS_REPO=https://git.example.com/fleet/reports.git \
    STOKER_NODE=worker-0 stoker agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			o.Log, err = kube.start(logLevel, "agent", func(log *logrus.Logger) error {
				if o.Labels, err = parseLabels(labels); err != nil {
					return &exitError{code: 2, err: err}
				}
				return kube.wireAgent(cmd.Context(), &o, log)
			})
			if err != nil {
				return err
			}
			o.StartSpread = o.Interval // a fleet started at once polls spread over one interval
			if err := requireReportsRepo(o.ReportsRepoURL); err != nil {
				return err
			}
			err = agent.Run(cmd.Context(), o)
			if errors.Is(err, agent.ErrDegraded) {
				return &exitError{code: 1, err: err} // --once: the update failed
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RepoURL, "repo", "", "config repository URL (required)")
	f.StringVar(&o.Node, "node", "", "this node's name (required)")
	f.StringVar(&o.StatusRepoURL, "status-repo", "", "repository holding stoker/status (default: --repo)")
	f.StringVar(&o.ReportsRepoURL, "reports-repo", "", reportsRepoUsage)
	f.StringVar(&o.Root, "root", "/", "the host's root directory (/host in the DaemonSet: its systemd is reached through <root>/run, its tools run chrooted into it)")
	f.BoolVar(&o.Offline, "offline", false, "--root is a directory tree without a running systemd (an image build): enable units with systemctl --root, only record restarts and reloads (implied by --reboot simulate)")
	f.StringVar(&o.StateDir, "state-dir", "/var/lib/stoker", "the agent's persistent state")
	f.StringVar(&o.WorkDir, "work-dir", "", "Git cache directory (default <state-dir>/git)")
	f.StringVar(&labels, "labels", "", "node labels for pool membership, k=v,... (empty values allowed: node-role.kubernetes.io/worker=)")
	f.DurationVar(&o.Interval, "interval", 15*time.Second, "status ref check interval")
	f.DurationVar(&o.Heartbeat, "heartbeat", api.DefaultHeartbeat, "rewrite an unchanged report this often (the hub's --agent-heartbeat)")
	f.DurationVar(&o.DriftInterval, "drift-interval", agent.DefaultDriftInterval, "full drift check interval, on top of inotify on the managed files' directories")
	f.StringVar(&o.Drain, "drain", "none", "drain before disruptive changes: none, kube or exec:CMD")
	f.DurationVar(&o.DrainDeadline, "drain-deadline", agent.DefaultDrainDeadline, "report the node Degraded when its drain has failed this long (it keeps retrying; survives restarts)")
	f.DurationVar(&kube.drainBackoff, "drain-backoff", 5*time.Second, "with --drain kube, the first wait before retrying a failed drain; it doubles up to 2m")
	f.StringVar(&o.Reboot, "reboot", "systemd", "how to reboot: systemd, exec:CMD or simulate")
	f.StringVar(&o.OSBackend, "os-backend", "auto", "kernel arguments and OS image: auto, rpm-ostree, bootc, grubby or none")
	f.StringVar(&o.CoreUser, "core-user", "core", "the user whose ssh keys the config manages")
	f.BoolVar(&o.AutoRollback, "auto-rollback", false, "roll back to the last good config when validation or the after-reboot hooks fail after a reboot")
	f.DurationVar(&o.HookTimeout, "hook-timeout", nodeops.DefaultHookTimeout, "kill a lifecycle hook (/etc/stoker/hooks.d/<point>/* under --root) and its process group after this long; it then counts as failed")
	f.StringArrayVar(&o.TrustHubKeys, "trust-hub-key", nil, "file with a hub public key (.pub, allowed_signers or OpenPGP keyring); repeatable; when set, only stoker/status commits signed by one of them are applied")
	f.StringVar(&o.SignKeyFile, "sign-key", "", "this node's SSH private key: sign every report commit with it")
	f.BoolVar(&o.Once, "once", false, "return once the node is converged (exit 0), failed or Degraded (exit 1), or a permanent error stops it (exit 2), instead of polling")
	f.StringVar(&logLevel, "log-level", "info", "log level (debug, info, warn, error)")
	f.StringVar(&o.Listen, "listen", "", "HTTP address for /metrics and /healthz (e.g. 127.0.0.1:9101; empty: none)")
	o.Auth.BindFlags(f)
	kube.bind(f)
	_ = cmd.MarkFlagRequired("repo")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}

// parseLabels parses "k=v,k2=" into a map; every item needs "=".
func parseLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not key=value", item)
		}
		out[k] = v
	}
	return out, nil
}
