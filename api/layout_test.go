package api

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadLayout(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    int
		wantErr string
		unknown bool
	}{
		{name: "absent marker is version 1", files: fstest.MapFS{"pools/worker.yaml": {Data: []byte("name: worker\n")}}, want: 1},
		{name: "version 1", files: fstest.MapFS{LayoutFile: {Data: LayoutMarker(1)}}, want: 1},
		{name: "version 2", files: fstest.MapFS{LayoutFile: {Data: LayoutMarker(2)}}, want: 2},
		{name: "unknown higher version", files: fstest.MapFS{LayoutFile: {Data: []byte("version: 3\n")}},
			wantErr: "stoker/status is in layout version 3; this stoker reads up to version 2", unknown: true},
		{name: "not a version", files: fstest.MapFS{LayoutFile: {Data: []byte("version: 0\n")}},
			wantErr: "stoker/status layout.yaml: version: 0 is not a layout version"},
		{name: "unknown key", files: fstest.MapFS{LayoutFile: {Data: []byte("version: 1\nflavour: x\n")}},
			wantErr: "stoker/status layout.yaml: "},
		{name: "oversized", files: fstest.MapFS{LayoutFile: {Data: []byte("version: 1\n" + strings.Repeat("#", 8<<10))}},
			wantErr: "stoker/status layout.yaml: 4097 bytes, over the limit of 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadLayout(tc.files, StatusBranch)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ReadLayout = %d, %v; want %d, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ReadLayout error = %v; want it to contain %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrUnknownLayout) != tc.unknown {
				t.Fatalf("errors.Is(%v, ErrUnknownLayout) = %v, want %v", err, !tc.unknown, tc.unknown)
			}
		})
	}
}

func TestLayoutMarker(t *testing.T) {
	if got := string(LayoutMarker(2)); got != "version: 2\n" {
		t.Fatalf("LayoutMarker(2) = %q", got)
	}
}

// TestReadFleetLayout: stoker/fleet has one layout; version 2 there is a
// layout this build does not know (only stoker/status has a version 2).
func TestReadFleetLayout(t *testing.T) {
	_, err := ReadLayout(fstest.MapFS{LayoutFile: {Data: []byte("version: 2\n")}}, FleetBranch)
	if !errors.Is(err, ErrUnknownLayout) || !strings.Contains(err.Error(), "stoker/fleet is in layout version 2; this stoker reads up to version 1") {
		t.Fatalf("ReadLayout(stoker/fleet, version 2) = %v, want ErrUnknownLayout naming the branch and both versions", err)
	}
}
