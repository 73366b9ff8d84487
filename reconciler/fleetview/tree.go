package fleetview

import (
	"io/fs"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
)

// ReadPools reads pools/<pool>.yaml of a stoker/fleet tree, keyed by file
// name (without .yaml).
func ReadPools(tree fs.FS) (map[string]api.PoolFleet, error) {
	return readFiles[api.PoolFleet](tree, "pools")
}

// ReadTree reads pools/ and nodes/ of a stoker/fleet tree, keyed by file
// name. N is the node file's type: api.NodeFleet for readers, the hub's
// own superset of it (first-seen times) for the hub.
func ReadTree[N any](tree fs.FS) (map[string]api.PoolFleet, map[string]N, error) {
	pools, err := ReadPools(tree)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := readFiles[N](tree, "nodes")
	if err != nil {
		return nil, nil, err
	}
	return pools, nodes, nil
}

func readFiles[T any](tree fs.FS, dir string) (map[string]T, error) {
	out := map[string]T{}
	err := api.ReadYAMLDir(tree, dir, func(name string, data []byte) error {
		var v T
		if err := yaml.Unmarshal(data, &v); err != nil {
			return err
		}
		out[name] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
