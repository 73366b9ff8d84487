package api

// HubFile is the hub's own entry on stoker/fleet: which build wrote it,
// for `stoker version`.
const HubFile = "hub.yaml"

// HubInfo is hub.yaml on stoker/fleet.
type HubInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"goVersion,omitempty"`
}
