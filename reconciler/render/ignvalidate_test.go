package render

import (
	"encoding/json"
	"reflect"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/coreos/ignition/v2/config/validate"

	"stoker.dev/stoker/api"
)

// TestValidateIgnitionConfigMatchesIgnition holds api.ValidateIgnitionConfig
// (Ignition's validators in one walk) to Ignition's own
// validate.ValidateWithContext(cfg, nil): the same report, entry by entry
// in the same order, on every config of the corpus (valid and invalid) and
// of the MCO conformance cases, and on configs with duplicates and invalid
// entries in several lists.
func TestValidateIgnitionConfigMatchesIgnition(t *testing.T) {
	var cfgs []ign3types.Config
	for _, raw := range machineConfigRaws(t) {
		var cfg ign3types.Config
		if json.Unmarshal(raw, &cfg) == nil {
			// As written, and at the version Stoker validates it.
			cfgs = append(cfgs, cfg)
			cfg.Ignition.Version = api.IgnitionVersion
			cfgs = append(cfgs, cfg)
		}
	}
	var dup ign3types.Config
	if err := json.Unmarshal([]byte(`{"ignition":{"version":"3.5.0"},
		"storage":{"files":[{"path":"/etc/a"},{"path":"/etc/a","mode":-1},{"path":"rel"}],
		"links":[{"path":"/etc/a"},{"path":"/etc/l"}],"directories":[{"path":"/etc/l"},{"path":"/etc/d","mode":99999}]},
		"systemd":{"units":[{"name":"a.service","dropins":[{"name":"x.conf"},{"name":"x.conf"}]},{"name":"a.service"},{"name":"bad"}]},
		"passwd":{"users":[{"name":"core"},{"name":"core"}],"groups":[{"name":"g"},{"name":"g"}]}}`), &dup); err != nil {
		t.Fatal(err)
	}
	// Instantiated units: Ignition warns about an enabled foo@x.service
	// whose foo@.service has no [Install] section (Systemd.Validate, which
	// ValidateIgnitionConfig skips when no unit name has an "@").
	var inst ign3types.Config
	if err := json.Unmarshal([]byte(`{"ignition":{"version":"3.5.0"},"systemd":{"units":[
		{"name":"a@.service","contents":"[Service]\nExecStart=/bin/true\n"},{"name":"a@x.service","enabled":true},
		{"name":"b@.service","contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"},{"name":"b@y.service","enabled":true},
		{"name":"c@z.service","enabled":true},{"name":"d.service","enabled":true}]}}`), &inst); err != nil {
		t.Fatal(err)
	}
	if r := validate.ValidateWithContext(inst, nil); len(r.Entries) == 0 {
		t.Fatal("no warning for an instantiated unit without [Install]: the case tests nothing")
	}
	cfgs = append(cfgs, inst)
	cfgs = append(cfgs, dup, ign3types.Config{})
	dup.Ignition.Version = api.IgnitionVersion
	cfgs = append(cfgs, dup)
	errs, ok := 0, 0
	for _, cfg := range cfgs {
		want := validate.ValidateWithContext(cfg, nil)
		got := api.ValidateIgnitionConfig(cfg)
		if !reflect.DeepEqual(want, got) {
			b, _ := json.Marshal(cfg)
			t.Errorf("reports differ on %s:\nIgnition %v\nStoker   %v", b, want, got)
		}
		if want.IsFatal() {
			errs++
		} else {
			ok++
		}
	}
	if ok < 40 || errs < 40 {
		t.Fatalf("only %d accepted and %d refused configs compared", ok, errs)
	}
	t.Logf("%d accepted and %d refused configs compared", ok, errs)
}
