//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/reconciler/fleetview"
)

// mirrorSet is the ImageDigestMirrorSet the canary procedure rolls out.
const mirrorSet = `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: team-images
spec:
  imageDigestMirrors:
    - source: quay.io/example-team
      mirrors:
        - mirror.example.internal:5000/example-team
`

const registriesConf = "/etc/containers/registries.conf"

// TestCanaryMirrorSet is the seed's canary procedure with an image mirror:
// an ImageDigestMirrorSet pushed to the canary branch reaches the two
// canary nodes only (as /etc/containers/registries.conf, generated as
// MCO's container-runtime-config controller writes it, applied with MCO's
// crio reload, no reboot), is verified there, and is then promoted to the
// worker pool by merging canary into main.
func TestCanaryMirrorSet(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	repo["pools/worker-canary.yaml"] = pool("worker-canary", "1", false, "    stoker.dev/source-branch: canary\n")
	// A Butane file with a plain local file, translated by the hub from
	// the Git tree.
	repo["butane/50-worker-motd.bu"] = "variant: openshift\nversion: 4.16.0\nmetadata:\n  name: 50-worker-motd\n  labels: {machineconfiguration.openshift.io/role: worker}\n" +
		"storage:\n  files:\n  - path: /etc/motd\n    mode: 0644\n    contents: {local: files/motd}\n"
	repo["butane/files/motd"] = "written in Butane, read from the repo\n"
	f := newFleet(t, map[string]map[string]string{"main": repo})
	git := gitWork(t, f)
	git("push", "--quiet", "origin", "main:canary")
	canaryNode := func(name, zone string) demo.Node {
		return demo.Node{Name: name, Labels: map[string]string{
			"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/worker-canary": "", "topology.kubernetes.io/zone": zone}}
	}
	workers, canaries := []string{"w-0", "w-1"}, []string{"c-0", "c-1"}
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"), canaryNode("c-0", "a"), canaryNode("c-1", "b"))
	v := waitConverged(t, f, "", 3*time.Minute)
	for _, c := range canaries {
		if p := nodeOf(v, c).Pool; p != "worker-canary" {
			t.Fatalf("%s is in pool %q", c, p)
		}
	}
	for _, n := range []string{"w-0", "c-0"} {
		if got := readRoot(t, f, n, "/etc/motd"); got != repo["butane/files/motd"] {
			t.Fatalf("%s: /etc/motd from the Butane file is %q", n, got)
		}
	}
	workerConfig := poolOf(v, "worker").Config
	boots := map[string]string{}
	for _, n := range append(append([]string(nil), workers...), canaries...) {
		r, err := f.Report(n)
		if err != nil {
			t.Fatal(err)
		}
		boots[n] = r.BootID
	}

	// hasMirror is the check an operator runs on a node.
	hasMirror := func(node string) bool {
		data, err := os.ReadFile(filepath.Join(f.Root(node), registriesConf))
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		return strings.Contains(s, `location = "quay.io/example-team"`) &&
			strings.Contains(s, `location = "mirror.example.internal:5000/example-team"`) &&
			strings.Contains(s, `pull-from-mirror = "digest-only"`)
	}
	waitNodes := func(step string, want map[string]bool) *fleetview.FleetView {
		t.Helper()
		v, err := f.WaitFor(context.Background(), 3*time.Minute, func(v *fleetview.FleetView) bool {
			if !demo.Converged(v) {
				return false
			}
			for n, w := range want {
				if hasMirror(n) != w {
					return false
				}
			}
			return true
		}, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", step, err, table(v))
		}
		return v
	}

	// 1. The mirror set goes to the canary branch: only canary nodes move.
	git("checkout", "--quiet", "-b", "canary", "origin/canary")
	work := workDir(git)
	if err := os.MkdirAll(filepath.Join(work, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "images/mirror-set.yaml"), []byte(mirrorSet), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "images/mirror-set.yaml")
	git("commit", "--quiet", "-m", "mirror set on canary")
	git("push", "--quiet", "origin", "canary")
	v = waitNodes("mirror set on canary", map[string]bool{"c-0": true, "c-1": true, "w-0": false, "w-1": false})

	// 2. Verified on the canary nodes: the generated config, applied with
	// a crio reload (MCO's policy for registries.conf), no reboot; the
	// worker pool's target never moved (both pools were rendered from the
	// same hub pass that produced the canary target).
	if got := poolOf(v, "worker").Config; got != workerConfig {
		t.Fatalf("worker pool moved to %s on a canary-only change", got)
	}
	for _, n := range canaries {
		r, err := f.Report(n)
		if err != nil {
			t.Fatal(err)
		}
		if r.BootID != boots[n] {
			t.Errorf("%s rebooted for a registries.conf change (MCO reloads crio)", n)
		}
		if log := agentLines(f, n, "planned update"); !strings.Contains(log, "action=Reload") {
			t.Errorf("%s: the mirror set was not applied with a reload:\n%s", n, log)
		}
	}
	for _, n := range workers {
		if hasMirror(n) {
			t.Fatalf("canary change reached %s", n)
		}
	}

	// 3. Promote: merge canary into main; the worker pool follows.
	git("checkout", "--quiet", "main")
	git("merge", "--quiet", "--no-ff", "-m", "promote mirror set", "canary")
	git("push", "--quiet", "origin", "main")
	v = waitNodes("promote to workers", map[string]bool{"c-0": true, "c-1": true, "w-0": true, "w-1": true})
	if poolOf(v, "worker").Config == workerConfig {
		t.Fatal("worker pool did not move on promotion")
	}
	for _, n := range workers {
		r, err := f.Report(n)
		if err != nil {
			t.Fatal(err)
		}
		if r.BootID != boots[n] {
			t.Errorf("%s rebooted for a registries.conf change (MCO reloads crio)", n)
		}
	}
}
