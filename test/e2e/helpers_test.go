//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/test/testutil"
)

// stokerBin is the binary under test.
var stokerBin string

func TestMain(m *testing.M) {
	stokerBin = os.Getenv("STOKER_BIN")
	cleanup := func() {}
	if stokerBin == "" {
		dir, err := os.MkdirTemp("", "stoker-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		stokerBin = filepath.Join(dir, "stoker")
		cmd := exec.Command("go", "build", "-o", stokerBin, "stoker.dev/stoker/cmd/stoker")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build stoker: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const interval = time.Second

// newFleet starts a git daemon, seeds main (and branches) with files, and
// starts the hub. Agents are added by the test. On failure the tail of
// every log is printed.
func newFleet(t *testing.T, branches map[string]map[string]string) *demo.Fleet {
	t.Helper()
	f := newFleetNoHub(t, branches)
	if _, err := f.StartHub(); err != nil {
		t.Fatal(err)
	}
	return f
}

// newFleetNoHub is newFleet without starting the hub (the test starts it
// with its own flags).
func newFleetNoHub(t *testing.T, branches map[string]map[string]string) *demo.Fleet {
	t.Helper()
	f, err := demo.NewFleet(t.TempDir(), stokerBin, interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	for _, b := range []string{"main", "canary"} {
		files, ok := branches[b]
		if !ok {
			continue
		}
		if _, err := f.Commit(b, files, nil, "seed "+b); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func dumpLogs(t *testing.T, f *demo.Fleet) {
	logs, _ := filepath.Glob(filepath.Join(f.Dir, "logs", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		t.Logf("--- %s (tail)\n%s", filepath.Base(l), strings.Join(lines, "\n"))
	}
}

func worker(name, zone string) demo.Node {
	return demo.Node{Name: name, Labels: map[string]string{"node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": zone}}
}

func addNodes(t *testing.T, f *demo.Fleet, nodes ...demo.Node) {
	t.Helper()
	for _, n := range nodes {
		if _, err := f.AddNode(n); err != nil {
			t.Fatal(err)
		}
	}
}

// pool returns a MachineConfigPool manifest selecting role MCs and nodes.
func pool(name, maxUnavailable string, paused bool, annotations string) string {
	sel := "    matchLabels:\n      machineconfiguration.openshift.io/role: " + name + "\n"
	if name != "worker" && name != "master" {
		sel = "    matchExpressions:\n      - {key: machineconfiguration.openshift.io/role, operator: In, values: [worker, " + name + "]}\n"
	}
	meta := "  name: " + name + "\n"
	if annotations != "" {
		meta += "  annotations:\n" + annotations
	}
	return "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n" + meta +
		"spec:\n  machineConfigSelector:\n" + sel +
		"  nodeSelector:\n    matchLabels:\n      node-role.kubernetes.io/" + name + ": \"\"\n" +
		fmt.Sprintf("  paused: %v\n  maxUnavailable: %s\n", paused, maxUnavailable)
}

// fileMC is a MachineConfig for role writing content to path.
var fileMC = testutil.OverwriteFileMC

// noRebootPolicy applies files under /etc/e2e without a reboot.
const noRebootPolicy = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
      - path: /etc/e2e
        actions:
          - type: None
`

const e2eFile = "/etc/e2e/app.conf"

// simpleRepo: a worker pool, one MachineConfig writing e2eFile, no reboot.
func simpleRepo(maxUnavailable string, paused bool, content string) map[string]string {
	return map[string]string{
		"pools/worker.yaml":          pool("worker", maxUnavailable, paused, ""),
		"machineconfiguration.yaml":  noRebootPolicy,
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, content),
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitConverged waits until every node is Done on its pool's config and
// the worker pool's config differs from not (when given).
func waitConverged(t *testing.T, f *demo.Fleet, not string, timeout time.Duration) *fleetview.FleetView {
	t.Helper()
	v, err := f.WaitFor(context.Background(), timeout, func(v *fleetview.FleetView) bool {
		return demo.Converged(v) && (not == "" || poolOf(v, "worker").Config != not) && (len(f.Nodes()) == 0 || len(v.Nodes) == len(f.Nodes()))
	}, nil)
	if err != nil {
		t.Fatalf("fleet did not converge: %v\n%s", err, table(v))
	}
	return v
}

func poolOf(v *fleetview.FleetView, name string) api.PoolFleet {
	if v != nil {
		for _, p := range v.Pools {
			if p.Name == name {
				return p
			}
		}
	}
	return api.PoolFleet{}
}

func nodeOf(v *fleetview.FleetView, name string) api.NodeFleet {
	if v != nil {
		for _, n := range v.Nodes {
			if n.Name == name {
				return n
			}
		}
	}
	return api.NodeFleet{}
}

func table(v *fleetview.FleetView) string {
	if v == nil {
		return "(no fleet status)"
	}
	var b strings.Builder
	_ = fleetview.WriteFleet(&b, v, "table", time.Now())
	return b.String()
}

func readRoot(t *testing.T, f *demo.Fleet, node, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.Root(node), path))
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	return string(data)
}

// gitWork clones the config repo into a work tree for merges and reverts
// done the way people do them.
func gitWork(t *testing.T, f *demo.Fleet) func(args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	if _, err := gitserver.Git(filepath.Dir(dir), nil, "clone", "--quiet", f.RepoURL, dir); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) string {
		t.Helper()
		out, err := gitserver.Git(dir, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
