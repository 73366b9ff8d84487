package gitsource_test

import (
	"context"
	"errors"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// TestOversizeBlobRefusedBeforeRead: a 64 MiB rendered config on the
// status branch is refused from its object header, before its content is
// inflated (the read allocates far less than the blob), and the error
// says so; Stat still reports its size.
func TestOversizeBlobRefusedBeforeRead(t *testing.T) {
	ctx := context.Background()
	r := newRemote(t, "daemon", "big.git")
	big := strings.Repeat("{}\n", 64<<20/3)
	head, err := gitserver.CommitFiles(r.srv.Path(r.repo), "stoker/status", map[string]string{
		"rendered/rendered-worker-big.json": big, "nodes/n.yaml": "desiredConfig: rendered-worker-big\n"}, nil, "big")
	if err != nil {
		t.Fatal(err)
	}
	big = ""
	g, err := gitsource.Open(gitsource.Options{URL: r.url, WorkDir: t.TempDir(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Fetch(ctx, "stoker/status"); err != nil {
		t.Fatal(err)
	}
	tree, err := g.Tree(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, tree, "nodes/n.yaml"); got != "desiredConfig: rendered-worker-big\n" {
		t.Fatalf("small file = %q", got)
	}
	fi, err := fs.Stat(tree, "rendered/rendered-worker-big.json")
	if err != nil || fi.Size() < 60<<20 {
		t.Fatalf("stat = %v, %v", fi, err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = fs.ReadFile(tree, "rendered/rendered-worker-big.json")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, gitsource.ErrBlobTooLarge) || !strings.Contains(err.Error(), "rendered/rendered-worker-big.json") {
		t.Fatalf("read = %v, want ErrBlobTooLarge naming the file", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("refusing the blob allocated %d bytes: it was read", alloc)
	}
}
