package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// TestUnchangedDirectoriesAndLinksUpdate: a node that first booted a
// config with directories and links (Ignition made them; the first-boot
// config seeded the agent's state) validates against it and takes an
// update that changes a file and leaves its directories and links as they
// were, as MCO's daemon does (reconcilable() in pkg/daemon/update.go
// refuses only changes to those sections).
func TestUnchangedDirectoriesAndLinksUpdate(t *testing.T) {
	e := newEnv(t)
	withNodes := func(r *api.Rendered) *api.Rendered {
		r.Config.Storage.Directories = []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/stoker.d"}}}
		r.Config.Storage.Links = []ign3types.Link{{Node: ign3types.Node{Path: "/etc/stoker.link"},
			LinkEmbedded1: ign3types.LinkEmbedded1{Target: strp("/etc/stoker/a.conf")}}}
		return r
	}
	from := withNodes(cfg("rendered-worker-dirs-1", map[string]string{"a.conf": "one"}, nil))
	to := withNodes(cfg("rendered-worker-dirs-2", map[string]string{"a.conf": "two"}, nil))

	// What Ignition and the first-boot config leave on the node.
	must(t, os.MkdirAll(filepath.Join(e.root, "etc/stoker"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.root, "etc/stoker/a.conf"), []byte("one"), 0o644))
	must(t, os.MkdirAll(filepath.Join(e.stateDir, api.AgentConfigsDir), 0o700))
	data, err := from.Encode()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(e.stateDir, api.AgentConfigsDir, from.Name+".json"), data, 0o600))
	seed, err := json.Marshal(api.SeedState{Current: from.Name})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(e.stateDir, api.AgentStateFile), seed, 0o600))

	e.publish(to, livePolicy, from)
	if err := e.converge(e.options()); err != nil {
		t.Fatal(err)
	}
	rep := e.report()
	if rep.State != api.StateDone || rep.CurrentConfig != to.Name {
		t.Fatalf("report %s at %s (%q), want Done at %s", rep.State, rep.CurrentConfig, rep.Reason, to.Name)
	}
	if !e.at(to) {
		t.Errorf("node is not at %s", to.Name)
	}
	if e.reboots != 0 {
		t.Errorf("%d reboots, want none (the policy reloads /etc/stoker)", e.reboots)
	}
}
