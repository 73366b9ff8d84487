package main

import (
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
