package chart_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops/kubedrain"
	"stoker.dev/stoker/reconciler/kubeinventory"
	"stoker.dev/stoker/reconciler/leaderelection"
	"stoker.dev/stoker/test/kubeapi"
)

const (
	chartDir   = "../../charts/stoker"
	helmVer    = "v3.19.0"
	gitURL     = "ssh://git@git.example.invalid/fleet.git"
	reportsURL = "ssh://git@git.example.invalid/fleet-reports.git"
	release    = "rel"
	releaseNS  = "stoker-system"
	fullname   = "rel-stoker"
	agentSA    = fullname + "-agent"
	hubSA      = fullname + "-hub"
	gitSecret  = "fleet-git"
	hookSecret = "fleet-webhook"
)

func helm(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "stoker", "helm-"+helmVer, "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "helm not found on PATH or in ~/.cache/stoker (run hack/helm.sh)"
	if kubeapi.Required() {
		t.Fatalf("%s and %s is set", msg, kubeapi.RequireEnv)
	}
	t.Skipf("skipping: %s; set %s=1 to make this a failure", msg, kubeapi.RequireEnv)
	return ""
}

func runHelm(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     []string
		wantErr string
	}{
		{name: "defaults", set: []string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL}},
		{name: "ssh", set: []string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL, "git.credentials.type=ssh", "git.credentials.existingSecret=" + gitSecret}},
		{name: "bad credentials type", set: []string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL, "git.credentials.type=password"}, wantErr: "value must be one of"},
		{name: "bad interval", set: []string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL, "git.interval=soon"}, wantErr: "interval"},
		{name: "unknown key", set: []string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL, "hub.replica=3"}, wantErr: "replica"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := runHelm(t, nil, args...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("helm lint: %v\n%s", err, out)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("helm lint passed, want a failure mentioning %q\n%s", tc.wantErr, out)
			case tc.wantErr != "" && !strings.Contains(out, tc.wantErr):
				t.Errorf("helm lint output does not mention %q:\n%s", tc.wantErr, out)
			}
		})
	}
}

