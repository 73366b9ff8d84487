package chart_test

import (
	"context"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

const (
	cfgTokens = "fleet-join-tokens"
	cfgTLS    = "fleet-join-tls"
	cfgCreds  = "fleet-join-git"
	cfgPort   = 22623
)

// configServerSet enables the config server with every value set.
var configServerSet = []string{
	"configServer.enabled=true",
	"configServer.tokens.existingSecret=" + cfgTokens,
	"configServer.tls.existingSecret=" + cfgTLS,
	"configServer.agent.repo=https://git.example.invalid/fleet.git",
	"configServer.agent.statusRepo=https://git.example.invalid/status.git",
	"configServer.agent.reportsRepo=https://git.example.invalid/reports.git",
	"configServer.agent.gitUsername=joiner",
	"configServer.agent.credentials.existingSecret=" + cfgCreds,
	"configServer.agent.credentials.files.git-password-file=password",
	"configServer.agent.credentials.files.git-known-hosts-file=known_hosts",
	"configServer.agent.binary=/opt/bin/stoker",
	"configServer.agent.extraArgs={--drain=none}",
	"signing.hubPublicKeys[0]=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHub1 hub-1",
}

// TestTemplateConfigServer: with configServer enabled the hub gets the
// --config-* flags, every file they name lies on a read-only mount of the
// right Secret (or the hub-keys ConfigMap), the container has a "config"
// port and a Service of its own exposes it, apart from the metrics
// Service; disabled, nothing of it renders.
func TestTemplateConfigServer(t *testing.T) {
	objs, err := render(t, append([]string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL, "metrics.serviceMonitor.enabled=true"}, configServerSet...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	dep := typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub")
	pod := dep.Spec.Template.Spec
	hub := pod.Containers[0]
	want := []string{
		"--config-listen=:22623",
		"--config-token-dir=/etc/stoker/config-tokens",
		"--config-tls-cert=/etc/stoker/config-tls/tls.crt",
		"--config-tls-key=/etc/stoker/config-tls/tls.key",
		"--config-agent-repo=https://git.example.invalid/fleet.git",
		"--config-agent-status-repo=https://git.example.invalid/status.git",
		"--config-agent-reports-repo=https://git.example.invalid/reports.git",
		"--config-agent-git-username=joiner",
		"--config-agent-credential=git-known-hosts-file=/etc/stoker/config-agent-git/known_hosts",
		"--config-agent-credential=git-password-file=/etc/stoker/config-agent-git/password",
		"--config-agent-trust-hub-key=/etc/stoker/hub-public-keys/hub.pub",
		"--config-agent-binary=/opt/bin/stoker",
		"--config-agent-arg=--drain=none",
	}
	for _, a := range want {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v lack %s", hub.Args, a)
		}
	}
	if slices.Contains(hub.Args, "--config-insecure-http") {
		t.Errorf("hub serves the config server over plain HTTP with a TLS Secret given")
	}

	// Every file a --config-* flag names is on a read-only mount of the
	// volume it belongs to.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mountOf := func(p string) (corev1.VolumeMount, bool) {
		for _, m := range hub.VolumeMounts {
			if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
				return m, true
			}
		}
		return corev1.VolumeMount{}, false
	}
	for _, tc := range []struct {
		file, secret, configMap string
	}{
		{file: "/etc/stoker/config-tokens", secret: cfgTokens},
		{file: "/etc/stoker/config-tls/tls.crt", secret: cfgTLS},
		{file: "/etc/stoker/config-tls/tls.key", secret: cfgTLS},
		{file: "/etc/stoker/config-agent-git/password", secret: cfgCreds},
		{file: "/etc/stoker/config-agent-git/known_hosts", secret: cfgCreds},
		{file: "/etc/stoker/hub-public-keys/hub.pub", configMap: fullname + "-hub-public-keys"},
	} {
		m, ok := mountOf(tc.file)
		if !ok {
			t.Errorf("%s is on no hub mount: %v", tc.file, hub.VolumeMounts)
			continue
		}
		if !m.ReadOnly {
			t.Errorf("mount %s (%s) is not read-only", m.Name, m.MountPath)
		}
		v := vols[m.Name]
		switch {
		case tc.secret != "" && (v.Secret == nil || v.Secret.SecretName != tc.secret):
			t.Errorf("%s: volume %s = %+v, want Secret %s", tc.file, m.Name, v.VolumeSource, tc.secret)
		case tc.configMap != "" && (v.ConfigMap == nil || v.ConfigMap.Name != tc.configMap):
			t.Errorf("%s: volume %s = %+v, want ConfigMap %s", tc.file, m.Name, v.VolumeSource, tc.configMap)
		case tc.secret != "" && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0):
			t.Errorf("%s: Secret volume %s mode %v, want owner-only", tc.file, m.Name, v.Secret.DefaultMode)
		}
	}
	// A kubernetes.io/tls Secret: the flags name its tls.crt and tls.key.
	if v := vols["config-tls"]; v.Secret == nil || !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return k.Key == "tls.crt" && k.Path == "tls.crt" }) ||
		!slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return k.Key == "tls.key" && k.Path == "tls.key" }) {
		t.Errorf("config-tls volume does not project tls.crt and tls.key: %+v", v.VolumeSource)
	}

	if !slices.ContainsFunc(hub.Ports, func(p corev1.ContainerPort) bool { return p.Name == "config" && p.ContainerPort == cfgPort }) {
		t.Errorf("hub ports %v lack config:%d", hub.Ports, cfgPort)
	}
	svc := typed[corev1.Service](t, objs, "Service/"+fullname+"-hub-config")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != cfgPort || svc.Spec.Ports[0].TargetPort.String() != "config" {
		t.Errorf("config Service ports = %v, want %d -> config", svc.Spec.Ports, cfgPort)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("config Service selector %v does not select hub pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	// The token listener is not on the metrics Service, and the metrics
	// ServiceMonitor does not scrape the config Service.
	metrics := typed[corev1.Service](t, objs, "Service/"+fullname+"-hub")
	for _, p := range metrics.Spec.Ports {
		if p.Port == cfgPort || p.TargetPort.String() == "config" || p.TargetPort.IntValue() == cfgPort {
			t.Errorf("metrics Service exposes the config server: %v", metrics.Spec.Ports)
		}
	}
	mon := objs["ServiceMonitor/"+fullname+"-hub"]
	sel, _, _ := unstructured.NestedStringMap(mon.Object, "spec", "selector", "matchLabels")
	if labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v selects the config Service %v", sel, svc.Labels)
	}
	// Agents on running nodes get none of it.
	ds := typed[appsv1.DaemonSet](t, objs, "DaemonSet/"+fullname+"-agent")
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Secret != nil && slices.Contains([]string{cfgTokens, cfgTLS, cfgCreds}, v.Secret.SecretName) {
			t.Errorf("agent mounts config server Secret %s", v.Secret.SecretName)
		}
	}

	t.Run("disabled", func(t *testing.T) {
		objs, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL, "signing.hubPublicKeys[0]=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHub1 hub-1",
			"configServer.tokens.existingSecret="+cfgTokens, "configServer.tls.existingSecret="+cfgTLS)
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		if _, ok := objs["Service/"+fullname+"-hub-config"]; ok {
			t.Error("config Service rendered with configServer disabled")
		}
		checkNoConfigServer(t, typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub"))
	})

	t.Run("insecure HTTP", func(t *testing.T) {
		objs, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL, "configServer.enabled=true", "configServer.tokens.existingSecret="+cfgTokens, "configServer.insecureHTTP=true")
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		dep := typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub")
		hub := dep.Spec.Template.Spec.Containers[0]
		if !slices.Contains(hub.Args, "--config-insecure-http") || !slices.Contains(hub.Args, "--config-listen=:22623") {
			t.Errorf("hub args %v lack --config-insecure-http and --config-listen", hub.Args)
		}
		for _, a := range hub.Args {
			if strings.HasPrefix(a, "--config-tls-") || strings.HasPrefix(a, "--config-agent-") {
				t.Errorf("hub passes %s without its value set", a)
			}
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == "config-tls" || v.Name == "config-agent-git" {
				t.Errorf("volume %s rendered without its Secret", v.Name)
			}
		}
	})

	for _, tc := range []struct {
		name    string
		set     []string
		wantErr string
	}{
		{"no tokens", []string{"configServer.enabled=true", "configServer.tls.existingSecret=" + cfgTLS}, "configServer.tokens.existingSecret is required"},
		{"no TLS", []string{"configServer.enabled=true", "configServer.tokens.existingSecret=" + cfgTokens}, "configServer.tls.existingSecret is required"},
		{"credential files without Secret", []string{"configServer.enabled=true", "configServer.tokens.existingSecret=" + cfgTokens,
			"configServer.insecureHTTP=true", "configServer.agent.credentials.files.git-token-file=token"}, "configServer.agent.credentials.existingSecret is required"},
		{"port of the metrics listener", []string{"configServer.enabled=true", "configServer.tokens.existingSecret=" + cfgTokens,
			"configServer.insecureHTTP=true", "configServer.port=8080"}, "configServer.port must differ from hub.port"},
		{"unknown credential flag", []string{"configServer.agent.credentials.files.git-cookie-file=cookie"}, "git-cookie-file"},
		{"agent arg not a flag", []string{"configServer.agent.extraArgs={drain}"}, "extraArgs"},
		{"unknown key", []string{"configServer.token.existingSecret=x"}, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, append([]string{"git.url=" + gitURL, "git.reportsRepo=" + reportsURL}, tc.set...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("helm template = %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func checkNoConfigServer(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	hub := dep.Spec.Template.Spec.Containers[0]
	for _, a := range hub.Args {
		if strings.HasPrefix(a, "--config-") {
			t.Errorf("hub passes %s with configServer disabled", a)
		}
	}
	for _, p := range hub.Ports {
		if p.Name != "http" {
			t.Errorf("hub has port %s:%d with configServer disabled", p.Name, p.ContainerPort)
		}
	}
	for _, m := range hub.VolumeMounts {
		if strings.HasPrefix(m.Name, "config-") || strings.HasPrefix(path.Base(m.MountPath), "config-") {
			t.Errorf("hub mounts %s at %s with configServer disabled", m.Name, m.MountPath)
		}
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if strings.HasPrefix(v.Name, "config-") {
			t.Errorf("hub has volume %s with configServer disabled", v.Name)
		}
	}
}

// installConfigServer installs a second release with the config server
// on a NodePort into the apiserver of TestInstall: the apiserver accepts
// the objects (port names, node port range) and they are as rendered.
func installConfigServer(ctx context.Context, t *testing.T, admin kubernetes.Interface, kubeconfig string) {
	const rel, ns, name = "cfg", "stoker-cfg", "cfg-stoker"
	args := []string{"install", rel, chartDir, "--namespace", ns, "--create-namespace", "--timeout", "2m", "--set", "git.url=" + gitURL, "--set", "git.reportsRepo=" + reportsURL,
		"--set", "configServer.service.type=NodePort", "--set", "configServer.service.nodePort=30623"}
	for _, s := range configServerSet {
		args = append(args, "--set", s)
	}
	if out, err := runHelm(t, []string{"KUBECONFIG=" + kubeconfig}, args...); err != nil {
		t.Fatalf("helm install with configServer: %v\n%s", err, out)
	}
	svc, err := admin.CoreV1().Services(ns).Get(ctx, name+"-hub-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("config Service: %v", err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != cfgPort || svc.Spec.Ports[0].NodePort != 30623 || svc.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("installed config Service = %s %v, want NodePort %d -> 30623", svc.Spec.Type, svc.Spec.Ports, cfgPort)
	}
	metrics, err := admin.CoreV1().Services(ns).Get(ctx, name+"-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("metrics Service: %v", err)
	}
	if len(metrics.Spec.Ports) != 1 || metrics.Spec.Ports[0].Name != "http" {
		t.Errorf("installed metrics Service ports = %v, want http only", metrics.Spec.Ports)
	}
	dep, err := admin.AppsV1().Deployments(ns).Get(ctx, name+"-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("hub Deployment: %v", err)
	}
	hub := dep.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--config-listen=:22623", "--config-token-dir=/etc/stoker/config-tokens", "--config-tls-cert=/etc/stoker/config-tls/tls.crt"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("installed hub args %v lack %s", hub.Args, a)
		}
	}
	for _, m := range hub.VolumeMounts {
		if strings.HasPrefix(m.Name, "config-") && !m.ReadOnly {
			t.Errorf("installed hub mount %s is not read-only", m.Name)
		}
	}
}
