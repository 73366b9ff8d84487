package configserver

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/coreos/go-semver/semver"
	ign22 "github.com/coreos/ignition/config/v2_2/types"
	ign34 "github.com/coreos/ignition/v2/config/v3_4/types"
	ign35 "github.com/coreos/ignition/v2/config/v3_5/types"
)

// TestNegotiate follows MCO's detectSpecVersionFromAcceptHeader
// (pkg/server/api.go): Ignition media ranges by q, 3.x and 2.x clients,
// curl gets 2.2, unsupported Ignition versions are an error (400).
func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name, accept, want string
		err                bool
	}{
		{"ignition v2.26", "application/vnd.coreos.ignition+json;version=3.6.0, */*;q=0.1", "3.5.0", false},
		{"ignition asks 3.5", "application/vnd.coreos.ignition+json;version=3.5.0, */*;q=0.1", "3.5.0", false},
		{"ignition asks 3.4", "application/vnd.coreos.ignition+json; version=3.4.0, */*; q=0.1", "3.4.0", false},
		{"ignition v2.x asks 3.1", "application/vnd.coreos.ignition+json;version=3.1.0, */*;q=0.1", "3.1.0", false},
		{"ignition v0.x (MCO's example)", "application/vnd.coreos.ignition+json; version=2.4.0, application/vnd.coreos.ignition+json; version=1; q=0.5, */*; q=0.1", "2.2.0", false},
		{"q decides", "application/vnd.coreos.ignition+json;version=2.2.0;q=0.2, application/vnd.coreos.ignition+json;version=3.2.0;q=0.9", "3.2.0", false},
		{"curl", "*/*", "2.2.0", false},
		{"no header", "", "2.2.0", false},
		{"ignition without version", "application/vnd.coreos.ignition+json", "2.2.0", false},
		{"ignition 3.0 only", "application/vnd.coreos.ignition+json;version=3.0.0", "", true},
		{"ignition 4", "application/vnd.coreos.ignition+json;version=4.0.0", "", true},
		{"ignition 1 only", "application/vnd.coreos.ignition+json;version=1.0.0", "", true},
		{"garbage is ignored", "garbage;;, application/vnd.coreos.ignition+json;version=3.3.0", "3.3.0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Negotiate(tc.accept)
			if tc.err {
				if !errors.Is(err, ErrUnsupportedVersion) {
					t.Fatalf("Negotiate(%q) = %v, %v; want ErrUnsupportedVersion", tc.accept, got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("Negotiate(%q) = %v, %v; want %s", tc.accept, got, err, tc.want)
			}
		})
	}
}

// TestEncodeVersions translates a config with a file and a unit down to
// every version served, and the result parses as that version.
func TestEncodeVersions(t *testing.T) {
	src, mode, unit := "data:,hello", 0o644, "[Service]\nExecStart=/bin/true\n"
	cfg := ign35.Config{Ignition: ign35.Ignition{Version: "3.5.0"}}
	cfg.Storage.Files = []ign35.File{{Node: ign35.Node{Path: "/etc/hello"}, FileEmbedded1: ign35.FileEmbedded1{Mode: &mode, Contents: ign35.Resource{Source: &src}}}}
	cfg.Systemd.Units = []ign35.Unit{{Name: "x.service", Enabled: boolp(true), Contents: &unit}}
	for _, v := range []string{"3.5.0", "3.4.0", "3.3.0", "3.2.0", "3.1.0", "2.2.0"} {
		data, err := Encode(cfg, *semver.New(v))
		if err != nil {
			t.Fatalf("Encode %s: %v", v, err)
		}
		var probe struct {
			Ignition struct{ Version string }
		}
		if err := json.Unmarshal(data, &probe); err != nil || probe.Ignition.Version != v {
			t.Fatalf("Encode %s: version %q (%v): %s", v, probe.Ignition.Version, err, data)
		}
		switch v {
		case "3.4.0":
			var c ign34.Config
			if err := json.Unmarshal(data, &c); err != nil || len(c.Storage.Files) != 1 || c.Storage.Files[0].Path != "/etc/hello" {
				t.Fatalf("3.4: %v %s", err, data)
			}
		case "2.2.0":
			var c ign22.Config
			if err := json.Unmarshal(data, &c); err != nil || len(c.Storage.Files) != 1 || c.Storage.Files[0].Path != "/etc/hello" || len(c.Systemd.Units) != 1 {
				t.Fatalf("2.2: %v %s", err, data)
			}
		}
	}
}
