package nspawn

import (
	"regexp"
	"strings"
	"testing"
)

// validHost is what systemd-nspawn accepts for --machine (a host name).
var validHost = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func TestMachineName(t *testing.T) {
	tests := []struct {
		name, testName, prefix string
	}{
		{"plain", "TestBoot", "testboot-"},
		{"subtest", "TestFleet/worker_0", "testfleet-worker-0-"},
		{"only symbols", "//__", "node-"},
		{"long", "Test" + strings.Repeat("Long", 30), "testlong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := machineName(tt.testName), machineName(tt.testName)
			if !strings.HasPrefix(a, tt.prefix) {
				t.Errorf("machineName(%q) = %q, want prefix %q", tt.testName, a, tt.prefix)
			}
			if !validHost.MatchString(a) || len(a) > 64 {
				t.Errorf("machineName(%q) = %q: not a valid machine name", tt.testName, a)
			}
			if a == b {
				t.Errorf("machineName(%q) twice = %q both times, want unique names", tt.testName, a)
			}
		})
	}
}
