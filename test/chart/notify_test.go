package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestTemplateNotifications: each receiver's Secret is mounted read-only
// as <--notify-secrets-dir>/<secretRef>/, the layout the hub reads
// (url, token, hmac-key); without receivers the hub gets no flag.
func TestTemplateNotifications(t *testing.T) {
	objs, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL,
		"notifications.receivers[0].secretRef=ops-webhook", "notifications.receivers[0].existingSecret=stoker-notify-ops",
		"notifications.receivers[1].secretRef=slack-fleet", "notifications.receivers[1].existingSecret=stoker-notify-slack")
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	dep := typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub")
	hub := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(hub.Args, "--notify-secrets-dir=/etc/stoker/notify") {
		t.Errorf("hub args %v lack --notify-secrets-dir=/etc/stoker/notify", hub.Args)
	}
	secrets := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets[v.Name] = v.Secret.SecretName
		}
	}
	for want, secret := range map[string]string{"/etc/stoker/notify/ops-webhook": "stoker-notify-ops", "/etc/stoker/notify/slack-fleet": "stoker-notify-slack"} {
		found := false
		for _, m := range hub.VolumeMounts {
			if m.MountPath == want && m.ReadOnly && secrets[m.Name] == secret {
				found = true
			}
		}
		if !found {
			t.Errorf("hub does not mount Secret %s read-only at %s: %+v", secret, want, hub.VolumeMounts)
		}
	}

	objs, err = render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL)
	if err != nil {
		t.Fatal(err)
	}
	hub = typed[appsv1.Deployment](t, objs, "Deployment/"+fullname+"-hub").Spec.Template.Spec.Containers[0]
	for _, a := range hub.Args {
		if strings.HasPrefix(a, "--notify") {
			t.Errorf("hub without receivers has %s", a)
		}
	}
	if _, err := render(t, "git.url="+gitURL, "git.reportsRepo="+reportsURL, "notifications.receivers[0].secretRef=Bad_Name", "notifications.receivers[0].existingSecret=s"); err == nil {
		t.Error("helm template accepted a secretRef that is no DNS label")
	}
}
