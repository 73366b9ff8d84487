package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// MC returns a MachineConfig document for role (none when role is empty)
// with spec as its indented spec body.
func MC(name, role, spec string) string {
	labels := ""
	if role != "" {
		labels = "\n  labels:\n    machineconfiguration.openshift.io/role: " + role
	}
	return "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: " + name + labels + "\nspec:\n" + spec
}

// Pool returns a MachineConfigPool document with selector as its spec body.
func Pool(name, selector string) string {
	return "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: " + name + "\nspec:\n" + selector
}

// WorkerInfraSel selects worker and infra MachineConfigs (Pool's selector).
const WorkerInfraSel = "  machineConfigSelector:\n    matchExpressions:\n    - {key: machineconfiguration.openshift.io/role, operator: In, values: [worker, infra]}\n"

// WorkerPool returns the worker MachineConfigPool.
func WorkerPool(paused bool, maxUnavailable int) string {
	return fmt.Sprintf(`apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfigPool
metadata:
  name: worker
spec:
  paused: %v
  maxUnavailable: %d
  machineConfigSelector:
    matchLabels:
      machineconfiguration.openshift.io/role: worker
  nodeSelector:
    matchLabels:
      node-role.kubernetes.io/worker: ""
`, paused, maxUnavailable)
}

// FileMC returns a MachineConfig for role writing content (already
// URL-escaped) to path with Ignition 3.2.0.
func FileMC(name, role, path, content string) string {
	return fmt.Sprintf(`apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: %s
  labels:
    machineconfiguration.openshift.io/role: %s
spec:
  config:
    ignition:
      version: 3.2.0
    storage:
      files:
        - path: %s
          mode: 0644
          contents:
            source: data:,%s
`, name, role, path, content)
}

// WriteTree writes files (slash paths → contents) under a new t.TempDir()
// and returns it.
func WriteTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
