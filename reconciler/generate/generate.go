package generate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"stoker.dev/stoker/api"
)

// Item is one loaded object with the file it came from.
type Item[T any] struct {
	File   string
	Object T
}

// Pool is what a generator needs of a pool: its name and labels (the
// selectors of KubeletConfig and ContainerRuntimeConfig match them), its
// annotations, and the Ignition configs of the MachineConfigs it selects,
// in merge order, which hold the base files.
type Pool struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Base        []Base
}

// Base is one MachineConfig a pool selects.
type Base struct {
	Name   string
	Config ign3types.Config
}

// Input is every generating object of a repo and its pools.
type Input struct {
	Pools                   []Pool
	KubeletConfigs          []Item[KubeletConfig]
	ContainerRuntimeConfigs []Item[ContainerRuntimeConfig]
	MirrorSets              []Item[MirrorSet]
	// Image is the Image named cluster, nil when the repo has none.
	Image *Item[Image]
}

// Empty reports whether in holds no generating object.
func (in Input) Empty() bool {
	return len(in.KubeletConfigs) == 0 && len(in.ContainerRuntimeConfigs) == 0 && len(in.MirrorSets) == 0 && in.Image == nil
}

// Origin names an object a MachineConfig was generated from.
type Origin struct {
	File, Kind, Name string
}

func (o Origin) String() string {
	if o.File == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Name + " (" + o.File + ")"
}

// Generated is a generated MachineConfig: labelled with the pool's role so
// exactly that pool (and custom pools inheriting worker, for worker's)
// selects it, annotated with its origins.
type Generated struct {
	MachineConfig api.MachineConfig
	Ignition      ign3types.Config
	From          []Origin
}

// maxSuffix is MCO's ctrlcommon.MaxMCNameSuffix: at most ten generated
// MachineConfigs of one kind per pool.
const maxSuffix = 9

// managedName is MCO's GetManagedKey / getManagedKubeletConfigKey naming:
// 99-<pool>-generated-<kind>, then -1, -2 … for later objects.
func managedName(pool, kind string, i int) string {
	if i == 0 {
		return "99-" + pool + "-generated-" + kind
	}
	return "99-" + pool + "-generated-" + kind + "-" + strconv.Itoa(i)
}

// Generate runs every generator. The problems name the file and field of
// the object at fault; a generator whose objects have errors generates
// nothing, as MCO's controller refuses to sync them. Generated configs are
// sorted by name.
func Generate(in Input) ([]Generated, api.Problems) {
	var out []Generated
	var ps api.Problems
	g, p := generateRegistries(in)
	out, ps = append(out, g...), append(ps, p...)
	g, p = generateContainerRuntime(in)
	out, ps = append(out, g...), append(ps, p...)
	g, p = generateKubelet(in)
	out, ps = append(out, g...), append(ps, p...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].MachineConfig.Name < out[j].MachineConfig.Name })
	return out, ps
}

// selectPools returns the pools whose labels sel matches, as MCO's
// getPoolsForKubeletConfig / getPoolsForContainerRuntimeConfig: an empty
// selector matches nothing.
func selectPools(pools []Pool, sel *metav1.LabelSelector) ([]Pool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	if sel == nil || s.Empty() {
		return nil, nil
	}
	var out []Pool
	for _, p := range pools {
		if s.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

// baseFile returns the contents and mode of the file at path in the pool's
// merged base: the last MachineConfig that sets the file's contents wins,
// as Ignition's merge does. ok is false when no MachineConfig has it.
func (p Pool) baseFile(path string) (data []byte, mode int, from string, ok bool, err error) {
	for i := len(p.Base) - 1; i >= 0; i-- {
		for _, f := range p.Base[i].Config.Storage.Files {
			if f.Path != path || f.Contents.Source == nil {
				continue
			}
			data, err := api.DecodeFileContents(f.Contents)
			if err != nil {
				return nil, 0, p.Base[i].Name, false, fmt.Errorf("read %s from MachineConfig %s: %w", path, p.Base[i].Name, err)
			}
			mode := 0o644
			if f.Mode != nil {
				mode = *f.Mode
			}
			return data, mode, p.Base[i].Name, true, nil
		}
	}
	return nil, 0, "", false, nil
}

// file is one generated file.
type file struct {
	path string
	data []byte
	mode int
}

// machineConfig builds a generated MachineConfig for pool holding files,
// each written whole (overwrite, mode 0644 unless the base said otherwise)
// from a data: URL, as MCO's NewIgnFileBytesOverwriting.
func machineConfig(name, pool string, files []file, from []Origin) Generated {
	cfg := ign3types.Config{Ignition: ign3types.Ignition{Version: api.IgnitionVersion}}
	for _, f := range files {
		src := dataurl.EncodeBytes(f.data)
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		t := true
		cfg.Storage.Files = append(cfg.Storage.Files, ign3types.File{
			Node:          ign3types.Node{Path: f.path, Overwrite: &t},
			FileEmbedded1: ign3types.FileEmbedded1{Mode: &mode, Contents: ign3types.Resource{Source: &src}},
		})
	}
	names := make([]string, len(from))
	for i, o := range from {
		names[i] = o.String()
	}
	mc := api.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: api.MachineConfigGroupVersion, Kind: api.KindMachineConfig},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{api.RoleLabel: pool},
			Annotations: map[string]string{GeneratedFromAnnotation: strings.Join(names, ", ")},
		},
	}
	return Generated{MachineConfig: mc, Ignition: cfg, From: from}
}

func errorAt(file, field, format string, args ...any) api.Problem {
	return api.Problem{File: file, Field: field, Message: fmt.Sprintf(format, args...), Severity: api.SeverityError}
}

func warnAt(file, field, format string, args ...any) api.Problem {
	return api.Problem{File: file, Field: field, Message: fmt.Sprintf(format, args...), Severity: api.SeverityWarning}
}
