//go:build !agentonly

package main

import (
	"context"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/kubeclient"
	"stoker.dev/stoker/reconciler"
	"stoker.dev/stoker/reconciler/httpserver"
	"stoker.dev/stoker/reconciler/kubeinventory"
	"stoker.dev/stoker/reconciler/leaderelection"
)

func (k *kubeFlags) bindHub(f *pflag.FlagSet) {
	k.bind(f)
	f.BoolVar(&k.leaderElect, "leader-elect", true, "in Kubernetes mode, run the loop only while holding the stoker-hub Lease")
}

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
