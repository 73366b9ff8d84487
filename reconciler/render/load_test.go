package render

import (
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

func load(t *testing.T, files map[string]string, opts LoadOptions) (*Repo, api.Problems) {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c)}
	}
	return Load(fsys, ".", opts)
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		opts  LoadOptions
		// want: "file: field: message" substrings of every problem, in order.
		want []string
		// check inspects the loaded repo when there are no errors.
		check func(t *testing.T, r *Repo)
	}{
		{name: "multi-document, hidden dirs and non-yaml skipped",
			files: map[string]string{
				"a.yaml":           "---\n" + mc("50-a", "worker", "  kernelArguments: [a]\n") + "\n---\n# comment only\n---\n" + mc("50-b", "worker", "  fips: true\n"),
				"sub/c.yml":        mc("50-c", "master", "  osImageURL: quay.io/x@sha256:1\n"),
				".git/x.yaml":      "not: [valid",
				".github/ci.yaml":  "on: push",
				"README.md":        "# hi",
				"sub/.hidden.yaml": "bad: [",
			},
			check: func(t *testing.T, r *Repo) {
				if len(r.MachineConfigs) != 3 || r.MachineConfigs[2].File != "sub/c.yml" || r.MachineConfigs[1].Doc != 1 {
					t.Fatalf("got %+v", r.MachineConfigs)
				}
				if len(r.Pools) != 2 || r.Pools[0].Object.Name != "master" || r.Pools[0].File != "" {
					t.Fatalf("default pools: %+v", r.Pools)
				}
			}},
		{name: "kind List and octal modes",
			files: map[string]string{"l.yaml": "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(mc("50-a", "worker", "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n      - path: /etc/a\n        mode: 0644\n        contents: {source: 'data:,a'}\n"), "\n", "\n  ")},
			check: func(t *testing.T, r *Repo) {
				if len(r.MachineConfigs) != 1 || *r.MachineConfigs[0].Object.Ignition.Storage.Files[0].Mode != 0o644 || r.MachineConfigs[0].Item != 0 {
					t.Fatalf("got %+v", r.MachineConfigs)
				}
			}},
		{name: "ignition 2.2 converted",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  config:\n    ignition: {version: 2.2.0}\n    storage:\n      files:\n      - filesystem: root\n        path: /etc/a\n        mode: 0600\n        contents: {source: 'data:,a', verification: {}}\n    systemd:\n      units:\n      - name: a.service\n        enabled: true\n        contents: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\"\n")},
			check: func(t *testing.T, r *Repo) {
				cfg := r.MachineConfigs[0].Object.Ignition.Config()
				if cfg.Ignition.Version != "3.5.0" || cfg.Storage.Files[0].Path != "/etc/a" || *cfg.Storage.Files[0].Mode != 0o600 || cfg.Systemd.Units[0].Name != "a.service" {
					t.Fatalf("got %+v", cfg)
				}
			}},
		{name: "unknown keys are warnings with field path",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  config:\n    ignition: {version: 3.2.0}\n    stroage: {}\n    systemd:\n      units:\n      - {name: a.service, masked: true}\n  bogus: 1\n") + "\nstatus: {whatever: 1}\n"},
			want:  []string{"a.yaml: spec.bogus: warning: unknown field", "a.yaml: spec.config.stroage: warning: unused key", "a.yaml: spec.config.systemd.units[0].masked: warning: unused key"}},
		{name: "unknown keys in 2.2 are warnings",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  config:\n    ignition: {version: 2.2.0}\n    storage: {filez: []}\n")},
			want:  []string{"a.yaml: spec.config.storage.filez: warning: unused key"}},
		{name: "strict turns warnings into errors",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  config:\n    ignition: {version: 3.2.0}\n    stroage: {}\n"), "k.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"},
			opts:  LoadOptions{Strict: true},
			want:  []string{"a.yaml: spec.config.stroage: unused key", "k.yaml: kustomize.config.k8s.io/v1beta1 Kustomization is not a kind"}},
		{name: "foreign yaml is a warning, unknown openshift kinds are errors",
			files: map[string]string{
				"k.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
				"m.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigNode\nmetadata: {name: x}\n",
				"o.yaml": "apiVersion: operator.openshift.io/v1\nkind: Network\nmetadata: {name: x}\n",
				"c.yaml": "apiVersion: config.openshift.io/v1\nkind: Proxy\nmetadata: {name: x}\n",
				"v.yaml": "apiVersion: machineconfiguration.openshift.io/v2\nkind: MachineConfig\nmetadata: {name: x}\n",
			},
			want: []string{"c.yaml: kind: unknown kind Proxy", "k.yaml: warning: kustomize", "m.yaml: kind: unknown kind MachineConfigNode", "o.yaml: kind: unknown kind Network", "v.yaml: apiVersion: unsupported version"}},
		{name: "yaml syntax error names file and line",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  fips: true\n") + "\n---\napiVersion: v1\nkind: x\n  name: cluster\n"},
			want:  []string{"a.yaml: invalid YAML: yaml: line 13:"}},
		{name: "type errors",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  kernelArguments: nosmt\n"), "b.yaml": mc("50-b", "worker", "  fips: \"yes\"\n")},
			want:  []string{"a.yaml: spec.kernelArguments: wrong type: got string, want a list", "b.yaml: spec.fips: wrong type: got string, want a boolean"}},
		// An unbalanced quote is fine: MCO's daemon lets it run to the end.
		{name: "missing names, bad labels, bad kernel type, unknown extension",
			files: map[string]string{"a.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  labels: {\"bad key!\": x}\nspec:\n  kernelType: rt\n  kernelArguments: ['a=\"b c']\n  extensions: [wasm-typo]\n"},
			want:  []string{"a.yaml: metadata.name: missing", "a.yaml: metadata.labels: invalid label key", "a.yaml: spec.kernelType:", "a.yaml: spec.extensions: invalid extensions found: [wasm-typo]"}},
		{name: "ignition errors",
			files: map[string]string{
				"a.yaml": mc("50-a", "worker", "  config:\n    storage: {}\n"),
				"b.yaml": mc("50-b", "worker", "  config:\n    ignition: {version: 3.2.0}\n    systemd:\n      units:\n      - contents: x\n"),
				"c.yaml": mc("50-c", "worker", "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n      - path: /etc/a\n        contents: {inline: x}\n"),
				"d.yaml": mc("50-d", "worker", "  config:\n    ignition: {version: 2.4.0}\n"),
				"e.yaml": mc("50-e", "worker", "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n      - {path: /usr/bin/x, contents: {source: 'https://x/y'}, mode: 4095}\n"),
			},
			want: []string{"a.yaml: spec.config.ignition.version: missing", "b.yaml: spec.config.systemd.units[0].name", "c.yaml: spec.config.storage.files[0].contents.inline: warning", "c.yaml: spec.config.storage.files[0].overwrite: overwrite must be false", "d.yaml: spec.config.ignition.version: spec 2.4.0 is not supported",
				"e.yaml: spec.config.storage.files[0].mode: warning: setuid", "e.yaml: spec.config.storage.files[0].path:", "e.yaml: spec.config.storage.files[0].mode:", "e.yaml: spec.config.storage.files[0].contents.source: remote"}},
		{name: "duplicate names",
			files: map[string]string{"a.yaml": mc("50-a", "worker", "  fips: true\n"), "b.yaml": mc("50-a", "worker", "  fips: false\n"), "p1.yaml": pool("infra", workerInfraSel), "p2.yaml": pool("infra", workerInfraSel)},
			want:  []string{"b.yaml: metadata.name: duplicate MachineConfig name \"50-a\" (also in a.yaml)", "p2.yaml: metadata.name: duplicate MachineConfigPool name \"infra\" (also in p1.yaml)"}},
		{name: "pool rules",
			files: map[string]string{
				"ok.yaml":  pool("infra", workerInfraSel+"  maxUnavailable: 50%\n"),
				"sel.yaml": pool("etcd", "  machineConfigSelector:\n    matchLabels: {machineconfiguration.openshift.io/role: etcd}\n"),
				"exp.yaml": pool("bad-op", "  machineConfigSelector:\n    matchExpressions:\n    - {key: machineconfiguration.openshift.io/role, operator: Among, values: [worker]}\n"),
				"mu.yaml":  pool("mu", workerInfraSel+"  maxUnavailable: lots\n"),
				"neg.yaml": pool("neg", workerInfraSel+"  maxUnavailable: -1\n"),
				"pct.yaml": pool("pct", workerInfraSel+"  maxUnavailable: 150%\n"),
				"br.yaml":  "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: br\n  annotations: {stoker.dev/source-branch: 'a..b', stoker.dev/drift: fix, stoker.dev/max-failed-percent: '120%'}\nspec:\n" + workerInfraSel,
				"nl.yaml":  pool("Bad_Name", workerInfraSel),
				"ns.yaml":  pool("ns", workerInfraSel+"  nodeSelector:\n    matchLabels: {\"a b\": x}\n"),
				"m.yaml":   pool("master", "  machineConfigSelector:\n    matchLabels: {machineconfiguration.openshift.io/role: master}\n"),
				"win.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: win\n  annotations: {stoker.dev/maintenance-window: '0 2 * * 8', stoker.dev/maintenance-window-time-zone: Europe/Nowhere}\nspec:\n" + workerInfraSel,
			},
			want: []string{"br.yaml: metadata.annotations[stoker.dev/source-branch]", "br.yaml: metadata.annotations[stoker.dev/drift]", "br.yaml: metadata.annotations[stoker.dev/max-failed-percent]", "exp.yaml: spec.machineConfigSelector.matchExpressions[0].operator", "exp.yaml: spec.machineConfigSelector: custom pool", "mu.yaml: spec.maxUnavailable", "neg.yaml: spec.maxUnavailable", "nl.yaml: metadata.name", "nl.yaml: metadata.name: pool name", "ns.yaml: spec.nodeSelector.matchLabels", "pct.yaml: spec.maxUnavailable", "sel.yaml: spec.machineConfigSelector: custom pool \"etcd\"", "win.yaml: metadata.annotations[stoker.dev/maintenance-window]: \"0 2 * * 8\" is not a cron schedule", "win.yaml: metadata.annotations[stoker.dev/maintenance-window-duration]: required", "win.yaml: metadata.annotations[stoker.dev/maintenance-window-time-zone]: \"Europe/Nowhere\" is not an IANA time zone"}},
		{name: "disruption policy rules",
			files: map[string]string{
				"ok.yaml": "apiVersion: operator.openshift.io/v1\nkind: MachineConfiguration\nmetadata: {name: cluster, namespace: openshift-machine-config-operator}\nspec:\n  logLevel: Normal\n  nodeDisruptionPolicy:\n    files:\n    - path: /etc/a\n      actions: [{type: Restart, restart: {serviceName: a.service}}]\n    units:\n    - name: b.service\n      actions: [{type: DaemonReload}, {type: Reload, reload: {serviceName: b.service}}]\n    sshkey: {actions: [{type: None}]}\nstatus: {nodeDisruptionPolicyStatus: {clusterPolicies: {files: [{path: /x, actions: [{type: Special}]}]}}}\n",
			},
			check: func(t *testing.T, r *Repo) {
				p := r.DisruptionPolicy()
				if p == nil || p.Files[0].Actions[0].Restart.ServiceName != "a.service" || p.SSHKey.Actions[0].Type != api.ActionNone {
					t.Fatalf("got %+v", p)
				}
			}},
		{name: "disruption policy errors",
			files: map[string]string{
				"a.yaml": "apiVersion: operator.openshift.io/v1\nkind: MachineConfiguration\nmetadata: {name: cluster}\nspec:\n  nodeDisruptionPolicy:\n    files:\n    - actions: [{type: Restart}]\n    - path: /etc/b\n      actions: [{type: Reboot}, {type: None}]\n    units:\n    - name: x.service\n      actions: [{type: Special}, {type: Reload, restart: {serviceName: x.service}}]\n",
				"b.yaml": "apiVersion: operator.openshift.io/v1\nkind: MachineConfiguration\nmetadata: {name: other}\nspec: {}\n",
			},
			want: []string{"a.yaml: spec.nodeDisruptionPolicy.files[0].path: missing", "files[0].actions[0].restart: required", "files[1].actions[0].type: Reboot must be the only", "files[1].actions[1].type: None must be the only", "units[0].actions[0].type: unknown action \"Special\"", "units[0].actions[1].reload: required", "units[0].actions[1].restart: only allowed", "b.yaml: metadata.name: a MachineConfiguration must be named \"cluster\""}},
		{name: "generating kinds load with MCO's validation",
			files: map[string]string{
				"k.yaml":    "apiVersion: machineconfiguration.openshift.io/v1\nkind: KubeletConfig\nmetadata: {name: k}\nspec:\n  machineConfigPoolSelector: {matchLabels: {a: b}}\n  kubeletConfig: {maxPods: 500, failSwapOn: false, cgroupDriver: systemd, clusterDNS: [1.1.1.1], clusterDomain: x, featureGates: {A: true}}\n",
				"c.yaml":    "apiVersion: machineconfiguration.openshift.io/v1\nkind: ContainerRuntimeConfig\nmetadata: {name: c}\nspec:\n  containerRuntimeConfig: {pidsLimit: 5, logLevel: loud, defaultRuntime: kata}\n",
				"i.yaml":    "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: i}\nspec:\n  imageDigestMirrors: [{source: a.io/x, mirrors: ['https://b.io/x'], mirrorSourcePolicy: Never}]\n",
				"t.yaml":    "apiVersion: config.openshift.io/v1\nkind: ImageTagMirrorSet\nmetadata: {name: t}\nspec:\n  imageTagMirrors: [{source: a.io/x, mirrors: [b.io/x]}]\n",
				"icsp.yaml": "apiVersion: operator.openshift.io/v1alpha1\nkind: ImageContentSourcePolicy\nmetadata: {name: p}\nspec:\n  repositoryDigestMirrors: [{source: a.io/x, mirrors: [b.io:5000/x]}]\n",
			},
			want: []string{"c.yaml: spec.containerRuntimeConfig.pidsLimit", "c.yaml: spec.containerRuntimeConfig.logLevel", "c.yaml: spec.containerRuntimeConfig.defaultRuntime",
				"i.yaml: spec.imageDigestMirrors[0].mirrorSourcePolicy", "i.yaml: spec.imageDigestMirrors[0].mirrors[0]",
				"k.yaml: spec.kubeletConfig.cgroupDriver", "k.yaml: spec.kubeletConfig.clusterDNS", "k.yaml: spec.kubeletConfig.clusterDomain", "k.yaml: spec.kubeletConfig.featureGates", "k.yaml: spec.kubeletConfig.failSwapOn"}},
		{name: "user-defined master and worker replace the defaults; opt out of defaults",
			files: map[string]string{"p.yaml": pool("worker", "  machineConfigSelector:\n    matchLabels: {machineconfiguration.openshift.io/role: worker}\n  paused: true\n")},
			opts:  LoadOptions{NoDefaultPools: true},
			check: func(t *testing.T, r *Repo) {
				if len(r.Pools) != 1 || !r.Pools[0].Object.Spec.Paused || r.Pools[0].File != "p.yaml" {
					t.Fatalf("got %+v", r.Pools)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ps := load(t, tc.files, tc.opts)
			sortProblems(ps)
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(tc.want), lines(ps))
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i].String(), w)
				}
			}
			if tc.check != nil {
				if len(ps.Errors()) > 0 {
					t.Fatalf("unexpected errors:\n%s", lines(ps))
				}
				tc.check(t, r)
			}
		})
	}
}

func lines(ps api.Problems) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// sortProblems orders by file only (stable), so expectations follow the
// order problems are found within a file.
func sortProblems(ps api.Problems) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].File < ps[j-1].File; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}