// render runs helm template and decodes the objects by kind/name.
func render(t *testing.T, set ...string) (map[string]*unstructured.Unstructured, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", releaseNS}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := runHelm(t, nil, args...)
	if err != nil {
		return nil, errors.New(out)
	}
	objs := map[string]*unstructured.Unstructured{}
	for _, doc := range strings.Split(out, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("decode rendered document: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		objs[u.GetKind()+"/"+u.GetName()] = u
	}
	return objs, nil
}

func typed[T any](t *testing.T, objs map[string]*unstructured.Unstructured, key string) *T {
	t.Helper()
	u, ok := objs[key]
	if !ok {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		t.Fatalf("%s not rendered; have %v", key, keys)
	}
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatalf("convert %s: %v", key, err)
	}
	return &v
}

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set        []string
		wantArgs   []string // in both hub and agent
		hubArgs    []string
		monitor    bool
		wantSecret string
	}{
		{
			name:     "ssh",
			set:      []string{"git.credentials.type=ssh", "git.credentials.existingSecret=" + gitSecret, "webhook.existingSecret=" + hookSecret},
			wantArgs: []string{"--git-ssh-key-file=/etc/stoker/git/ssh-privatekey", "--git-known-hosts-file=/etc/stoker/git/known_hosts"},
			hubArgs:  []string{"--webhook-secret-file=/etc/stoker/webhook/secret"}, wantSecret: gitSecret,
		},
		{
			name:     "token",
			set:      []string{"git.credentials.type=token", "git.credentials.existingSecret=" + gitSecret, "metrics.serviceMonitor.enabled=true"},
			wantArgs: []string{"--git-token-file=/etc/stoker/git/token"}, monitor: true, wantSecret: gitSecret,
		},
		{
			name:     "basic",
			set:      []string{"git.credentials.type=basic", "git.credentials.existingSecret=" + gitSecret, "git.credentials.username=fleet"},
			wantArgs: []string{"--git-username=fleet", "--git-password-file=/etc/stoker/git/password"}, wantSecret: gitSecret,
		},
		{name: "anonymous", set: []string{"git.branch=stable", "git.interval=1m"}, wantArgs: []string{"--interval=1m"}, hubArgs: []string{"--branch=stable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, append([]string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL}, tc.set...)...)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			dep := typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub")
			ds := typed[appsv1.DaemonSet](t, objs, "DaemonSet/"+fullname+"-agent")

			if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
				t.Errorf("hub replicas = %v, want 2", dep.Spec.Replicas)
			}
			hub := dep.Spec.Template.Spec.Containers[0]
			if dep.Spec.Template.Spec.ServiceAccountName != hubSA {
				t.Errorf("hub serviceAccountName = %q", dep.Spec.Template.Spec.ServiceAccountName)
			}
			wantHub := append([]string{"hub", "--repo=" + gitURL, "--in-cluster", "--listen=:8080"}, tc.hubArgs...)
			for _, a := range append(wantHub, tc.wantArgs...) {
				if !slices.Contains(hub.Args, a) {
					t.Errorf("hub args %v lack %s", hub.Args, a)
				}
			}
			// Probes that mean what they say: liveness /healthz (a replica
			// standing by passes it), readiness /readyz (not "is leader").
			if p := hub.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
				t.Errorf("hub liveness probe = %+v, want GET /healthz", p)
			}
			if p := hub.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
				t.Errorf("hub readiness probe = %+v, want GET /readyz", p)
			}
			if a := dep.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil ||
				len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
				a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
				t.Errorf("hub pods carry no anti-affinity over kubernetes.io/hostname: %+v", a)
			}
			pdb := typed[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget/"+fullname+"-hub")
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 ||
				pdb.Spec.Selector == nil || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "hub" {
				t.Errorf("hub PodDisruptionBudget = %+v, want maxUnavailable 1 over the hub pods", pdb.Spec)
			}
			if !hasFieldEnv(hub.Env, "POD_NAMESPACE", "metadata.namespace") {
				t.Errorf("hub env lacks POD_NAMESPACE from the downward API (leader election namespace): %v", hub.Env)
			}

			pod := ds.Spec.Template.Spec
			agent := pod.Containers[0]
			if pod.ServiceAccountName != agentSA {
				t.Errorf("agent serviceAccountName = %q", pod.ServiceAccountName)
			}
			// Host tools run chrooted into /host, the host's buses are
			// reached under /host/run: no host PID namespace.
			if pod.HostPID {
				t.Errorf("agent is hostPID; it needs no host PID namespace")
			}
			if agent.SecurityContext == nil || agent.SecurityContext.Privileged == nil || !*agent.SecurityContext.Privileged {
				t.Errorf("agent is not privileged")
			}
			for _, a := range append([]string{"agent", "--repo=" + gitURL, "--node=$(NODE_NAME)", "--root=/host", "--drain=kube", "--reboot=systemd", "--in-cluster"}, tc.wantArgs...) {
				if !slices.Contains(agent.Args, a) {
					t.Errorf("agent args %v lack %s", agent.Args, a)
				}
			}
			if !hasFieldEnv(agent.Env, "NODE_NAME", "spec.nodeName") {
				t.Errorf("agent env lacks NODE_NAME from spec.nodeName: %v", agent.Env)
			}
			if !slices.ContainsFunc(pod.Tolerations, func(t corev1.Toleration) bool { return t.Operator == corev1.TolerationOpExists && t.Key == "" }) {
				t.Errorf("agent does not tolerate all taints: %v", pod.Tolerations)
			}
			mounts := map[string]string{}
			for _, m := range agent.VolumeMounts {
				mounts[m.Name] = m.MountPath
			}
			hostPaths := map[string]string{}
			secrets := map[string]string{}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					hostPaths[v.Name] = v.HostPath.Path
				}
				if v.Secret != nil {
					secrets[v.Name] = v.Secret.SecretName
				}
			}
			for _, want := range []struct{ host, container string }{{"/", "/host"}, {"/run", "/host/run"}, {"/proc", "/host/proc"}, {"/var/lib/stoker", "/var/lib/stoker"}} {
				found := false
				for name, hp := range hostPaths {
					if hp == want.host && mounts[name] == want.container {
						found = true
					}
				}
				if !found {
					t.Errorf("agent does not mount host %s at %s: volumes %v, mounts %v", want.host, want.container, hostPaths, mounts)
				}
			}
			if tc.wantSecret != "" && secrets["git-credentials"] != tc.wantSecret {
				t.Errorf("agent git credentials volume = %q, want Secret %s", secrets["git-credentials"], tc.wantSecret)
			}
			if tc.wantSecret == "" && len(secrets) > 0 {
				t.Errorf("anonymous Git mounts secrets %v", secrets)
			}
			for _, c := range []corev1.Container{hub, agent} {
				for _, a := range c.Args {
					if strings.Contains(a, "BEGIN") || strings.Contains(strings.ToLower(a), "password=") {
						t.Errorf("%s passes a credential on its command line: %s", c.Name, a)
					}
				}
			}

			if _, ok := objs["ServiceMonitor/"+fullname+"-hub"]; ok != tc.monitor {
				t.Errorf("ServiceMonitor rendered = %v, want %v", ok, tc.monitor)
			}
			svc := typed[corev1.Service](t, objs, "Service/"+fullname+"-hub")
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
				t.Errorf("metrics Service ports = %v", svc.Spec.Ports)
			}
			checkNoWildcards(t, objs)
		})
	}
	if _, err := render(t); err == nil || !strings.Contains(err.Error(), "git.url is required") {
		t.Errorf("helm template without git.url = %v, want 'git.url is required'", err)
	}
	if _, err := render(t, "git.url="+gitURL); err == nil || !strings.Contains(err.Error(), "git.reportsRepo is required") {
		t.Errorf("helm template without git.reportsRepo = %v, want 'git.reportsRepo is required'", err)
	}
	if _, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL, "git.credentials.type=ssh"); err == nil || !strings.Contains(err.Error(), "existingSecret is required") {
		t.Errorf("helm template with ssh and no Secret = %v, want 'existingSecret is required'", err)
	}
}

