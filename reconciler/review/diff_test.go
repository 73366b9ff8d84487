package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/render"
)

const (
	diffKeyOps   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq9cmBV3f0qxkTTmf0rIFwcA6Yy0NZc3dq5ISXAExmp ops@example.com"
	diffKeyAlice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlkMqrmXGGQhHxUb5oa39ELE/pMvItfuGUHSK7wHB2E alice@example.com"
)

func dataURL(s string) string { return "data:," + url.PathEscape(s) }

// diffFileMC is a MachineConfig with one file.
func diffFileMC(name, role, path, content string) string {
	return mc(name, role, "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n"+
		"      - path: "+path+"\n        mode: 0644\n        contents: {source: '"+dataURL(content)+"'}\n")
}

func diffUnitMC(name, unit, contents string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(contents, "\n"), "\n") {
		b.WriteString("          " + l + "\n")
	}
	return mc(name, "worker", "  config:\n    ignition: {version: 3.2.0}\n    systemd:\n      units:\n"+
		"      - name: "+unit+"\n        enabled: true\n        contents: |\n"+b.String())
}

func diffSSHMC(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("          - " + k + "\n")
	}
	return mc("99-worker-ssh", "worker", "  config:\n    ignition: {version: 3.2.0}\n    passwd:\n      users:\n        - name: core\n          sshAuthorizedKeys:\n"+b.String())
}

func diffKargsMC(args ...string) string {
	return mc("05-worker-kargs", "worker", "  kernelArguments: ["+strings.Join(args, ", ")+"]\n")
}

const diffPolicy = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
      - path: /etc/chrony.conf
        actions:
          - type: Restart
            restart: {serviceName: chronyd.service}
      - path: /etc/containers/registries.conf
        actions:
          - type: Reload
            reload: {serviceName: crio.service}
`

const nodeHealthUnit = `[Unit]
Description=Node health probe

[Service]
ExecStart=/usr/local/bin/node-health --interval 30s

[Install]
WantedBy=multi-user.target
`

const registriesConf = `unqualified-search-registries = ["registry.example.com"]

