package generate

import (
	"bytes"
	"sort"

	"github.com/BurntSushi/toml"
	storageconfig "go.podman.io/storage/pkg/config"

	"stoker.dev/stoker/api"
)

// Limits of MCO's validateUserContainerRuntimeConfig.
const (
	minPidsLimit  = 20
	minLogSizeMax = 8192
)

// ValidateContainerRuntimeConfig checks a ContainerRuntimeConfig as MCO's
// validateUserContainerRuntimeConfig does, with MCO's messages. Fields are
// relative to the object.
func ValidateContainerRuntimeConfig(c ContainerRuntimeConfig) api.Problems {
	var ps api.Problems
	r := c.Spec.ContainerRuntimeConfig
	if r == nil {
		return api.Problems{errorAt("", "spec.containerRuntimeConfig", "missing")}
	}
	f := "spec.containerRuntimeConfig."
	if r.PidsLimit != nil && *r.PidsLimit != 0 && *r.PidsLimit < minPidsLimit {
		ps = append(ps, errorAt("", f+"pidsLimit", "invalid PidsLimit %d (the minimum is %d)", *r.PidsLimit, minPidsLimit))
	}
	if r.LogSizeMax != nil && r.LogSizeMax.Value() > 0 && r.LogSizeMax.Value() <= minLogSizeMax {
		ps = append(ps, errorAt("", f+"logSizeMax", "invalid LogSizeMax %q, cannot be less than 8kB", r.LogSizeMax.String()))
	}
	if r.OverlaySize != nil && r.OverlaySize.Value() < 0 {
		ps = append(ps, errorAt("", f+"overlaySize", "invalid overlaySize %q, cannot be less than 0", r.OverlaySize.String()))
	}
	switch r.LogLevel {
	case "", "error", "fatal", "panic", "warn", "info", "debug", "trace":
	default:
		ps = append(ps, errorAt("", f+"logLevel", "invalid LogLevel %q, must be one of error, fatal, panic, warn, info, debug, or trace", r.LogLevel))
	}
	switch r.DefaultRuntime {
	case "", "runc", "crun":
	default:
		ps = append(ps, errorAt("", f+"defaultRuntime", "invalid DefaultRuntime %q, must be one of crun, runc", r.DefaultRuntime))
	}
	return ps
}

// crioDropIn is one CRI-O drop-in setting one key of [crio.runtime]: MCO
// writes one file per field (tomlConfigCRIO* in MCO) so a field left
// alone keeps CRI-O's default; a map keeps the other keys out entirely.
func crioDropIn(key string, value any) map[string]map[string]map[string]any {
	return map[string]map[string]map[string]any{"crio": {"runtime": {key: value}}}
}

// storageConf is MCO's tomlConfigStorage.
type storageConf struct {
	Storage struct {
		Driver    string `toml:"driver"`
		RunRoot   string `toml:"runroot"`
		GraphRoot string `toml:"graphroot"`
		Options   struct {
			storageconfig.OptionsConfig
		} `toml:"options"`
	} `toml:"storage"`
}

// generateContainerRuntime is MCO's syncContainerRuntimeConfig: per pool
// its selector matches, one MachineConfig per ContainerRuntimeConfig (in
// name order: Stoker has no creation time), holding the CRI-O drop-ins of
// the fields set (createCRIODropinFiles) and, with overlaySize, the pool's
// storage.conf with the size (updateStorageConfig).
func generateContainerRuntime(in Input) ([]Generated, api.Problems) {
	items := append([]Item[ContainerRuntimeConfig](nil), in.ContainerRuntimeConfigs...)
	sort.SliceStable(items, func(i, j int) bool { return items[i].Object.Name < items[j].Object.Name })
	var out []Generated
	var ps api.Problems
	count := map[string]int{}
	for _, it := range items {
		c := it.Object
		pools, err := selectPools(in.Pools, c.Spec.MachineConfigPoolSelector)
		if err != nil {
			ps = append(ps, errorAt(it.File, "spec.machineConfigPoolSelector", "%v", err))
			continue
		}
		if len(pools) == 0 {
			ps = append(ps, warnAt(it.File, "spec.machineConfigPoolSelector", "could not find any MachineConfigPool set for ContainerRuntimeConfig %s: the selector matches no pool's labels, so it has no effect (MCO reports the same on the object)", c.Name))
			continue
		}
		r := c.Spec.ContainerRuntimeConfig
		if r == nil {
			continue
		}
		for _, pool := range pools {
			var files []file
			add := func(path, key string, value any) {
				var buf bytes.Buffer
				if err := toml.NewEncoder(&buf).Encode(crioDropIn(key, value)); err != nil {
					ps = append(ps, errorAt(it.File, "spec.containerRuntimeConfig", "encode %s: %v", path, err))
					return
				}
				files = append(files, file{path: path, data: buf.Bytes()})
			}
			if r.LogLevel != "" {
				add(CRIOLogLevelPath, "log_level", r.LogLevel)
			}
			if r.PidsLimit != nil {
				add(CRIOPidsLimitPath, "pids_limit", *r.PidsLimit)
			}
			if r.LogSizeMax != nil && r.LogSizeMax.Value() != 0 {
				add(CRIOLogSizeMaxPath, "log_size_max", r.LogSizeMax.Value())
			}
			if r.DefaultRuntime != "" {
				add(CRIODefaultRuntimePath, "default_runtime", r.DefaultRuntime)
			}
			if r.OverlaySize != nil && r.OverlaySize.Value() != 0 {
				data, mode, from, ok, err := pool.baseFile(StorageConfPath)
				switch {
				case err != nil:
					ps = append(ps, errorAt(it.File, "spec.containerRuntimeConfig.overlaySize", "pool %s: %v", pool.Name, err))
				case !ok:
					ps = append(ps, errorAt(it.File, "spec.containerRuntimeConfig.overlaySize", "pool %s has no %s to set the overlay size in: add it to a MachineConfig the pool selects", pool.Name, StorageConfPath))
				default:
					var conf storageConf
					var buf bytes.Buffer
					if _, err := toml.Decode(string(data), &conf); err != nil {
						ps = append(ps, errorAt(it.File, "spec.containerRuntimeConfig.overlaySize", "pool %s: decode %s from MachineConfig %s: %v", pool.Name, StorageConfPath, from, err))
						break
					}
					conf.Storage.Options.Size = r.OverlaySize.String()
					if err := toml.NewEncoder(&buf).Encode(conf); err != nil {
						ps = append(ps, errorAt(it.File, "spec.containerRuntimeConfig.overlaySize", "encode %s: %v", StorageConfPath, err))
						break
					}
					files = append(files, file{path: StorageConfPath, data: buf.Bytes(), mode: mode})
				}
			}
			n := count[pool.Name]
			if n > maxSuffix {
				ps = append(ps, errorAt(it.File, "metadata.name", "max number of supported ctrcfgs (10) has been reached for pool %s", pool.Name))
				continue
			}
			count[pool.Name]++
			out = append(out, machineConfig(managedName(pool.Name, "containerruntime", n), pool.Name, files, []Origin{{File: it.File, Kind: KindContainerRuntimeConfig, Name: c.Name}}))
		}
	}
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	return out, ps
}
