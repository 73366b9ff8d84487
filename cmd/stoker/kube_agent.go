//go:build !nokube

package main

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/agent"
	"stoker.dev/stoker/kubeclient"
	"stoker.dev/stoker/nodeops/kubedrain"
)

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