func hasFieldEnv(env []corev1.EnvVar, name, path string) bool {
	return slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
		return e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == path
	})
}

func checkNoWildcards(t *testing.T, objs map[string]*unstructured.Unstructured) {
	t.Helper()
	roles := 0
	for key, u := range objs {
		if u.GetKind() != "ClusterRole" && u.GetKind() != "Role" {
			continue
		}
		roles++
		r := typed[rbacv1.ClusterRole](t, objs, key)
		for _, rule := range r.Rules {
			for _, s := range slices.Concat(rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames) {
				if strings.Contains(s, "*") {
					t.Errorf("%s has a wildcard rule: %+v", key, rule)
				}
			}
			for _, v := range rule.Verbs {
				if v == "escalate" || v == "bind" || v == "impersonate" {
					t.Errorf("%s grants %s", key, v)
				}
			}
		}
	}
	if roles != 3 {
		t.Errorf("rendered %d Roles/ClusterRoles, want 3 (agent, hub, hub leader election)", roles)
	}
}

// TestInstall installs the chart into a real apiserver with RBAC enforced
// and acts as its ServiceAccounts.
func TestInstall(t *testing.T) {
	helm(t)
	srv := kubeapi.Start(t)
	admin := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := srv.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	out, err := runHelm(t, []string{"KUBECONFIG=" + kubeconfig}, "install", release, chartDir,
		"--namespace", releaseNS, "--create-namespace", "--timeout", "2m",
		"--set", "git.url="+gitURL, "--set", "git.reportsRepo="+reportsURL, "--set", "git.credentials.type=ssh", "--set", "git.credentials.existingSecret="+gitSecret)
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	if !strings.Contains(out, "kubectl get nodes") {
		t.Errorf("helm install did not print NOTES.txt:\n%s", out)
	}

	// The objects are there, as rendered.
	dep, err := admin.AppsV1().Deployments(releaseNS).Get(ctx, fullname+"-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("hub Deployment: %v", err)
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("installed hub replicas = %d", *dep.Spec.Replicas)
	}
	ds, err := admin.AppsV1().DaemonSets(releaseNS).Get(ctx, fullname+"-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("agent DaemonSet: %v", err)
	}
	if c := ds.Spec.Template.Spec.Containers[0]; c.SecurityContext == nil || !*c.SecurityContext.Privileged {
		t.Errorf("installed agent is not privileged")
	}
	for _, get := range []func() error{
		func() error {
			_, err := admin.CoreV1().ServiceAccounts(releaseNS).Get(ctx, agentSA, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.CoreV1().ServiceAccounts(releaseNS).Get(ctx, hubSA, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.RbacV1().ClusterRoles().Get(ctx, fullname+"-agent", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, fullname+"-hub", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.RbacV1().RoleBindings(releaseNS).Get(ctx, fullname+"-hub-leader-election", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := admin.CoreV1().Services(releaseNS).Get(ctx, fullname+"-hub", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("installed object: %v", err)
		}
	}

	t.Run("config server", func(t *testing.T) { installConfigServer(ctx, t, admin, kubeconfig) })

	t.Run("access review", func(t *testing.T) {
		for _, tc := range []struct {
			sa      string
			attr    authorizationv1.ResourceAttributes
			allowed bool
		}{
			{agentSA, authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "default"}, true},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "node-1"}, true},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "node-1"}, true},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "get", Group: "apps", Resource: "daemonsets", Namespace: "default"}, true},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes", Name: "node-1"}, false},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: releaseNS, Name: gitSecret}, false},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "default"}, false},
			{agentSA, authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes", Subresource: "status", Name: "node-1"}, false},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, true},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, true},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: releaseNS, Name: "stoker-hub"}, true},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system", Name: "kube-controller-manager"}, false},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "patch", Group: "coordination.k8s.io", Resource: "leases", Namespace: releaseNS, Name: "stoker-hub-webhook"}, true},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "watch", Group: "coordination.k8s.io", Resource: "leases", Namespace: releaseNS, Name: "stoker-hub-webhook"}, true},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "node-1"}, false},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: releaseNS, Name: gitSecret}, false},
			{hubSA, authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "eviction", Namespace: "default"}, false},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               kubeapi.ServiceAccountUser(releaseNS, tc.sa),
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
				ResourceAttributes: &tc.attr,
			}}
			got, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if got.Status.Allowed != tc.allowed {
				t.Errorf("%s %s %s/%s %s/%s: allowed = %v, want %v (%s)", tc.sa, tc.attr.Verb, tc.attr.Group, tc.attr.Resource,
					tc.attr.Subresource, tc.attr.Name, got.Status.Allowed, tc.allowed, got.Status.Reason)
			}
		}
	})

	t.Run("agent drains and annotates as its ServiceAccount", func(t *testing.T) {
		asAgent, err := kubernetes.NewForConfig(srv.ServiceAccountConfig(releaseNS, agentSA))
		if err != nil {
			t.Fatal(err)
		}
		const node, ns = "chart-node", "chart-workload"
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app:1"}}},
		}
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Stand in for the kubelet: finish the graceful deletion the
		// eviction starts. The point is that every call the drain makes
		// is allowed to the agent.
		kctx, kcancel := context.WithCancel(ctx)
		kdone := make(chan struct{})
		defer func() { kcancel(); <-kdone }()
		go func() {
			defer close(kdone)
			zero := int64(0)
			for kctx.Err() == nil {
				if pods, err := admin.CoreV1().Pods(ns).List(kctx, metav1.ListOptions{}); err == nil {
					for _, p := range pods.Items {
						if p.DeletionTimestamp != nil {
							_ = admin.CoreV1().Pods(ns).Delete(kctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
						}
					}
				}
				select {
				case <-kctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		d := kubedrain.New(kubedrain.Options{Client: asAgent, PollInterval: 50 * time.Millisecond, AttemptTimeout: 30 * time.Second})
		cordoned, err := d.Drain(ctx, node)
		if err != nil {
			t.Fatalf("Drain as the agent: %v", err)
		}
		if !cordoned {
			t.Errorf("Drain as the agent did not cordon")
		}
		if err := (&kubedrain.Annotator{Client: asAgent}).Annotate(ctx, node, map[string]string{api.NodeStateAnnotation: "Done"}); err != nil {
			t.Errorf("Annotate as the agent: %v", err)
		}
		if err := d.Uncordon(ctx, node); err != nil {
			t.Errorf("Uncordon as the agent: %v", err)
		}
		if err := asAgent.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("agent deleting a Node = %v, want Forbidden", err)
		}
		if _, err := asAgent.CoreV1().Secrets(releaseNS).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("agent listing Secrets = %v, want Forbidden", err)
		}
	})

	t.Run("hub lists nodes and leads as its ServiceAccount", func(t *testing.T) {
		asHub, err := kubernetes.NewForConfig(srv.ServiceAccountConfig(releaseNS, hubSA))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := (&kubeinventory.Inventory{Client: asHub}).Nodes(ctx)
		if err != nil {
			t.Fatalf("inventory as the hub: %v", err)
		}
		if len(nodes) == 0 {
			t.Errorf("inventory as the hub saw no nodes")
		}
		led := false
		err = leaderelection.RunWithLeaderElection(ctx, asHub, leaderelection.LeaderOptions{Namespace: releaseNS, Identity: "hub-0", RetryPeriod: 200 * time.Millisecond},
			func(context.Context) error { led = true; return nil })
		if err != nil || !led {
			t.Errorf("leader election as the hub: led=%v err=%v", led, err)
		}
		if _, err := asHub.CoreV1().Secrets(releaseNS).Get(ctx, gitSecret, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("hub reading the Git Secret = %v, want Forbidden", err)
		}
	})
}
