package render

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"stoker.dev/stoker/api"
)

// AddLines sets the Line of every problem that names a YAML file of fsys
// and a field path found in it (the first document holding the path), so
// CI annotations point at the line. Files over api.MaxYAMLBytes are left
// alone (their problem already says so).
func AddLines(fsys fs.FS, ps api.Problems) {
	docs := map[string][]*yaml.Node{}
	for i := range ps {
		p := &ps[i]
		if p.File == "" || p.Line > 0 {
			continue
		}
		nodes, ok := docs[p.File]
		if !ok {
			nodes = parseDocs(fsys, p.File)
			docs[p.File] = nodes
		}
		for _, d := range nodes {
			if n := findField(d, p.Field); n != nil {
				p.Line = n.Line
				break
			}
		}
		if p.Line == 0 && len(nodes) == 1 && p.Field == "" {
			p.Line = 1
		}
	}
}

func parseDocs(fsys fs.FS, file string) []*yaml.Node {
	f, err := fsys.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, api.MaxYAMLBytes+1))
	if err != nil || len(data) > api.MaxYAMLBytes {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if !errors.Is(err, io.EOF) {
				return out
			}
			return out
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			out = append(out, n.Content[0])
		}
	}
}

var indexRE = regexp.MustCompile(`^\[(\d+)\]`)

// findField walks path ("spec.config.storage.files[2].path"; keys may
// hold dots, as annotation names do) from n; nil when it is not there.
// An empty path is the document itself.
func findField(n *yaml.Node, path string) *yaml.Node {
	for path != "" {
		path = strings.TrimPrefix(path, ".")
		if m := indexRE.FindStringSubmatch(path); m != nil {
			i, _ := strconv.Atoi(m[1])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return nil
			}
			n, path = n.Content[i], path[len(m[0]):]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		// The longest key that prefixes the path at a separator.
		var best *yaml.Node
		bestLen := -1
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if strings.HasPrefix(path, k) && len(k) > bestLen {
				rest := path[len(k):]
				if rest == "" || rest[0] == '.' || rest[0] == '[' {
					best, bestLen = n.Content[i+1], len(k)
					if rest == "" {
						// the key's own line is the field's
						best = n.Content[i]
					}
				}
			}
		}
		if best == nil {
			return nil
		}
		n, path = best, path[bestLen:]
	}
	return n
}
