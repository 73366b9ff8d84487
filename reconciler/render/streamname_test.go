package render

import (
	"bytes"
	"encoding/json"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// TestStreamNameMatchesName holds the name RenderPool streams the config
// into (streamName) to Name, which hashes json.Marshal's encoding.
func TestStreamNameMatchesName(t *testing.T) {
	fsys, _ := realisticRepo()
	repo, _ := Load(fsys, ".", LoadOptions{})
	res, _ := RenderAll(repo, RenderOptions{})
	for _, p := range res.Pools {
		want, _ := Name(p.Pool.Object.Name, p.Rendered)
		if want != p.Rendered.Name {
			t.Fatal(want, p.Rendered.Name)
		}
	}
	if len(res.Pools) != 10 {
		t.Fatalf("%d pools rendered", len(res.Pools))
	}
}

// TestEncodeConfigMatchesMarshal holds encodeConfig, which streams a
// config entry by entry, to json.Marshal's bytes: empty lists, only files,
// only units, characters json escapes, and every config of the corpus-like
// realistic repo.
func TestEncodeConfigMatchesMarshal(t *testing.T) {
	s := func(v string) *string { return &v }
	on := true
	mode := 0o644
	cfgs := map[string]ign3types.Config{
		"empty": emptyIgnition(),
		"zero":  {},
		"files only": {Storage: ign3types.Storage{Files: []ign3types.File{
			{Node: ign3types.Node{Path: "/etc/a<&>"}, FileEmbedded1: ign3types.FileEmbedded1{Mode: &mode, Contents: ign3types.Resource{Source: s("data:,<script>\u2028é")}}},
			{Node: ign3types.Node{Path: "/etc/b", Overwrite: &on}},
		}}},
		"units only": {Systemd: ign3types.Systemd{Units: []ign3types.Unit{{Name: "a.service", Contents: s("[Unit]\n\"x\"")}, {Name: "b.service", Enabled: &on}}}},
		// The unit stand-in's list encoding appears twice: encoded whole.
		"stand-in clash": {
			Passwd:  ign3types.Passwd{Users: []ign3types.PasswdUser{{Name: unitMarker.Name}}},
			Systemd: ign3types.Systemd{Units: []ign3types.Unit{{Name: "a.service"}}},
		},
		"everything": {
			Ignition: ign3types.Ignition{Version: api.IgnitionVersion},
			Passwd:   ign3types.Passwd{Users: []ign3types.PasswdUser{{Name: "core", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAA"}}}},
			Storage: ign3types.Storage{
				Directories: []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/d"}}},
				Files:       []ign3types.File{{Node: ign3types.Node{Path: "/etc/f"}}},
				Links:       []ign3types.Link{{Node: ign3types.Node{Path: "/etc/l"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: s("/etc/f")}}},
			},
			Systemd: ign3types.Systemd{Units: []ign3types.Unit{{Name: "u.service", Dropins: []ign3types.Dropin{{Name: "10.conf", Contents: s("[Service]")}}}}},
		},
	}
	fsys, _ := realisticRepo()
	repo, _ := Load(fsys, ".", LoadOptions{})
	res, _ := RenderAll(repo, RenderOptions{})
	for _, p := range res.Pools {
		cfgs["pool "+p.Pool.Object.Name] = p.Rendered.Config
	}
	for name, cfg := range cfgs {
		want, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := encodeConfig(&got, &cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: encodeConfig gives\n%s\nwant\n%s", name, got.Bytes(), want)
		}
	}
}
