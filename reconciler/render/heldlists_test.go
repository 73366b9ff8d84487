package render

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestHeldListsHaveNoSpareCapacity: what a Repo and a RenderResult hold
// for as long as they live (the loaded MachineConfigs' entry lists, the
// rendered configs' lists) has no room left unused, whether the JSON
// decoder grew a list or merged entries left part of the fold's, and
// MachineConfigs with equal labels hold one map.
func TestHeldListsHaveNoSpareCapacity(t *testing.T) {
	var y strings.Builder
	for i := 0; i < 3; i++ {
		var b strings.Builder
		b.WriteString("  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n")
		for f := 0; f < 3; f++ {
			path := fmt.Sprintf("/etc/stoker/%d-%d.conf", i, f)
			if f == 0 {
				path = "/etc/shared.conf" // merged: one entry of three
			}
			fmt.Fprintf(&b, "      - path: %s\n        mode: 0644\n        contents:\n          source: data:,%d-%d\n", path, i, f)
		}
		fmt.Fprintf(&b, "    systemd:\n      units:\n      - name: a.service\n        contents: \"[Unit]\\n\"\n      - name: s-%d.service\n        enabled: true\n      - name: t-%d.service\n        mask: true\n", i, i)
		y.WriteString("---\n" + mc(fmt.Sprintf("%02d-worker", i), "worker", b.String()))
	}
	repo, ps := LoadBytes("mcs.yaml", []byte(y.String()), LoadOptions{})
	if ps.Err() != nil {
		t.Fatal(ps.Err())
	}
	if len(repo.MachineConfigs) != 3 {
		t.Fatalf("loaded %d MachineConfigs, want 3", len(repo.MachineConfigs))
	}
	for _, mc := range repo.MachineConfigs {
		c := mc.Object.Ignition
		if f, u := c.Storage.Files, c.Systemd.Units; cap(f) != len(f) || cap(u) != len(u) {
			t.Errorf("%s: files %d of capacity %d, units %d of capacity %d; want no spare capacity", mc.Object.Name, len(f), cap(f), len(u), cap(u))
		}
	}
	labels := reflect.ValueOf(repo.MachineConfigs[0].Object.Labels).Pointer()
	for _, mc := range repo.MachineConfigs[1:] {
		if reflect.ValueOf(mc.Object.Labels).Pointer() != labels {
			t.Errorf("%s: labels %v in a map of their own; want the map of %s's equal labels", mc.Object.Name, mc.Object.Labels, repo.MachineConfigs[0].Object.Name)
		}
	}
	res, ps := RenderAll(repo, RenderOptions{})
	if ps.Err() != nil {
		t.Fatal(ps.Err())
	}
	for _, p := range res.Pools {
		c := p.Rendered.Config
		if f, u := c.Storage.Files, c.Systemd.Units; cap(f) != len(f) || cap(u) != len(u) {
			t.Errorf("pool %s: files %d of capacity %d, units %d of capacity %d; want no spare capacity", p.Pool.Object.Name, len(f), cap(f), len(u), cap(u))
		}
		if p.Pool.Object.Name == "worker" && (len(c.Storage.Files) != 7 || len(c.Systemd.Units) != 7) {
			t.Errorf("pool worker: %d files and %d units, want 7 and 7", len(c.Storage.Files), len(c.Systemd.Units))
		}
	}
}