[[registry]]
location = "registry.example.com"
`

// diffBase is the BASE repo every golden case changes.
func diffBase() map[string]string {
	return map[string]string{
		"cluster.yaml":                   diffPolicy,
		"pools/worker.yaml":              pool("worker", "  maxUnavailable: 3\n  machineConfigSelector:\n    matchLabels: {machineconfiguration.openshift.io/role: worker}\n"),
		"pools/infra.yaml":               pool("infra", workerInfraSel+"  maxUnavailable: 1\n"),
		"machineconfigs/05-kargs.yaml":   diffKargsMC("audit=1"),
		"machineconfigs/50-chrony.yaml":  diffFileMC("50-chrony", "worker", "/etc/chrony.conf", "pool 2.rhel.pool.ntp.org iburst\nmakestep 1.0 3\n"),
		"machineconfigs/50-reg.yaml":     diffFileMC("50-registries", "worker", "/etc/containers/registries.conf", registriesConf),
		"machineconfigs/50-infra.yaml":   diffFileMC("50-infra-motd", "infra", "/etc/motd.d/infra", "infra node\n"),
		"machineconfigs/60-unit.yaml":    diffUnitMC("60-node-health", "node-health.service", nodeHealthUnit),
		"machineconfigs/99-ssh.yaml":     diffSSHMC(diffKeyOps),
		"machineconfigs/README-not.yaml": "# comments only\n",
	}
}

// gitRepo makes a checkout in a temp dir with commits tagged base and head.
func gitRepo(t *testing.T, base, head map[string]string, remove ...string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	write := func(files map[string]string) {
		for name, data := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("init", "-q", "-b", "main")
	write(base)
	run("add", "-A")
	run("commit", "-q", "-m", "base")
	run("tag", "base")
	write(head)
	for _, r := range remove {
		if err := os.Remove(filepath.Join(dir, r)); err != nil {
			t.Fatal(err)
		}
	}
	run("add", "-A")
	run("commit", "-q", "--allow-empty", "-m", "head")
	run("tag", "head")
	return dir
}

func TestDiffGolden(t *testing.T) {
	cases := []struct {
		name   string
		head   map[string]string
		fleet  map[string]string // files of a stoker/fleet checkout
		action api.ActionType    // the report's strongest action
		pools  string            // the pools that change
		err    error
	}{
		{name: "ssh-key-only", head: map[string]string{"machineconfigs/99-ssh.yaml": diffSSHMC(diffKeyOps, diffKeyAlice)},
			action: api.ActionNone, pools: "infra,worker"},
		{name: "policy-file", head: map[string]string{"machineconfigs/50-chrony.yaml": diffFileMC("50-chrony", "worker", "/etc/chrony.conf", "pool 2.rhel.pool.ntp.org iburst\nmakestep 1.0 3\nrtcsync\n")},
			action: api.ActionRestart, pools: "infra,worker"},
		{name: "registries-conf", head: map[string]string{"machineconfigs/50-reg.yaml": diffFileMC("50-registries", "worker", "/etc/containers/registries.conf",
			strings.Replace(registriesConf, "\n[[registry]]", "\n[[registry]]\nblocked = false", 1)+"\n[[registry]]\nlocation = \"quay.io\"\n")},
			action: api.ActionReload, pools: "infra,worker"},
		// MCO's default for KubernetesCredentialProvidersDir (defaultClusterPolicies,
		// merged by apihelpers.MergeClusterPolicies): Restart kubelet.service.
		{name: "credential-provider", head: map[string]string{"machineconfigs/70-ecr.yaml": diffFileMC("70-ecr", "worker", "/etc/kubernetes/credential-providers/ecr-credential-provider.yaml", "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n")},
			action: api.ActionRestart, pools: "infra,worker"},
		{name: "unit-change", head: map[string]string{"machineconfigs/60-unit.yaml": diffUnitMC("60-node-health", "node-health.service", strings.Replace(nodeHealthUnit, "30s", "10s", 1))},
			action: api.ActionReboot, pools: "infra,worker"},
		{name: "kernel-args", head: map[string]string{"machineconfigs/05-kargs.yaml": diffKargsMC("audit=1", "mitigations=off")},
			action: api.ActionReboot, pools: "infra,worker"},
		{name: "one-pool-only", head: map[string]string{"machineconfigs/50-infra.yaml": diffFileMC("50-infra-motd", "infra", "/etc/motd.d/infra", "infra node: ask #infra before rebooting\n")},
			action: api.ActionReboot, pools: "infra"},
		{name: "secret-file", head: map[string]string{"machineconfigs/70-secret.yaml": diffFileMC("70-pull", "worker", "/etc/containers/auth.json", `{"auths":{"registry.example.com":{"auth":"c2VjcmV0OnNlY3JldA=="}}}`)},
			action: api.ActionReboot, pools: "infra,worker"},
		{name: "rollout-from-fleet", head: map[string]string{"machineconfigs/05-kargs.yaml": diffKargsMC("audit=0")},
			fleet: map[string]string{
				"pools/worker.yaml": "name: worker\nmachineCount: 37\nupdatedMachineCount: 37\nreadyMachineCount: 37\nupdated: true\nupdating: false\ndegraded: false\nunavailableMachineCount: 0\ndegradedMachineCount: 0\n",
				"pools/infra.yaml":  "name: infra\nmachineCount: 3\nupdatedMachineCount: 3\nreadyMachineCount: 3\nupdated: true\nupdating: false\ndegraded: false\nunavailableMachineCount: 0\ndegradedMachineCount: 0\n",
			},
			action: api.ActionReboot, pools: "infra,worker"},
		{name: "invalid-head", head: map[string]string{"machineconfigs/80-bad.yaml": diffFileMC("80-bad", "worker", "/usr/bin/evil", "x") + "  kernelType: turbo\n"},
			pools: "", err: render.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := gitRepo(t, diffBase(), tc.head)
			opts := DiffOptions{Base: "base", Head: "head", Dir: dir}
			if tc.fleet != nil {
				opts.FleetDir = t.TempDir()
				for name, data := range tc.fleet {
					p := filepath.Join(opts.FleetDir, name)
					_ = os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got bytes.Buffer
			var rep DiffReport
			for _, format := range []string{"text", "markdown", "json"} {
				var out bytes.Buffer
				opts.Output, opts.Stdout = format, &out
				err := RunDiff(context.Background(), opts)
				if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
					t.Fatalf("%s: err = %v, want %v", format, err, tc.err)
				}
				got.WriteString("=== " + format + "\n" + out.String())
				if format == "json" {
					if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
						t.Fatalf("json output does not parse: %v\n%s", err, out.String())
					}
				}
			}
			var pools []string
			for _, p := range rep.Pools {
				pools = append(pools, p.Name)
				for _, c := range p.Changes {
					if c.Reason == "" || c.Action == "" {
						t.Errorf("pool %s change %+v has no action or reason", p.Name, c)
					}
				}
			}
			if g := strings.Join(pools, ","); g != tc.pools {
				t.Errorf("pools that change = %q, want %q", g, tc.pools)
			}
			if tc.err == nil && rep.Action != tc.action {
				t.Errorf("action = %s, want %s", rep.Action, tc.action)
			}
			if tc.err != nil && len(rep.Errors) == 0 {
				t.Errorf("invalid HEAD: no errors in the report")
			}
			golden(t, filepath.Join("testdata", "diff", tc.name+".golden"), got.Bytes())
		})
	}
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reconciler/review -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if intended):\n--- got\n%s", path, got)
	}
}

func TestDiffDirectoriesAndFailOn(t *testing.T) {
	base := diffBase()
	head := diffBase()
	head["machineconfigs/99-ssh.yaml"] = diffSSHMC(diffKeyAlice)
	head["machineconfigs/50-chrony.yaml"] = diffFileMC("50-chrony", "worker", "/etc/chrony.conf", "server ntp.example.com iburst\n")
	baseDir, headDir := writeTree(t, base), writeTree(t, head)
	cases := []struct {
		failOn string
		err    error
	}{
		{"", nil},
		{"drain", nil}, // Restart is weaker than Drain
		{"reboot", nil},
		{"bogus", errors.New("bad flag")},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		err := RunDiff(context.Background(), DiffOptions{Base: baseDir, Head: headDir, FailOn: tc.failOn, Stdout: &out, Output: "json"})
		if (err != nil) != (tc.err != nil) {
			t.Fatalf("fail-on %q: err = %v", tc.failOn, err)
		}
		if err != nil {
			continue
		}
		var rep DiffReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Action != api.ActionRestart || len(rep.Pools) != 2 {
			t.Fatalf("directories: action %s, %d pools", rep.Action, len(rep.Pools))
		}
		var details []string
		for _, c := range rep.Pools[0].Changes {
			details = append(details, c.Details...)
		}
		joined := strings.Join(details, "\n")
		if !strings.Contains(joined, "+ SHA256:") || !strings.Contains(joined, "- SHA256:") || strings.Contains(joined, "AAAA") {
			t.Fatalf("ssh keys must show as fingerprints only: %s", joined)
		}
	}
	// A reboot-level change trips --fail-on drain and --fail-on reboot.
	head["machineconfigs/05-kargs.yaml"] = diffKargsMC("audit=0")
	headDir = writeTree(t, head)
	for _, f := range []string{"drain", "reboot"} {
		err := RunDiff(context.Background(), DiffOptions{Base: baseDir, Head: headDir, FailOn: f, Stdout: &bytes.Buffer{}})
		if !errors.Is(err, ErrFailOn) {
			t.Errorf("fail-on %s with a kernel argument change: err = %v", f, err)
		}
	}
}

func TestDiffSourceBranchPool(t *testing.T) {
	canary := "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: worker-canary\n  annotations: {stoker.dev/source-branch: canary}\n" +
		"spec:\n  machineConfigSelector:\n    matchExpressions:\n    - {key: machineconfiguration.openshift.io/role, operator: In, values: [worker, worker-canary]}\n"
	base := diffBase()
	base["pools/worker-canary.yaml"] = canary
	head := map[string]string{"machineconfigs/05-kargs.yaml": diffKargsMC("audit=0")}

	// Without the canary branch in the checkout the pool is skipped, with a note.
	dir := gitRepo(t, base, head)
	var out bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "head", Dir: dir, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pool worker-canary renders from branch canary, which is not in the checkout") ||
		strings.Contains(out.String(), "pool worker-canary:") {
		t.Fatalf("missing source branch:\n%s", out.String())
	}

	// With it, the pool renders the canary branch on both sides: the main
	// change does not reach it.
	cmd := exec.Command("git", "-C", dir, "branch", "canary", "base")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out.Reset()
	if err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "head", Dir: dir, Stdout: &out, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var rep DiffReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Pools {
		if p.Name == "worker-canary" {
			t.Fatalf("worker-canary renders from canary, yet the diff of main changes it: %+v", p)
		}
	}
	if len(rep.Pools) != 2 || len(rep.Notes) != 0 {
		t.Fatalf("pools %+v notes %v", rep.Pools, rep.Notes)
	}
}

func TestDiffBadRevision(t *testing.T) {
	dir := gitRepo(t, diffBase(), nil)
	err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "no-such-rev", Dir: dir, Stdout: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "no-such-rev") || errors.Is(err, render.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestFileDetail(t *testing.T) {
	gz := "H4sIAAAAAAAAA8tIzcnJ5wIAIDA6NgYAAAA=" // gzip("hello\n")
	str := func(s string) *string { return &s }
	file := func(src string, compression *string) ign3types.File {
		f := ign3types.File{Node: ign3types.Node{Path: "/etc/x"}}
		f.Contents.Source = &src
		f.Contents.Compression = compression
		return f
	}
	cases := []struct {
		name        string
		path        string
		old, cur    ign3types.File
		diff        string // substring of the diff ("" = no diff)
		detail      string // substring of a detail
		mustNotShow string
	}{
		{name: "text", path: "/etc/x", old: file(dataURL("a\n"), nil), cur: file(dataURL("b\n"), nil), diff: "-a\n+b\n"},
		{name: "gzip decoded", path: "/etc/x", old: file(dataURL("bye\n"), nil), cur: file("data:;base64,"+gz, str("gzip")), diff: "+hello\n"},
		{name: "private key", path: "/etc/x", old: file(dataURL("a\n"), nil), cur: file(dataURL("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"), nil),
			detail: "contents not shown (secret-looking)", mustNotShow: "b3BlbnNzaC1rZXk"},
		{name: "password in content", path: "/etc/app.conf", old: file(dataURL("user=a\n"), nil), cur: file(dataURL("user=a\npassword=hunter2\n"), nil),
			detail: "secret-looking", mustNotShow: "hunter2"},
		{name: "token path", path: "/etc/app/token", old: file(dataURL("x\n"), nil), cur: file(dataURL("y\n"), nil), detail: "secret-looking", mustNotShow: "+y"},
		{name: "certificate path", path: "/etc/pki/ca.crt", old: file(dataURL("x\n"), nil), cur: file(dataURL("y\n"), nil), detail: "secret-looking"},
		{name: "binary", path: "/etc/x", old: file(dataURL("a\n"), nil), cur: file(dataURL("\x00\x01\x02"), nil), detail: "contents not shown (binary)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.old.Path, tc.cur.Path = tc.path, tc.path
			cd := ChangeDiff{Kind: api.ChangeFile, Path: tc.path}
			fileDetail(&cd, tc.old, true, tc.cur, true)
			all := cd.Diff + strings.Join(cd.Details, "\n")
			if tc.diff != "" && !strings.Contains(cd.Diff, tc.diff) {
				t.Errorf("diff %q lacks %q", cd.Diff, tc.diff)
			}
			if tc.diff == "" && cd.Diff != "" {
				t.Errorf("diff printed: %q", cd.Diff)
			}
			if tc.detail != "" && !strings.Contains(all, tc.detail) {
				t.Errorf("details %q lack %q", cd.Details, tc.detail)
			}
			if tc.mustNotShow != "" && strings.Contains(all, tc.mustNotShow) {
				t.Errorf("printed %q: %s", tc.mustNotShow, all)
			}
		})
	}
}

func TestCapDiffAndFence(t *testing.T) {
	d := strings.Repeat("+line\n", 100)
	got := capDiff(d, 60)
	if len(got) > 60+40 || !strings.HasSuffix(got, "… 90 more line(s) not shown\n") {
		t.Fatalf("capDiff = %q", got)
	}
	if capDiff("short\n", 60) != "short\n" {
		t.Fatal("capDiff cut a short diff")
	}
	if f := codeFence("a ```` b"); f != "`````" {
		t.Fatalf("fence %q", f)
	}
	if f := codeFence("plain"); f != "```" {
		t.Fatalf("fence %q", f)
	}
}

