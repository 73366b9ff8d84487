package fleetview

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/gitserver"
)

// TestStatusLayoutVersion: `stoker status` prints a stoker/fleet without
// layout.yaml (written before the marker) and one in version 1, and
// refuses one in a newer layout with an error naming the branch and the
// version.
func TestStatusLayoutVersion(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	pool := "name: worker\nmachineCount: 2\nupdatedMachineCount: 2\nreadyMachineCount: 2\nupdated: true\n"
	tests := []struct {
		name   string
		marker string // "" = absent
		refuse bool
	}{
		{name: "absent", marker: ""},
		{name: "v1", marker: "version: 1\n"},
		{name: "v2", marker: "version: 2\n", refuse: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{api.PoolFile("worker"): pool}
			if tc.marker != "" {
				files[api.LayoutFile] = tc.marker
			}
			srv.SeedRepo(t, tc.name, files, api.FleetBranch)
			var out bytes.Buffer
			err := RunStatus(context.Background(), StatusOptions{RepoURL: srv.URL(tc.name), WorkDir: t.TempDir(), Out: &out,
				Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
			if !tc.refuse {
				if err != nil || !strings.Contains(out.String(), "worker") {
					t.Fatalf("RunStatus = %v, output %q; want the worker pool", err, out.String())
				}
				return
			}
			if !errors.Is(err, api.ErrUnknownLayout) || !strings.Contains(err.Error(), "stoker/fleet is in layout version 2") {
				t.Fatalf("RunStatus err = %v, want ErrUnknownLayout naming stoker/fleet and version 2", err)
			}
			if out.Len() != 0 {
				t.Fatalf("RunStatus printed %q from a layout it cannot read", out.String())
			}
		})
	}
}
