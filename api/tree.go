package api

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// ReadYAMLDir calls fn with the base name (without .yaml) and bytes of each
// *.yaml file directly under dir of a branch tree (pools/, nodes/); a
// missing dir holds nothing.
func ReadYAMLDir(tree fs.FS, dir string, fn func(name string, data []byte) error) error {
	entries, err := fs.ReadDir(tree, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s/: %w", dir, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(tree, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, e.Name(), err)
		}
		if err := fn(name, data); err != nil {
			return fmt.Errorf("%s/%s: %w", dir, e.Name(), err)
		}
	}
	return nil
}
