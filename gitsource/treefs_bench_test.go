package gitsource_test

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// BenchmarkTreeReadDirFiles reads every file of a directory of 1,000, as
// the hub reads nodes/ on stoker/fleet each loop: each directory is
// decoded once per tree (it was once per file read: O(N²) at N nodes,
// ~200 MB allocated per hub loop at 1,000).
func BenchmarkTreeReadDirFiles(b *testing.B) {
	s := gitserver.New(b, gitserver.Daemon)
	url := s.CreateRepo(b, "fleet.git")
	files := map[string]string{}
	for i := 0; i < 1000; i++ {
		files[fmt.Sprintf("nodes/node-%05d.yaml", i)] = fmt.Sprintf("name: node-%05d\nstate: Done\n", i)
	}
	s.SeedRepo(b, "fleet.git", files, "main")
	g, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: filepath.Join(b.TempDir(), "cache")})
	if err != nil {
		b.Fatal(err)
	}
	heads, err := g.Fetch(context.Background(), "main")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tree, err := g.Tree(context.Background(), heads["main"])
		if err != nil {
			b.Fatal(err)
		}
		entries, err := fs.ReadDir(tree, "nodes")
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if _, err := fs.ReadFile(tree, "nodes/"+e.Name()); err != nil {
				b.Fatal(err)
			}
		}
	}
}
