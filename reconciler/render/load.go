package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing/fstest"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/generate"
)

// Source is one object loaded from the repo, with where it came from so
// every problem can name its file.
type Source[T any] struct {
	// File is the slash-separated path relative to the loaded directory;
	// empty for built-in objects.
	File string
	// Doc is the index of the object's YAML document among the file's
	// non-empty documents (0-based); Item is the index inside a kind: List,
	// or -1.
	Doc, Item int
	Object    T
}

// MachineConfig is a loaded MachineConfig with its Ignition config parsed
// and normalised to spec 3.5 (the zero config when it has none; see
// Ignition.Config); the raw Spec.Config is not kept.
type MachineConfig struct {
	api.MachineConfig
	Ignition Ignition
}

// Repo is everything loaded from a config repo directory. It is
// read-only: MachineConfigs with equal labels (or annotations) share one
// map.
type Repo struct {
	// MachineConfigs sorted by name.
	MachineConfigs []Source[MachineConfig]
	// Pools sorted by name, including the built-in master and worker pools
	// when the repo does not define them (see LoadOptions.NoDefaultPools).
	Pools []Source[api.MachineConfigPool]
	// Disruption is the node disruption policy of the MachineConfiguration
	// named cluster, nil when the repo has none.
	Disruption *Source[api.NodeDisruptionPolicy]
	// sizes are the decoded sizes of the MachineConfigs' file contents,
	// so rendering does not decode them again.
	sizes api.SizeCache
}

// Pool returns the pool named name, or nil.
func (r *Repo) Pool(name string) *Source[api.MachineConfigPool] {
	for i := range r.Pools {
		if r.Pools[i].Object.Name == name {
			return &r.Pools[i]
		}
	}
	return nil
}

// DisruptionPolicy returns the repo's node disruption policy or nil.
func (r *Repo) DisruptionPolicy() *api.NodeDisruptionPolicy {
	if r == nil || r.Disruption == nil {
		return nil
	}
	p := r.Disruption.Object
	return &p
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Strict turns every warning into an error.
	Strict bool
	// NoDefaultPools leaves out the built-in master and worker pools. By
	// default they exist unless the repo defines pools of those names, as
	// in every OpenShift cluster, so MachineConfigs with role master or
	// worker render without the repo declaring the pools.
	NoDefaultPools bool
	// Validation is what a node accepts; the zero value means
	// api.DefaultValidationOptions().
	Validation *api.ValidationOptions
}

func (o LoadOptions) validation() api.ValidationOptions {
	if o.Validation != nil {
		return *o.Validation
	}
	return api.DefaultValidationOptions()
}

// Load reads every *.yaml and *.yml file under dir in fsys (skipping hidden
// directories such as .git and .github), and returns the repo with every
// problem found: errors and warnings, each naming its file and field. The
// repo is usable only when the problems hold no error.
func Load(fsys fs.FS, dir string, opts LoadOptions) (*Repo, api.Problems) {
	if dir == "" {
		dir = "."
	}
	l := &loader{opts: opts, vopts: opts.validation(), repo: &Repo{sizes: api.SizeCache{}}}
	if l.vopts.Sizes == nil {
		l.vopts.Sizes = l.repo.sizes
	}
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			l.add(api.Problem{File: rel(dir, p), Message: fmt.Sprintf("read: %v", err), Severity: api.SeverityError})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(p); (ext == ".yaml" || ext == ".yml" || ext == ".bu") && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		l.add(api.Problem{File: dir, Message: fmt.Sprintf("walk %s: %v", dir, err), Severity: api.SeverityError})
	}
	// Most files of a config repo are MachineConfigs: room for one per
	// file spares the copies of growing a list of large structs.
	l.repo.MachineConfigs = make([]Source[MachineConfig], 0, len(files))
	for _, p := range files {
		if fi, err := fs.Stat(fsys, p); err == nil && fi.Size() > api.MaxYAMLBytes {
			l.add(api.Problem{File: rel(dir, p), Message: fmt.Sprintf("file is %d bytes, over the limit of %d for one manifest file", fi.Size(), api.MaxYAMLBytes), Severity: api.SeverityError})
			continue
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			l.add(api.Problem{File: rel(dir, p), Message: fmt.Sprintf("read: %v", err), Severity: api.SeverityError})
			continue
		}
		if path.Ext(p) == ".bu" {
			l.loadButane(fsys, dir, rel(dir, p), data)
			continue
		}
		l.loadFile(rel(dir, p), data)
	}
	l.finish()
	ps := l.problems
	if opts.Strict {
		for i := range ps {
			ps[i].Severity = api.SeverityError
		}
	}
	return l.repo, ps
}

