package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentBuildDeps keeps out of the agent-only builds what docs/scale.md
// measured out of them: a package linked is a package whose init runs and
// whose code stays in an idle agent's resident memory. The host agent
// (agentonly,nokube) links no Kubernetes client, no apimachinery meta/v1
// (api's slim types stand in) and nothing of the hub; the DaemonSet's
// agent (agentonly) nothing of the hub. As tailscale's
// cmd/tailscaled/deps_test.go does, it asks `go list`.
func TestAgentBuildDeps(t *testing.T) {
	hub := []string{"stoker.dev/stoker/reconciler", "github.com/coreos/butane/"}
	for _, c := range []struct {
		tags   string
		banned []string
	}{
		{"agentonly,nokube", append([]string{
			"k8s.io/client-go/", "k8s.io/kubectl/", "k8s.io/api/",
			"k8s.io/apimachinery/pkg/apis/meta/v1", "k8s.io/apimachinery/pkg/runtime",
			"sigs.k8s.io/structured-merge-diff/",
		}, hub...)},
		{"agentonly", hub},
	} {
		out, err := exec.Command("go", "list", "-deps", "-tags", c.tags, ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps -tags %s: %v\n%s", c.tags, err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, b := range c.banned {
				if pkg == strings.TrimSuffix(b, "/") || strings.HasPrefix(pkg, b) ||
					(!strings.HasSuffix(b, "/") && strings.HasPrefix(pkg, b+"/")) {
					t.Errorf("-tags %s links %s (banned: %s)", c.tags, pkg, b)
				}
			}
		}
	}
}
