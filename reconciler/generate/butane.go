package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	butane "github.com/coreos/butane/config"
	butanecommon "github.com/coreos/butane/config/common"
	"github.com/coreos/vcontext/report"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
)

// ButaneOptions bound what a Butane file may pull in.
type ButaneOptions struct {
	// MaxFileBytes bounds each local file; MaxTotalBytes all of one Butane
	// file's local files together.
	MaxFileBytes, MaxTotalBytes int64
}

// Butane translates the Butane file name (slash path in fsys) holding
// data into a MachineConfig manifest, with coreos/butane's own library
// and its automatic compression off, so files stay readable in diffs.
// Variant openshift gives the MachineConfig Butane writes; variant fcos
// gives its Ignition config wrapped in a MachineConfig named after the
// file, whose role is the second dash-separated part of the name, as in
// MCO's own names ("99-worker-chrony.bu" → role worker).
//
// Local files (contents.local, contents_local, ssh_authorized_keys_local,
// trees) resolve against the Butane file's directory and only inside it:
// absolute paths, "..", and Git symlinks on the way are refused, naming
// the file. They are copied from fsys into a private temporary directory
// that Butane reads as its files-dir, then removed.
func Butane(fsys fs.FS, name string, data []byte, opts ButaneOptions) ([]byte, api.Problems) {
	var head struct {
		Variant string `json:"variant"`
		Version string `json:"version"`
	}
	js, err := yaml.YAMLToJSON(data)
	if err == nil {
		err = json.Unmarshal(js, &head)
	}
	if err != nil {
		return nil, api.Problems{errorAt(name, "", "invalid Butane YAML: %v", err)}
	}
	switch head.Variant {
	case "openshift", "fcos":
	case "":
		return nil, api.Problems{errorAt(name, "variant", "missing (want openshift or fcos)")}
	default:
		return nil, api.Problems{errorAt(name, "variant", "%q is not supported (want openshift or fcos)", head.Variant)}
	}
	var tree any
	_ = json.Unmarshal(js, &tree)
	var refs []localRef
	collectLocal(tree, "", &refs)
	dir, err := os.MkdirTemp("", "stoker-butane-")
	if err != nil {
		return nil, api.Problems{errorAt(name, "", "create files-dir: %v", err)}
	}
	defer os.RemoveAll(dir)
	m := materialiser{fsys: fsys, base: path.Dir(name), dst: dir, bu: name, opts: opts}
	var ps api.Problems
	for _, r := range refs {
		if err := m.copy(r); err != nil {
			ps = append(ps, errorAt(name, r.field, "%v", err))
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	out, rep, err := butane.TranslateBytes(data, butanecommon.TranslateBytesOptions{
		TranslateOptions: butanecommon.TranslateOptions{FilesDir: dir, NoResourceAutoCompression: true},
	})
	ps = append(ps, reportProblems(name, rep)...)
	if err != nil {
		if len(ps.Errors()) == 0 {
			ps = append(ps, errorAt(name, "", "translate: %s", strings.ReplaceAll(err.Error(), dir, ".")))
		}
		return nil, ps
	}
	if head.Variant == "fcos" {
		wrapped, err := wrapIgnition(name, out)
		if err != nil {
			return nil, append(ps, errorAt(name, "", "%v", err))
		}
		out = wrapped
	}
	return out, ps
}

// wrapIgnition makes an fcos Butane file's Ignition config a MachineConfig.
func wrapIgnition(name string, ign []byte) ([]byte, error) {
	base := strings.TrimSuffix(path.Base(name), path.Ext(name))
	parts := strings.Split(base, "-")
	if len(parts) < 3 {
		return nil, fmt.Errorf("an fcos Butane file is named <order>-<role>-<name>.bu (as 99-worker-chrony.bu) so Stoker knows its MachineConfig's name and role; %q is not", path.Base(name))
	}
	mc := map[string]any{
		"apiVersion": api.MachineConfigGroupVersion,
		"kind":       api.KindMachineConfig,
		"metadata":   map[string]any{"name": base, "labels": map[string]string{api.RoleLabel: parts[1]}},
		"spec":       map[string]any{"config": json.RawMessage(ign)},
	}
	return json.Marshal(mc)
}

// reportProblems turns a Butane report into problems with the YAML path as
// the field.
func reportProblems(name string, r report.Report) api.Problems {
	var ps api.Problems
	for _, e := range r.Entries {
		var b strings.Builder
		for _, el := range e.Context.Path {
			switch v := el.(type) {
			case int:
				b.WriteString("[" + strconv.Itoa(v) + "]")
			default:
				if b.Len() > 0 {
					b.WriteString(".")
				}
				fmt.Fprint(&b, v)
			}
		}
		sev := api.SeverityWarning
		if e.Kind.IsFatal() {
			sev = api.SeverityError
		}
		if e.Kind == report.Info {
			continue
		}
		ps = append(ps, api.Problem{File: name, Field: b.String(), Message: e.Message, Severity: sev})
	}
	return ps
}

// localRef is one local path a Butane file names.
type localRef struct {
	field, path string
	tree        bool
}

// collectLocal finds every key through which Butane reads a local file.
func collectLocal(v any, field string, out *[]localRef) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			f := k
			if field != "" {
				f = field + "." + k
			}
			switch val := t[k].(type) {
			case string:
				if k == "local" || k == "contents_local" {
					*out = append(*out, localRef{field: f, path: val, tree: strings.Contains(field, "trees[")})
				}
			case []any:
				if k == "ssh_authorized_keys_local" {
					for i, s := range val {
						if str, ok := s.(string); ok {
							*out = append(*out, localRef{field: f + "[" + strconv.Itoa(i) + "]", path: str})
						}
					}
					continue
				}
			}
			collectLocal(t[k], f, out)
		}
	case []any:
		for i, e := range t {
			collectLocal(e, field+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// materialiser copies the local files of one Butane file into dst.
type materialiser struct {
	fsys      fs.FS
	base, dst string
	bu        string
	opts      ButaneOptions
	total     int64
}

var errSymlink = errors.New("is a symlink in the repo; Stoker refuses symlinks in Butane local files (copy the file instead)")

func (m *materialiser) copy(r localRef) error {
	p := r.path
	if p == "" || path.IsAbs(p) || strings.Contains(p, "\\") {
		return fmt.Errorf("local path %q must be relative to %s's directory", p, path.Base(m.bu))
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("local path %q leaves %s's directory: traversal refused", p, path.Base(m.bu))
		}
	}
	rel := path.Clean(p)
	full := path.Join(m.base, rel)
	// Every element on the way must be a plain directory or file.
	cur := m.base
	for _, el := range strings.Split(rel, "/") {
		if el == "." {
			continue
		}
		if err := m.notSymlink(cur, el); err != nil {
			return fmt.Errorf("local path %q: %s %w", p, path.Join(cur, el), err)
		}
		cur = path.Join(cur, el)
	}
	fi, err := fs.Stat(m.fsys, full)
	if err != nil {
		return fmt.Errorf("local path %q: %w", p, err)
	}
	if fi.IsDir() {
		if !r.tree {
			return fmt.Errorf("local path %q is a directory", p)
		}
		return fs.WalkDir(m.fsys, full, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("local tree %q: %s %w", p, fp, errSymlink)
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return m.write(fp, strings.TrimPrefix(fp, m.base+"/"), info)
		})
	}
	return m.write(full, rel, fi)
}

func (m *materialiser) notSymlink(dir, name string) error {
	entries, err := fs.ReadDir(m.fsys, dir)
	if err != nil {
		return nil // the Stat below reports what is missing
	}
	for _, e := range entries {
		if e.Name() == name && e.Type()&fs.ModeSymlink != 0 {
			return errSymlink
		}
	}
	return nil
}

func (m *materialiser) write(src, rel string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("local file %s is not a regular file", src)
	}
	if m.opts.MaxFileBytes > 0 && fi.Size() > m.opts.MaxFileBytes {
		return fmt.Errorf("local file %s is %d bytes, over the limit of %d", src, fi.Size(), m.opts.MaxFileBytes)
	}
	m.total += fi.Size()
	if m.opts.MaxTotalBytes > 0 && m.total > m.opts.MaxTotalBytes {
		return fmt.Errorf("local files of %s exceed %d bytes together", m.bu, m.opts.MaxTotalBytes)
	}
	data, err := fs.ReadFile(m.fsys, src)
	if err != nil {
		return fmt.Errorf("read local file %s: %w", src, err)
	}
	if m.opts.MaxFileBytes > 0 && int64(len(data)) > m.opts.MaxFileBytes {
		return fmt.Errorf("local file %s is over the limit of %d bytes", src, m.opts.MaxFileBytes)
	}
	dst := filepath.Join(m.dst, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("materialise %s: %w", src, err)
	}
	mode := os.FileMode(0o600)
	if fi.Mode()&0o111 != 0 {
		mode = 0o700
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("materialise %s: %w", src, err)
	}
	return nil
}
