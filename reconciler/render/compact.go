package render

import (
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// Ignition is a loaded MachineConfig's Ignition config as a Repo holds
// it: the lists a node reconciles, and the rest of the config only when it
// has anything but the version. An ign3types.Config is 456 bytes, most of
// them sections a MachineConfig leaves empty, held for every MachineConfig
// as long as its Repo; this is 104. Config gives the whole config back.
type Ignition struct {
	Storage IgnitionStorage
	Systemd ign3types.Systemd
	// rest is the config without the lists above: nil for the zero config
	// (no version), versionOnly when it is the version alone.
	rest *ign3types.Config
}

// IgnitionStorage is the part of ign3types.Storage a running node can
// reconcile (disks, filesystems, luks and raid are refused at load).
type IgnitionStorage struct {
	Directories []ign3types.Directory
	Files       []ign3types.File
	Links       []ign3types.Link
}

// versionOnly is the rest of every config that has nothing else, shared:
// it is never modified (Config copies it).
var versionOnly = &ign3types.Config{Ignition: ign3types.Ignition{Version: api.IgnitionVersion}}

// NewIgnition holds cfg as a Repo does; Config gives cfg back.
func NewIgnition(cfg ign3types.Config) Ignition {
	ig := Ignition{
		Storage: IgnitionStorage{Directories: cfg.Storage.Directories, Files: cfg.Storage.Files, Links: cfg.Storage.Links},
		Systemd: cfg.Systemd,
	}
	rest := cfg
	rest.Storage.Directories, rest.Storage.Files, rest.Storage.Links = nil, nil, nil
	rest.Systemd = ign3types.Systemd{}
	version := rest.Ignition.Version
	rest.Ignition.Version = ""
	switch {
	case !restIsEmpty(rest):
		rest.Ignition.Version = version
		ig.rest = &rest
	case version == api.IgnitionVersion:
		ig.rest = versionOnly
	case version != "":
		ig.rest = &ign3types.Config{Ignition: ign3types.Ignition{Version: version}}
	}
	return ig
}

// Config returns the whole Ignition config.
func (ig *Ignition) Config() ign3types.Config {
	var cfg ign3types.Config
	if ig.rest != nil {
		cfg = *ig.rest
	}
	cfg.Storage.Directories, cfg.Storage.Files, cfg.Storage.Links = ig.Storage.Directories, ig.Storage.Files, ig.Storage.Links
	cfg.Systemd = ig.Systemd
	return cfg
}

// Version is the config's spec version, "" for the zero config.
func (ig *Ignition) Version() string {
	if ig.rest == nil {
		return ""
	}
	return ig.rest.Ignition.Version
}
