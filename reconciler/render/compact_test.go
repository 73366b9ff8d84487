package render

import (
	"reflect"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// TestIgnitionHeldComesBack: a config held as a Repo holds it (Ignition)
// gives back exactly the config, whatever it has besides its lists (the
// corpus and conformance configs are checked in assertSameFold too).
func TestIgnitionHeldComesBack(t *testing.T) {
	mode, user := 0o644, "core"
	withVersion := func(v string) ign3types.Config {
		return ign3types.Config{Ignition: ign3types.Ignition{Version: v}}
	}
	files := withVersion("3.5.0")
	files.Storage.Files = []ign3types.File{{Node: ign3types.Node{Path: "/etc/a"}, FileEmbedded1: ign3types.FileEmbedded1{Mode: &mode}}}
	files.Systemd.Units = []ign3types.Unit{{Name: "a.service"}}
	passwd := files
	passwd.Passwd.Users = []ign3types.PasswdUser{{Name: user}}
	disks := withVersion("3.5.0")
	disks.Storage.Disks = []ign3types.Disk{{Device: "/dev/sda"}}
	emptyList := withVersion("3.5.0")
	emptyList.KernelArguments.ShouldExist = []ign3types.KernelArgument{}
	for name, cfg := range map[string]ign3types.Config{
		"zero":                    {},
		"version alone":           withVersion("3.5.0"),
		"another version":         withVersion("3.4.0"),
		"lists only":              files,
		"lists and passwd":        passwd,
		"disks":                   disks,
		"an empty, not nil, list": emptyList,
	} {
		ig := NewIgnition(cfg)
		if back := ig.Config(); !reflect.DeepEqual(back, cfg) {
			t.Errorf("%s: got back %+v, want %+v", name, back, cfg)
		}
		if ig.Version() != cfg.Ignition.Version {
			t.Errorf("%s: version %q, want %q", name, ig.Version(), cfg.Ignition.Version)
		}
	}
	if !reflect.DeepEqual(NewIgnition(ign3types.Config{}), Ignition{}) {
		t.Error("the zero config is not held as the zero Ignition")
	}
}
