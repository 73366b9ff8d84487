package review

import (
	"strings"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/generate"
	"stoker.dev/stoker/reconciler/render"
)

// annotateSources adds to each file or unit change a detail naming where
// its content comes from when that is not a MachineConfig as written: a
// MachineConfig generated from a KubeletConfig, ContainerRuntimeConfig,
// mirror set or Image (under MCO's generated name), or one translated from
// a Butane file. It looks at the pool's MachineConfigs in merge order and
// names the last one that writes the path, as that one wins the merge.
// source returns the repo a pool renders from (nil: unknown).
func annotateSources(rep *DiffReport, pools *render.Repo, source func(api.MachineConfigPool) *render.Repo) {
	if pools == nil {
		return
	}
	for i := range rep.Pools {
		pd := &rep.Pools[i]
		p := pools.Pool(pd.Name)
		if p == nil {
			continue
		}
		src := source(p.Object)
		if src == nil {
			continue
		}
		selected, err := render.SelectMachineConfigs(p.Object, src.MachineConfigs)
		if err != nil {
			continue
		}
		for j := range pd.Changes {
			c := &pd.Changes[j]
			for k := len(selected) - 1; k >= 0; k-- {
				mc := selected[k]
				if !writes(mc.Object, c) {
					continue
				}
				if from := mc.Object.Annotations[generate.GeneratedFromAnnotation]; from != "" {
					c.Details = append(c.Details, "from generated MachineConfig "+mc.Object.Name+" ← "+from)
				} else if strings.HasSuffix(mc.File, ".bu") {
					c.Details = append(c.Details, "from MachineConfig "+mc.Object.Name+" ← Butane file "+mc.File)
				}
				break
			}
		}
	}
}

// writes reports whether mc sets the file or unit change c is about.
func writes(mc render.MachineConfig, c *ChangeDiff) bool {
	switch c.Kind {
	case api.ChangeFile:
		for _, f := range mc.Ignition.Storage.Files {
			if f.Path == c.Path {
				return true
			}
		}
	case api.ChangeUnit, api.ChangeDropin:
		for _, u := range mc.Ignition.Systemd.Units {
			if u.Name == c.Name {
				return true
			}
		}
	}
	return false
}
