package api

import (
	"strings"
	"testing"
)

func TestValidateNodeName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" valid; else a substring of the error
	}{
		{"n1", ""},
		{"worker-0.example.com", ""},
		{"ip-10-0-1-7.ec2.internal", ""},
		{"my node", "DNS-1123"},
		{"../evil", "DNS-1123"},
		{"a/b", "DNS-1123"},
		{"Node-1", "DNS-1123"},
		{"-x", "DNS-1123"},
		{"", "empty"},
		{strings.Repeat("a", 254), "DNS-1123"},
		{"node.lock", "Git branch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateNodeName(tc.name)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ValidateNodeName(%q) = %v, want nil", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateNodeName(%q) = %v, want an error saying %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestValidateLabels(t *testing.T) {
	good := map[string]string{"node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "eu-1a", "app": "x_y.z"}
	if err := ValidateLabels(good); err != nil {
		t.Fatalf("ValidateLabels(%v) = %v", good, err)
	}
	err := ValidateLabels(map[string]string{"bad key": "v", "ok": "bad value!", "a/b/c": "", "x": strings.Repeat("v", 64)})
	if err == nil {
		t.Fatal("bad labels accepted")
	}
	for _, want := range []string{`label key "bad key"`, `label ok value "bad value!"`, `label key "a/b/c"`, "label x value", "63"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
