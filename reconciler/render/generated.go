package render

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/generate"
)

// This file is the loader's hook into reconciler/generate: it decodes the
// kinds MCO's controllers expand (and Butane files), validates them with
// MCO's rules, and at the end of Load adds the MachineConfigs generated
// from them, so rendering, `stoker render` and `stoker diff` see them as
// ordinary MachineConfigs under MCO's names.

// maxButaneLocalBytes bounds all local files one Butane file pulls in.
const maxButaneLocalBytes = 4 * api.MaxYAMLBytes

func (l *loader) loadKubeletConfig(c objCtx, js []byte) {
	var kc generate.KubeletConfig
	if !c.decode(js, &kc) {
		return
	}
	c.checkMeta(kc.ObjectMeta)
	c.addAll("", selectorProblems(kc.Spec.MachineConfigPoolSelector, "spec.machineConfigPoolSelector"))
	c.addAll("", generate.ValidateKubeletConfig(kc))
	if !c.hadErrors {
		l.gen.KubeletConfigs = append(l.gen.KubeletConfigs, generate.Item[generate.KubeletConfig]{File: c.file, Object: kc})
	}
}

func (l *loader) loadContainerRuntimeConfig(c objCtx, js []byte) {
	var cc generate.ContainerRuntimeConfig
	if !c.decode(js, &cc) {
		return
	}
	c.checkMeta(cc.ObjectMeta)
	c.addAll("", selectorProblems(cc.Spec.MachineConfigPoolSelector, "spec.machineConfigPoolSelector"))
	c.addAll("", generate.ValidateContainerRuntimeConfig(cc))
	if !c.hadErrors {
		l.gen.ContainerRuntimeConfigs = append(l.gen.ContainerRuntimeConfigs, generate.Item[generate.ContainerRuntimeConfig]{File: c.file, Object: cc})
	}
}

func (l *loader) loadMirrorSet(c objCtx, js []byte) {
	var ms generate.MirrorSet
	if !c.decode(js, &ms) {
		return
	}
	c.checkMeta(ms.ObjectMeta)
	c.addAll("", generate.ValidateMirrorSet(ms))
	if !c.hadErrors {
		l.gen.MirrorSets = append(l.gen.MirrorSets, generate.Item[generate.MirrorSet]{File: c.file, Object: ms})
	}
}

func (l *loader) loadImage(c objCtx, js []byte) {
	var img generate.Image
	if !c.decode(js, &img) {
		return
	}
	c.checkMeta(img.ObjectMeta)
	c.addAll("", generate.ValidateImage(img))
	if c.hadErrors {
		return
	}
	if l.gen.Image != nil {
		c.errorf(metadataNameField, "duplicate Image %q (also in %s)", img.Name, l.gen.Image.File)
		return
	}
	l.gen.Image = &generate.Item[generate.Image]{File: c.file, Object: img}
}

// loadButane translates a Butane file and loads the MachineConfig it
// gives as if the file held it; problems name the Butane file.
func (l *loader) loadButane(fsys fs.FS, dir, file string, data []byte) {
	sub := fsys
	if dir != "." && dir != "" {
		s, err := fs.Sub(fsys, dir)
		if err != nil {
			l.add(api.Problem{File: file, Message: fmt.Sprintf("read: %v", err), Severity: api.SeverityError})
			return
		}
		sub = s
	}
	out, ps := generate.Butane(sub, file, data, generate.ButaneOptions{MaxFileBytes: l.vopts.MaxFileBytes, MaxTotalBytes: maxButaneLocalBytes})
	l.add(ps...)
	if len(ps.Errors()) > 0 {
		return
	}
	l.loadFile(file, out)
}

// generateMachineConfigs runs the generators over the loaded objects and
// pools and adds their MachineConfigs, sorted in by name. A repo
// MachineConfig with a generated name is an error naming both.
func (l *loader) generateMachineConfigs() {
	if l.gen.Empty() {
		return
	}
	r := l.repo
	in := l.gen
	for _, p := range r.Pools {
		pool := p.Object
		if v, ok := pool.Annotations[generate.KubeletConfigPathAnnotation]; ok && (!path.IsAbs(v) || path.Clean(v) != v) {
			l.add(api.Problem{File: p.File, Field: "metadata.annotations[" + generate.KubeletConfigPathAnnotation + "]", Message: fmt.Sprintf("%q must be an absolute, clean path", v), Severity: api.SeverityError})
			continue
		}
		selected, err := SelectMachineConfigs(pool, r.MachineConfigs)
		if err != nil {
			continue // reported when the pool renders
		}
		gp := generate.Pool{Name: pool.Name, Labels: pool.Labels, Annotations: pool.Annotations}
		for _, s := range selected {
			gp.Base = append(gp.Base, generate.Base{Name: s.Object.Name, Config: s.Object.Ignition.Config()})
		}
		in.Pools = append(in.Pools, gp)
	}
	gen, ps := generate.Generate(in)
	l.add(ps...)
	byName := map[string]string{}
	for _, mc := range r.MachineConfigs {
		byName[mc.Object.Name] = mc.File
	}
	for _, g := range gen {
		file := ""
		if len(g.From) > 0 {
			file = g.From[0].File
		}
		if other, ok := byName[g.MachineConfig.Name]; ok {
			l.add(api.Problem{File: other, Field: metadataNameField, Message: fmt.Sprintf("MachineConfig %q has the name Stoker generates from %s; rename it", g.MachineConfig.Name, g.MachineConfig.Annotations[generate.GeneratedFromAnnotation]), Severity: api.SeverityError})
			continue
		}
		// The generated config is checked like any MachineConfig (size
		// limits, paths); it also fills the size cache.
		vps := api.ValidateIgnition(g.Ignition, configField, l.vopts)
		for i := range vps {
			vps[i].File = file
			vps[i].Message = fmt.Sprintf("in generated MachineConfig %s: %s", g.MachineConfig.Name, vps[i].Message)
		}
		l.add(vps...)
		if len(vps.Errors()) > 0 {
			continue
		}
		r.MachineConfigs = append(r.MachineConfigs, Source[MachineConfig]{File: file, Doc: -1, Item: -1, Object: MachineConfig{MachineConfig: g.MachineConfig, Ignition: NewIgnition(g.Ignition)}})
	}
	sort.SliceStable(r.MachineConfigs, func(i, j int) bool { return r.MachineConfigs[i].Object.Name < r.MachineConfigs[j].Object.Name })
}

// GeneratedSource names a MachineConfig that is not in the repo as
// written and what it came from.
type GeneratedSource struct {
	Name string `json:"name"`
	From string `json:"from"`
}

// Generated lists the repo's generated and Butane-made MachineConfigs by
// name, each with its source: "KubeletConfig/x (kubelet.yaml)" or
// "Butane file butane/x.bu".
func (r *Repo) Generated() []GeneratedSource {
	var out []GeneratedSource
	for _, mc := range r.MachineConfigs {
		switch from := mc.Object.Annotations[generate.GeneratedFromAnnotation]; {
		case from != "":
			out = append(out, GeneratedSource{Name: mc.Object.Name, From: from})
		case path.Ext(mc.File) == ".bu":
			out = append(out, GeneratedSource{Name: mc.Object.Name, From: "Butane file " + mc.File})
		}
	}
	return out
}
