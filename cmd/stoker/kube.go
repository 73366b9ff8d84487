package main

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/agent"
	"stoker.dev/stoker/kubeclient"
	"stoker.dev/stoker/nodeops/kubedrain"
	"stoker.dev/stoker/observe"
	"stoker.dev/stoker/reconciler"
	"stoker.dev/stoker/reconciler/httpserver"
	"stoker.dev/stoker/reconciler/kubeinventory"
	"stoker.dev/stoker/reconciler/leaderelection"
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

func (k *kubeFlags) bindHub(f *pflag.FlagSet) {
	k.bind(f)
	f.BoolVar(&k.leaderElect, "leader-elect", true, "in Kubernetes mode, run the loop only while holding the stoker-hub Lease")
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

// wireHub adds the Kubernetes node inventory (labels, zones, age, Ready)
// and Lease-based leader election to o in Kubernetes mode.
func (k *kubeFlags) wireHub(_ context.Context, o *reconciler.HubOptions, log *logrus.Logger) error {
	if !k.enabled() {
		return nil
	}
	client, err := kubeclient.New(k.kubeconfig, "stoker-hub")
	if err != nil {
		return err
	}
	o.Inventory = &kubeinventory.Inventory{Client: client}
	if k.leaderElect {
		// A replica standing by stays healthy while it reads the Lease, and
		// records webhooks on a second Lease the leader watches.
		health := httpserver.NewHealth()
		lo := leaderelection.LeaderOptions{Log: log, Observed: health.Observed, Leading: health.SetLeading}
		trigger := leaderelection.NewTrigger(client, lo)
		o.Health = health
		o.Leader = func(ctx context.Context, run func(context.Context) error) error {
			return leaderelection.RunWithLeaderElection(ctx, client, lo, run)
		}
		o.FireWebhook = trigger.Fire
		o.WatchWebhooks = trigger.Watch
	}
	return nil
}

// wireAgent sets the kube drainer (for --drain kube) and the Node
// annotator in Kubernetes mode.
func (k *kubeFlags) wireAgent(_ context.Context, o *agent.Options, log *logrus.Logger) error {
	if !k.enabled() {
		if o.Drain == "kube" {
			return errors.New("--drain kube needs --kubeconfig or --in-cluster")
		}
		return nil
	}
	client, err := kubeclient.New(k.kubeconfig, "stoker-agent")
	if err != nil {
		return err
	}
	if o.Drain == "kube" {
		o.Drainer = kubedrain.New(kubedrain.Options{Client: client, Log: log.WithField("component", "drain"),
			Backoff: kubedrain.Backoff(k.drainBackoff, 2*time.Minute)})
	}
	o.Annotator = &kubedrain.Annotator{Client: client}
	return nil
}

func newLogger(level, format string) (*logrus.Logger, error) {
	l, err := observe.NewLogger(level, format)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return l, nil
}
