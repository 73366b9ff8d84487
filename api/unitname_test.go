package api

import (
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// TestValidUnitName follows systemd's unit_name_is_valid (and refuses a
// leading "-", beyond MCO: MCO checks only the suffix, through
// Ignition's Unit.Validate).
func TestValidUnitName(t *testing.T) {
	valid := []string{"chronyd.service", "getty@.service", "getty@tty1.service", "var-lib.mount",
		`dev-disk-by\x2dlabel-root.device`, "a:b_c.d.timer", "x@y@z.socket", "kubelet.slice",
		strings.Repeat("a", 247) + ".service"}
	for _, n := range valid {
		if err := ValidUnitName(n); err != nil {
			t.Errorf("ValidUnitName(%q) = %v, want valid", n, err)
		}
	}
	invalid := []string{"", "-h.service", "--now.service", "-.mount", "foo", ".service", "foo.bar",
		"@foo.service", "foo bar.service", "foo/bar.service", "../x.service", "a\x00.service",
		"ü.service", strings.Repeat("a", 248) + ".service"}
	for _, n := range invalid {
		if err := ValidUnitName(n); err == nil {
			t.Errorf("ValidUnitName(%q) = nil, want an error", n)
		}
	}
}

func TestValidateIgnitionRefusesBadUnitName(t *testing.T) {
	var cfg ign3types.Config
	cfg.Systemd.Units = []ign3types.Unit{{Name: "ok.service"}, {Name: "-H.service"}}
	ps := ValidateIgnition(cfg, "spec.config", DefaultValidationOptions()).Errors()
	if len(ps) != 1 || ps[0].Field != "spec.config.systemd.units[1].name" || !strings.Contains(ps[0].Message, `"-"`) {
		t.Fatalf("problems = %+v, want one at spec.config.systemd.units[1].name", ps)
	}
}
