//go:build !agentonly

package main

import (
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler"
	"stoker.dev/stoker/reconciler/notify"
)

func init() { subcommands = append(subcommands, newHubCmd) }

func newHubCmd() *cobra.Command {
	o := reconciler.HubOptions{Version: version}
	var logLevel string
	var kube kubeFlags
	cmd := &cobra.Command{
		Use:   "hub --repo URL --reports-repo URL",
		Short: "Render the config repo into stoker/status and drive rollouts pool by pool",
		Example: `  stoker hub --repo ssh://git@git.example.com/fleet/config.git \
    --reports-repo ssh://git@git.example.com/fleet/reports.git --listen :8080 \
    --webhook-secret-file /etc/stoker/webhook-secret --work-dir /var/lib/stoker-hub
  # agents poll a repo with few refs
  stoker hub --repo https://git.example.com/fleet/config.git --status-repo https://git.example.com/fleet/status.git \
    --reports-repo https://git.example.com/fleet/reports.git \
    --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			o.Log, err = kube.start(logLevel, "hub", func(log *logrus.Logger) error {
				return kube.wireHub(cmd.Context(), &o, log)
			})
			if err != nil {
				return err
			}
			if err := requireReportsRepo(o.ReportsRepoURL); err != nil {
				return err
			}
			return reconciler.RunHub(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.RepoURL, "repo", "", "config repository URL (required)")
	f.StringVar(&o.Branch, "branch", "main", "default branch: pool definitions and MachineConfigs come from it")
	f.StringVar(&o.Path, "path", ".", "directory inside the repository that holds the manifests")
	f.StringVar(&o.StatusRepoURL, "status-repo", "", "repository for stoker/status and stoker/fleet (default: --repo)")
	f.StringVar(&o.ReportsRepoURL, "reports-repo", "", reportsRepoUsage)
	f.DurationVar(&o.Interval, "interval", reconciler.DefaultInterval, "poll interval (a verified push webhook reconciles at once)")
	f.Float64Var(&o.UnreachableAfter, "unreachable-after", api.DefaultUnreachableMultiple, "mark a node Unreachable (and count it unavailable in rollouts) after this many --agent-heartbeat intervals without a report")
	f.StringVar(&o.StatusLayout, "status-layout", "auto", "stoker/status layout to write: auto (2 once every reporting agent reads it, else 1 with layout 2's files beside nodes/), 1 or 2")
	f.DurationVar(&o.AgentHeartbeat, "agent-heartbeat", api.DefaultHeartbeat, "the agents' --heartbeat: how often an idle agent rewrites its report")
	f.StringVar(&o.Listen, "listen", "", "HTTP address for /healthz, /metrics and /hooks/git (e.g. :8080 or 127.0.0.1:0)")
	f.DurationVar(&o.HealthWindow, "health-window", 0, "/healthz fails after this long without a successful reconcile (standing by: without reading the leader Lease, which it does every 2s); default 3 × --interval + 5m")
	f.StringVar(&o.WorkDir, "work-dir", "", "persistent Git cache directory (default: a temporary directory)")
	f.StringVar(&o.WebhookSecretFile, "webhook-secret-file", "", "file holding the push webhook's shared secret")
	f.BoolVar(&o.Strict, "strict", false, "treat validation warnings as errors")
	f.StringSliceVar(&o.Previews, "preview-branches", nil, "globs of config branches to render to stoker/preview/<branch> for review (e.g. 'feature/*,pr-*')")
	f.StringArrayVar(&o.Signing.TrustRoots, "trust-root", nil, "file of keys trusted to sign config-branch heads (allowed_signers, SSH .pub or OpenPGP keyring); repeatable; when set, unsigned or untrusted heads are not rendered")
	f.StringVar(&o.Signing.RepoSignersPath, "repo-signers", reconciler.DefaultRepoSignersPath, "allowed_signers file in the config repo extending --trust-root; its changes must be signed by a key trusted at the parent commit ('-' = off)")
	f.StringVar(&o.Signing.NodeSignersPath, "node-signers", reconciler.DefaultNodeSignersPath, "allowed_signers file in the config repo with the nodes' report keys (principal = node name; '-' = off)")
	f.StringVar(&o.Signing.SignKeyFile, "sign-key", "", "the hub's SSH private key: sign every stoker/status and stoker/fleet commit")
	f.StringArrayVar(&o.Signing.TrustHubKeys, "trust-hub-key", nil, "an earlier hub public key still accepted on stoker/status and stoker/fleet during a key rotation; repeatable")
	f.BoolVar(&o.Signing.RequireSignedReports, "require-signed-reports", false, "ignore report commits not signed by the node's key in --node-signers (needs --trust-root)")
	f.StringVar(&o.Notify.SecretsDir, "notify-secrets-dir", "", "directory of the notification receivers' secrets: <dir>/<secretRef>/url, and optional token (Bearer) and hmac-key (X-Signature) files, for the receivers .stoker/notifications.yaml names; unset sends no notification")
	f.IntVar(&o.Notify.Retries, "notify-retries", notify.DefaultBackoff.Steps, "attempts per notification delivery")
	f.DurationVar(&o.Notify.RetryBase, "notify-retry-base", notify.DefaultBackoff.Duration, "first wait between notification attempts (doubling, with jitter)")
	f.DurationVar(&o.Notify.Timeout, "notify-timeout", notify.DefaultTimeout, "timeout of one notification HTTP attempt")
	f.StringVar(&logLevel, "log-level", "info", "log level (debug, info, warn, error)")
	f.StringVar(&o.TestClockStart, "test-clock-start", "", "for tests only: start the hub's clock at this RFC 3339 instant (it runs at wall-clock speed)")
	_ = f.MarkHidden("test-clock-start")
	o.Auth.BindFlags(f)
	o.ConfigServer.BindFlags(f)
	kube.bindHub(f)
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}