// LoadBytes loads one YAML file's content as if it were the file name; it
// serves tests and callers that hold manifests in memory.
func LoadBytes(name string, data []byte, opts LoadOptions) (*Repo, api.Problems) {
	return Load(fstest.MapFS{name: {Data: data}}, ".", opts)
}

func rel(dir, p string) string {
	if dir == "." || dir == "" {
		return p
	}
	if r := strings.TrimPrefix(p, strings.TrimSuffix(dir, "/")+"/"); r != p {
		return r
	}
	return p
}

type loader struct {
	opts     LoadOptions
	vopts    api.ValidationOptions
	repo     *Repo
	problems api.Problems
	// configurations counts MachineConfiguration objects named cluster.
	configurationFile string
	// gen collects the objects reconciler/generate expands.
	gen    generate.Input
	shared sharedMeta // the label and annotation maps MachineConfigs share
}

func (l *loader) add(ps ...api.Problem) { l.problems = append(l.problems, ps...) }

func (l *loader) addAt(file, prefix string, ps api.Problems) {
	for _, p := range ps {
		p.File = file
		if prefix != "" {
			if p.Field == "" {
				p.Field = prefix
			} else {
				p.Field = prefix + "." + p.Field
			}
		}
		l.add(p)
	}
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	data []byte
	line int
}

var docSep = regexp.MustCompile(`^---(\s|#|$)`)

// splitDocuments splits a YAML stream on "---" lines, remembering where
// each document starts so syntax errors can name the file's line. The
// documents are slices of data, not copies.
func splitDocuments(data []byte) []document {
	var docs []document
	start, from, line := 1, 0, 0
	for off := 0; off < len(data); {
		end := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		line++
		trimmed := bytes.TrimRight(data[off:end], "\r\n")
		// The prefix test spares the regexp on all but separator lines.
		if (bytes.HasPrefix(trimmed, []byte("---")) && docSep.Match(trimmed)) || bytes.Equal(trimmed, []byte("...")) {
			docs = append(docs, document{data: data[from:off:off], line: start})
			// Keep the line count: content after "---" on the same line
			// is rare and not supported; keep an empty line in its place.
			start = line + 1
			from = end
		}
		off = end
	}
	docs = append(docs, document{data: data[from:len(data):len(data)], line: start})
	return docs
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func (l *loader) loadFile(file string, data []byte) {
	n := 0
	for _, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(doc.data)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc.data)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			msg = yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
				n, _ := strconv.Atoi(strings.TrimPrefix(s, "line "))
				return "line " + strconv.Itoa(n+doc.line-1)
			})
			l.add(api.Problem{File: file, Message: "invalid YAML: " + msg, Severity: api.SeverityError})
			continue
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		l.loadObject(file, n, -1, "", js)
		n++
	}
}

// typeMeta reads apiVersion and kind without caring about the rest.
type typeMeta struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Items      json.RawMessage `json:"items"`
}