// TestDiffPullRequestToCanary: a pull request to canary (--branch canary)
// renders only the pools that follow canary from BASE and HEAD; the worker
// and infra pools render main, their source, on both sides, so the diff
// announces nothing for them (as the hub would roll out nothing there).
func TestDiffPullRequestToCanary(t *testing.T) {
	canary := "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: worker-canary\n  annotations: {stoker.dev/source-branch: canary}\n" +
		"spec:\n  machineConfigSelector:\n    matchExpressions:\n    - {key: machineconfiguration.openshift.io/role, operator: In, values: [worker, worker-canary]}\n"
	base := diffBase()
	base["pools/worker-canary.yaml"] = canary
	head := map[string]string{"machineconfigs/05-kargs.yaml": diffKargsMC("audit=0")}
	dir := gitRepo(t, base, head)
	for _, args := range [][]string{{"checkout", "-q", "-b", "pr", "head"}, {"branch", "-f", "main", "base"}, {"branch", "canary", "base"}} {
		if b, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, b)
		}
	}
	var out bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: "canary", Head: "pr", Dir: dir, Branch: "canary", Stdout: &out, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var rep DiffReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Pools) != 1 || rep.Pools[0].Name != "worker-canary" || rep.Action != api.ActionReboot || len(rep.Notes) != 0 {
		t.Fatalf("a PR to canary must move worker-canary only (Reboot): pools %+v notes %v", rep.Pools, rep.Notes)
	}

	// The same change proposed to main moves worker and infra, not canary.
	out.Reset()
	if err := RunDiff(context.Background(), DiffOptions{Base: "main", Head: "pr", Dir: dir, Branch: "main", Stdout: &out, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	rep = DiffReport{}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range rep.Pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "infra,worker" {
		t.Fatalf("a PR to main: pools %v", names)
	}
}

// TestDiffShowsDirectoriesAndLinks: directory and link changes are shown
// with what changed, and the pool's action is Unreconcilable, as MCO's
// daemon (isConfigReconcilable) refuses them on a running node.
func TestDiffShowsDirectoriesAndLinks(t *testing.T) {
	dirMC := func(mode, target string) string {
		return mc("60-worker-dirs", "worker", "  config:\n    ignition: {version: 3.2.0}\n    storage:\n"+
			"      directories: [{path: /etc/d, mode: "+mode+"}]\n      links: [{path: /etc/l, target: "+target+"}]\n")
	}
	base, head := diffBase(), diffBase()
	base["machineconfigs/60-dirs.yaml"] = dirMC("0755", "/etc/a")
	head["machineconfigs/60-dirs.yaml"] = dirMC("0700", "/etc/b")
	var out bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: writeTree(t, base), Head: writeTree(t, head), Stdout: &out, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var rep DiffReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Action != api.ActionUnreconcilable {
		t.Fatalf("action %s, want Unreconcilable", rep.Action)
	}
	got := out.String()
	for _, want := range []string{`"kind": "directory"`, "mode 0755 → 0700", `"kind": "link"`, "target /etc/a → /etc/b", "ignition directories section contains changes"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
