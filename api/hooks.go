package api

import (
	"path"
	"strings"
)

// Node lifecycle hooks (a Stoker addition; MCO has none): executables
// under HooksDir/<point>/ on a node, which the agent runs at the points
// of an update. They are the host's; a MachineConfig may ship them as
// files, and `stoker diff` says what such a file is.
const (
	HooksDir         = "/etc/stoker/hooks.d"
	HookBeforeDrain  = "before-drain"
	HookBeforeApply  = "before-apply"
	HookBeforeReboot = "before-reboot"
	HookAfterReboot  = "after-reboot"
)

// HookPoints are every hook point, in the order an update reaches them.
var HookPoints = []string{HookBeforeDrain, HookBeforeApply, HookBeforeReboot, HookAfterReboot}

// hookWhen says when each point runs and what its failure does.
var hookWhen = map[string]string{
	HookBeforeDrain:  "runs before the drain of a disruptive update; failing cancels it, nothing drained or written",
	HookBeforeApply:  "runs before every update writes anything; failing cancels it, nothing written",
	HookBeforeReboot: "runs before the reboot of a Reboot update; failing rolls the applied config back",
	HookAfterReboot:  "health gate after the reboot into a new config; failing leaves the node Degraded (rolled back with --auto-rollback)",
}

// HookPointOf returns the hook point whose hook the host path p would be
// ("" when p is none: not directly in a point's directory).
func HookPointOf(p string) string {
	rest, ok := strings.CutPrefix(path.Clean(p), HooksDir+"/")
	if !ok {
		return ""
	}
	point, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	if _, known := hookWhen[point]; !known {
		return ""
	}
	return point
}

// HookWhen describes when the hooks of point run and what their failure
// does ("" for an unknown point).
func HookWhen(point string) string { return hookWhen[point] }