func (l *loader) loadObject(file string, doc, item int, prefix string, js []byte) {
	js = bytes.TrimSpace(js)
	if bytes.Equal(js, []byte("null")) || len(js) == 0 {
		return
	}
	if js[0] != '{' {
		l.add(api.Problem{File: file, Field: prefix, Message: "not a Kubernetes object (not a mapping); ignored", Severity: api.SeverityWarning})
		return
	}
	// Most documents are MachineConfigs with a spec 3 config: one decode
	// gives all of it (decodeMachineConfig3), without a first pass for
	// apiVersion and kind alone.
	if bytes.Contains(js, []byte(`"kind":"`+api.KindMachineConfig+`"`)) {
		if doc3, ok := decodeMachineConfig3(js); ok {
			l.loadMachineConfig(objCtx{l: l, file: file, doc: doc, item: item, prefix: prefix}, js, doc3)
			return
		}
	}
	var tm typeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		l.addAt(file, prefix, errorAt("", "read apiVersion and kind: %v", err))
		return
	}
	group, version, _ := strings.Cut(tm.APIVersion, "/")
	if !strings.Contains(tm.APIVersion, "/") {
		group, version = "", tm.APIVersion
	}
	at := func(f string) string {
		if prefix == "" {
			return f
		}
		if f == "" {
			return prefix
		}
		return prefix + "." + f
	}
	switch {
	case tm.Kind == "List" && group == "":
		if item >= 0 {
			l.addAt(file, prefix, errorAt("kind", "a List inside a List is not supported"))
			return
		}
		var items []json.RawMessage
		if err := json.Unmarshal(tm.Items, &items); err != nil && len(tm.Items) > 0 {
			l.addAt(file, prefix, errorAt("items", "must be a list of objects: %v", err))
			return
		}
		for i, it := range items {
			l.loadObject(file, doc, i, at("items["+strconv.Itoa(i)+"]"), it)
		}
		return
	case tm.APIVersion == "" || tm.Kind == "":
		l.add(api.Problem{File: file, Field: prefix, Message: "no apiVersion or kind: not a Kubernetes object; ignored", Severity: api.SeverityWarning})
		return
	}
	ctx := objCtx{l: l, file: file, doc: doc, item: item, prefix: prefix}
	switch group {
	case "machineconfiguration.openshift.io":
		if version != "v1" {
			ctx.errorf("apiVersion", "unsupported version %q of %s (want v1)", version, group)
			return
		}
		switch tm.Kind {
		case api.KindMachineConfig:
			l.loadMachineConfig(ctx, js, nil)
		case api.KindMachineConfigPool:
			l.loadPool(ctx, js)
		case api.KindKubeletConfig:
			l.loadKubeletConfig(ctx, js)
		case api.KindContainerRuntimeConfig:
			l.loadContainerRuntimeConfig(ctx, js)
		default:
			ctx.errorf("kind", "unknown kind %s in %s", tm.Kind, group)
		}
	case "operator.openshift.io":
		switch {
		case tm.Kind == api.KindMachineConfiguration && version == "v1":
			l.loadMachineConfiguration(ctx, js)
		case tm.Kind == generate.KindImageContentSourcePolicy && version == "v1alpha1":
			l.loadMirrorSet(ctx, js)
		default:
			ctx.errorf("kind", "unknown kind %s in %s", tm.Kind, tm.APIVersion)
		}
	case "config.openshift.io":
		switch {
		case (tm.Kind == generate.KindImageDigestMirrorSet || tm.Kind == generate.KindImageTagMirrorSet) && version == "v1":
			l.loadMirrorSet(ctx, js)
		case tm.Kind == generate.KindImage && version == "v1":
			l.loadImage(ctx, js)
		default:
			ctx.errorf("kind", "unknown kind %s in %s", tm.Kind, tm.APIVersion)
		}
	default:
		if strings.HasSuffix(group, ".openshift.io") && strings.Contains(group, "machineconfiguration") {
			ctx.errorf("apiVersion", "unknown API group %s", group)
			return
		}
		ctx.warnf("", "%s %s is not a kind Stoker reads; ignored", tm.APIVersion, tm.Kind)
	}
}

const (
	disruptionConfigurationName = "cluster"
	nodeDisruptionPolicyField   = "spec.nodeDisruptionPolicy"
	metadataNameField           = "metadata.name"
	metadataLabelsField         = "metadata.labels"
)
