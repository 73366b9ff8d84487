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
		{name: "known version", files: fstest.MapFS{LayoutFile: {Data: LayoutMarker()}}, want: LayoutVersion},
		{name: "unknown higher version", files: fstest.MapFS{LayoutFile: {Data: []byte("version: 2\n")}},
			wantErr: "stoker/status is in layout version 2; this stoker reads up to version 1", unknown: true},
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
	if got := string(LayoutMarker()); got != "version: 1\n" {
		t.Fatalf("LayoutMarker() = %q; version 1 is today's layout", got)
	}
}
