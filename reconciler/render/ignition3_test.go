package render

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	"sigs.k8s.io/yaml"
)

// TestParseIgnition3MatchesIgnition holds parseIgnition3 (one decode into
// the 3.5 types, one validation) to Ignition's ParseCompatibleVersion (a
// parse and validation at the config's own version, then translations up
// to 3.5) on every spec 3 config of the corpus and of the MCO conformance
// cases: the same config when Ignition accepts it, an error when it does
// not.
func TestParseIgnition3MatchesIgnition(t *testing.T) {
	raws := machineConfigRaws(t)
	n := 0
	for _, raw := range raws {
		var probe struct {
			Ignition struct{ Version string } `json:"ignition"`
		}
		if json.Unmarshal(raw, &probe) != nil || len(probe.Ignition.Version) == 0 || probe.Ignition.Version[0] != '3' {
			continue
		}
		n++
		want, _, werr := ign3.ParseCompatibleVersion(raw)
		got, ps := ParseIgnition(raw)
		if werr != nil {
			if ps.Err() == nil {
				t.Errorf("Ignition refuses, parseIgnition3 accepts:\n%s", raw)
			}
			continue
		}
		if err := ps.Err(); err != nil {
			t.Errorf("Ignition accepts, parseIgnition3 refuses (%v):\n%s", err, raw)
			continue
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("configs differ:\nIgnition %s\nStoker   %s", a, b)
		}
	}
	if n < 20 {
		t.Fatalf("only %d spec 3 configs compared", n)
	}
	t.Logf("%d spec 3 configs compared", n)
}

// machineConfigRaws returns spec.config of every MachineConfig in the
// corpus (valid, then invalid) and in the MCO conformance cases, as
// written: the configs the Ignition equivalence tests run on.
func machineConfigRaws(t *testing.T) []json.RawMessage {
	t.Helper()
	var raws []json.RawMessage
	collect := func(data []byte) {
		for _, doc := range splitDocuments(data) {
			js, err := yaml.YAMLToJSON(doc.data)
			if err != nil {
				continue
			}
			var obj struct {
				Kind string `json:"kind"`
				Spec struct {
					Config json.RawMessage `json:"config"`
				} `json:"spec"`
			}
			if json.Unmarshal(js, &obj) == nil && obj.Kind == "MachineConfig" && len(obj.Spec.Config) > 0 {
				raws = append(raws, obj.Spec.Config)
			}
		}
	}
	for _, sub := range []string{"valid", "invalid"} {
		for _, data := range corpusFiles(t, sub) {
			collect(data)
		}
	}
	_ = filepath.WalkDir(conformanceDir(t), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".yaml" {
			if b, err := os.ReadFile(p); err == nil {
				collect(b)
			}
		}
		return nil
	})
	return raws
}
