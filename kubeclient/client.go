package kubeclient

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// New builds a client from the kubeconfig file at path, or from the
// in-cluster ServiceAccount when path is empty (the hub's Deployment, the
// agent's DaemonSet). userAgent names the caller to the API server
// ("stoker-hub", "stoker-agent").
func New(kubeconfig, userAgent string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		if kubeconfig == "" {
			return nil, fmt.Errorf("load in-cluster kubernetes config: %w", err)
		}
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = userAgent
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}
