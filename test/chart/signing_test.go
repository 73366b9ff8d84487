package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestTemplateSigning: the signing values mount the trust root and the
// hub's key from Secrets into the hub only, the hub's public keys from a
// ConfigMap into hub and agents, and pass the matching flags.
func TestTemplateSigning(t *testing.T) {
	pubs := []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHub2 hub-2", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHub1 hub-1"}
	objs, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL, "signing.trustRoot.existingSecret=fleet-trust",
		"signing.trustRoot.keys={allowed_signers,reviewers.asc}", "signing.hubKey.existingSecret=fleet-hub-key",
		"signing.hubPublicKeys[0]="+pubs[0], "signing.hubPublicKeys[1]="+pubs[1], "signing.requireSignedReports=true", "signing.reportKey=report-key")
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	dep := typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub")
	ds := typed[appsv1.DaemonSet](t, objs, "DaemonSet/"+fullname+"-agent")
	cm := typed[corev1.ConfigMap](t, objs, "ConfigMap/"+fullname+"-hub-public-keys")
	hub, agent := dep.Spec.Template.Spec.Containers[0], ds.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--trust-root=/etc/stoker/trust-root/allowed_signers", "--trust-root=/etc/stoker/trust-root/reviewers.asc",
		"--sign-key=/etc/stoker/hub-key/signing-key", "--trust-hub-key=/etc/stoker/hub-public-keys/hub.pub", "--require-signed-reports"} {
		if !slices.Contains(hub.Args, a) {
			t.Errorf("hub args %v lack %s", hub.Args, a)
		}
	}
	for _, a := range []string{"--trust-hub-key=/etc/stoker/hub-public-keys/hub.pub", "--sign-key=/var/lib/stoker/report-key"} {
		if !slices.Contains(agent.Args, a) {
			t.Errorf("agent args %v lack %s", agent.Args, a)
		}
	}
	for _, p := range pubs {
		if !slices.Contains(strings.Split(cm.Data["hub.pub"], "\n"), p) {
			t.Errorf("ConfigMap hub.pub lacks %q:\n%s", p, cm.Data["hub.pub"])
		}
	}
	secretOf := func(vols []corev1.Volume) map[string]string {
		out := map[string]string{}
		for _, v := range vols {
			if v.Secret != nil {
				out[v.Name] = v.Secret.SecretName
			}
		}
		return out
	}
	hubSecrets, agentSecrets := secretOf(dep.Spec.Template.Spec.Volumes), secretOf(ds.Spec.Template.Spec.Volumes)
	if hubSecrets["trust-root"] != "fleet-trust" || hubSecrets["hub-key"] != "fleet-hub-key" {
		t.Errorf("hub secret volumes %v", hubSecrets)
	}
	for name, s := range agentSecrets {
		if s == "fleet-hub-key" || s == "fleet-trust" {
			t.Errorf("agent mounts the hub's secret %s as %s", s, name)
		}
	}
	objs, err = render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objs["ConfigMap/"+fullname+"-hub-public-keys"]; ok {
		t.Error("hub public keys ConfigMap rendered without signing values")
	}
	hub = typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub").Spec.Template.Spec.Containers[0]
	for _, a := range hub.Args {
		if strings.Contains(a, "trust") || strings.Contains(a, "sign") {
			t.Errorf("unsigned install passes %s", a)
		}
	}
}
