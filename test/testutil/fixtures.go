package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	return fileMC(name, role, path, "3.2.0", "0644", "", "data:,"+content)
}

// OverwriteFileMC returns a MachineConfig for role writing content (escaped
// here) to path with Ignition 3.4.0 and overwrite: true, as the end-to-end
// tests write real files.
func OverwriteFileMC(name, role, path, content string) string {
	return overwriteMC(name, role, path, "0644", content)
}

// ExecutableFileMC is OverwriteFileMC with mode 0755: how a pull request
// ships a script, such as a node lifecycle hook.
func ExecutableFileMC(name, role, path, content string) string {
	return overwriteMC(name, role, path, "0755", content)
}

func overwriteMC(name, role, path, mode, content string) string {
	return fileMC(name, role, path, "3.4.0", mode, "          overwrite: true\n", `"data:,`+strings.ReplaceAll(URLEscape(content), `"`, `%22`)+`"`)
}

func fileMC(name, role, path, version, mode, extra, source string) string {
	return fmt.Sprintf(`apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: %s
  labels:
    machineconfiguration.openshift.io/role: %s
spec:
  config:
    ignition:
      version: %s
    storage:
      files:
        - path: %s
          mode: %s
%s          contents:
            source: %s
`, name, role, version, path, mode, extra, source)
}

// URLEscape percent-encodes every byte of s but letters, digits and -_.=/
// (a data: URL's payload).
func URLEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.=/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
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
