//go:build nokube

package main

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/agent"
)

// errNoKube is the nokube build's answer to the Kubernetes-mode flags: it
// links no client-go (that is what keeps its idle RSS small).
var errNoKube = errors.New("this build has no Kubernetes mode (built with -tags nokube): run the full stoker binary for --kubeconfig, --in-cluster or --drain kube")

// wireAgent refuses Kubernetes mode.
func (k *kubeFlags) wireAgent(_ context.Context, o *agent.Options, _ *logrus.Logger) error {
	if k.enabled() || o.Drain == "kube" {
		return &exitError{code: 2, err: errNoKube}
	}
	return nil
}
