package api

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"sigs.k8s.io/yaml"
)

// Layout versions of stoker/status and stoker/fleet. A change to a
// branch's layout bumps its version; agents, the hub and `stoker status`
// refuse a version they do not know rather than misread it.
//
// stoker/status version 1 is pools/, rendered/ and nodes/<node>.yaml (one
// file per node, rewritten at each rollout step). Version 2 replaces
// nodes/ with rollouts/<pool>/order.yaml (the rollout's node order, written
// once per rollout) and rollouts/<pool>/cursor.yaml (advanced at each step):
// see rollouts.go. While an agent that reads only version 1 reports, the
// hub writes both, marked version 1. stoker/fleet has one version so far.
const (
	StatusLayoutV1 = 1
	StatusLayoutV2 = 2
	// StatusLayoutVersion is the newest stoker/status layout this build
	// reads and writes.
	StatusLayoutVersion = StatusLayoutV2
	// FleetLayoutVersion is the stoker/fleet layout this build reads and
	// writes.
	FleetLayoutVersion = 1
)

// StatusLayouts are the stoker/status layout versions this build's agent
// reads; it says so on its report branch (AgentFile).
var StatusLayouts = []int{StatusLayoutV1, StatusLayoutV2}

// maxLayout is the newest layout of branch this build knows.
func maxLayout(branch string) int {
	if branch == StatusBranch {
		return StatusLayoutVersion
	}
	return FleetLayoutVersion
}

// LayoutFile is the marker at the root of stoker/status and stoker/fleet
// that names the branch's layout version. A branch without it is version 1
// (written before the marker existed).
const LayoutFile = "layout.yaml"

// maxLayoutBytes bounds what is read of LayoutFile.
const maxLayoutBytes = 4 << 10

// ErrUnknownLayout means a branch was written in a layout version this
// build does not know (a newer hub); nothing on it is read.
var ErrUnknownLayout = errors.New("unknown branch layout version")

// Layout is LayoutFile's content.
type Layout struct {
	Version int `json:"version"`
}

// LayoutMarker returns LayoutFile's bytes for version, as the hub writes
// them to its branches.
func LayoutMarker(version int) []byte {
	return []byte(fmt.Sprintf("version: %d\n", version))
}

// CheckLayout returns the layout version of branch given LayoutFile's bytes
// (data nil: the file is absent, version 1). A version above the newest
// this build knows for branch is refused with an error naming the branch and the version that wraps
// ErrUnknownLayout; a marker that does not parse is refused naming the
// file and field.
func CheckLayout(branch string, data []byte) (int, error) {
	if data == nil {
		return 1, nil
	}
	if len(data) > maxLayoutBytes {
		return 0, fmt.Errorf("%s %s: %d bytes, over the limit of %d", branch, LayoutFile, len(data), maxLayoutBytes)
	}
	max := maxLayout(branch)
	var l Layout
	if err := yaml.UnmarshalStrict(data, &l); err != nil {
		return 0, fmt.Errorf("%s %s: %w", branch, LayoutFile, err)
	}
	switch {
	case l.Version < 1:
		return 0, fmt.Errorf("%s %s: version: %d is not a layout version (want 1 to %d)", branch, LayoutFile, l.Version, max)
	case l.Version > max:
		return 0, fmt.Errorf("%s is in layout version %d; this stoker reads up to version %d (upgrade stoker): %w",
			branch, l.Version, max, ErrUnknownLayout)
	}
	return l.Version, nil
}

// ReadLayout reads LayoutFile from a tree of branch (bounded before it is
// read) and checks it with CheckLayout.
func ReadLayout(tree fs.FS, branch string) (int, error) {
	data, err := ReadLayoutFile(tree, branch)
	if err != nil {
		return 0, err
	}
	return CheckLayout(branch, data)
}

// ReadLayoutFile returns LayoutFile's bytes from a tree of branch, nil
// when it is absent. At most one byte over the limit is read, so
// CheckLayout refuses an oversized file without reading all of it.
func ReadLayoutFile(tree fs.FS, branch string) ([]byte, error) {
	f, err := tree.Open(LayoutFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", branch, LayoutFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLayoutBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", branch, LayoutFile, err)
	}
	return data, nil
}
