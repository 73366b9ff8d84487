package main

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/observe"
)

// kubeFlags are the Kubernetes-mode flags shared by hub and agent.
type kubeFlags struct {
	kubeconfig  string
	inCluster   bool
	leaderElect bool
	// logFormat is --log-format (text or json).
	logFormat string
	// drainBackoff is the agent's first drain retry delay.
	drainBackoff time.Duration
}

func (k *kubeFlags) bind(f *pflag.FlagSet) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file: enables Kubernetes mode")
	f.BoolVar(&k.inCluster, "in-cluster", false, "use the in-cluster Kubernetes config (Kubernetes mode)")
	f.StringVar(&k.logFormat, "log-format", "text", "log format: text or json (one object per line)")
}

// start is the preamble hub and agent share: the --log-level logger, the
// component's entry for the command's Options, then wire (Kubernetes
// mode) with the logger.
func (k *kubeFlags) start(level, component string, wire func(*logrus.Logger) error) (logrus.FieldLogger, error) {
	log, err := newLogger(level, k.logFormat)
	if err != nil {
		return nil, err
	}
	entry := log.WithField("component", component)
	if err := wire(log); err != nil {
		return nil, err
	}
	return entry, nil
}

func (k *kubeFlags) enabled() bool { return k.kubeconfig != "" || k.inCluster }

func newLogger(level, format string) (*logrus.Logger, error) {
	l, err := observe.NewLogger(level, format)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return l, nil
}

// reportsRepoUsage is --reports-repo's help, the same for hub and agent.
const reportsRepoUsage = "repository of the stoker/reports/<node> branches, one per node (required; may be --repo's URL, " +
	"but then every agent's poll carries every node's ref, ~80 B each)"

// requireReportsRepo refuses a hub or agent without --reports-repo. It
// has no default: in the repository agents poll, the per-node report
// branches would make every poll grow with the fleet (go-git speaks
// protocol v1, which advertises every ref), so where they live is chosen
// on purpose.
func requireReportsRepo(url string) error {
	if url != "" {
		return nil
	}
	return &exitError{code: 2, err: errors.New("--reports-repo (or STOKER_REPORTS_REPO) is required: the stoker/reports/<node> " +
		"branches, one per node, live in a repository of their own so that the repository agents poll keeps a ref list " +
		"that does not grow with the fleet; create an empty repository for them and pass its URL to the hub and every " +
		"agent (--repo's URL keeps them in the config repository, at ~80 B per node on every agent's poll)")}
}
