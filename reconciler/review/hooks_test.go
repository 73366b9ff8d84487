package review

import (
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// TestDiffNamesHooks: a file that is a node lifecycle hook is named as
// the Stoker addition it is, with when it runs; a mode the agent would
// refuse or skip is said too. Other files under /etc/stoker are not.
func TestDiffNamesHooks(t *testing.T) {
	cases := []struct {
		path string
		mode int
		want []string
		not  []string
	}{
		{"/etc/stoker/hooks.d/after-reboot/50-health", 0o755, []string{"Stoker lifecycle hook after-reboot (MCO has none): health gate"}, []string{"mode"}},
		{"/etc/stoker/hooks.d/before-apply/10-lock", 0o775, []string{"lifecycle hook before-apply", "mode 0775 is writable by group or others: the agent refuses this hook"}, nil},
		{"/etc/stoker/hooks.d/before-drain/10-lock", 0o644, []string{"lifecycle hook before-drain", "mode 0644 is not executable: the agent skips this hook"}, nil},
		{"/etc/stoker/hooks.d/before-apply/sub/10-lock", 0o755, nil, []string{"lifecycle hook"}},
		{"/etc/stoker/hooks.d/on-boot/10-x", 0o755, nil, []string{"lifecycle hook"}},
		{"/etc/stoker/agent.env", 0o644, nil, []string{"lifecycle hook"}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			f := ign3types.File{Node: ign3types.Node{Path: tc.path}}
			src := dataURL("#!/bin/sh\nexit 0\n")
			f.Contents.Source = &src
			f.Mode = &tc.mode
			to := &api.Rendered{Name: "to"}
			to.Config.Storage.Files = []ign3types.File{f}
			cd := ChangeDiff{Kind: api.ChangeFile, Path: tc.path, Op: "added"}
			addDetail(&cd, nil, to)
			all := strings.Join(cd.Details, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("details %q lack %q", cd.Details, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(all, w) {
					t.Errorf("details %q have %q", cd.Details, w)
				}
			}
		})
	}
}
