package main

import (
	"context"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/reconciler"
)

// kubeFlags are the Kubernetes-mode flags shared by hub and agent.
type kubeFlags struct {
	kubeconfig string
	inCluster  bool
}

func (k *kubeFlags) bind(f *pflag.FlagSet) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file: enables Kubernetes mode (node inventory, leader election)")
	f.BoolVar(&k.inCluster, "in-cluster", false, "use the in-cluster Kubernetes config (Kubernetes mode)")
}

func (k *kubeFlags) enabled() bool { return k.kubeconfig != "" || k.inCluster }

// wireHub adds the Kubernetes inventory and leader election to o in
// Kubernetes mode.
func (k *kubeFlags) wireHub(ctx context.Context, o *reconciler.HubOptions, log *logrus.Logger) error {
	return nil
}
