// Package examplesrepo embeds this example config repo (its YAML and
// README) so `stoker demo` can seed a Git server from it without a
// checkout. The YAML files are the product; this file only carries them.
package examplesrepo

import "embed"

// FS holds README.md, machineconfiguration.yaml, pools/, machineconfigs/,
// butane/, images/ and kubelet/, at the same paths as in the repository.
//
//go:embed README.md machineconfiguration.yaml pools/*.yaml machineconfigs/*.yaml butane/*.bu butane/files/* images/*.yaml kubelet/*.yaml
var FS embed.FS
