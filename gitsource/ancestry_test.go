package gitsource_test

import (
	"context"
	"strings"
	"testing"

	"stoker.dev/stoker/test/gitserver"
)

// TestDescends checks forward moves, rewinds (to a commit the cache holds
// and to one older than its shallow first fetch) and unrelated histories
// against a real git daemon, with a shallow cache and a fresh one.
func TestDescends(t *testing.T) {
	ctx := context.Background()
	r := newRemote(t, "daemon", "anc.git")
	const b = "stoker/status"
	c0 := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, b)
	c1 := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "1"}, b)
	g := r.open(t, "")
	fetch := func(want string) {
		t.Helper()
		got, err := g.Fetch(ctx, b)
		if err != nil || got[b] != want {
			t.Fatalf("Fetch = %v, %v; want %s", got, err, want)
		}
	}
	descends := func(anc, c string, want bool) {
		t.Helper()
		got, err := g.Descends(ctx, b, anc, c)
		if err != nil || got != want {
			t.Fatalf("Descends(%.7s, %.7s) = %v, %v; want %v", anc, c, got, err, want)
		}
	}
	fetch(c1) // depth 1: the cache holds c1 only
	c2 := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "2"}, b)
	c3 := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "3"}, b)
	fetch(c3)
	descends(c1, c3, true)
	descends(c3, c3, true)
	descends(c0, c3, true) // c0 is beyond the shallow edge: deepened

	// A cache that starts at c3 (depth 1) still sees c1 → c3 as forward.
	g2 := r.open(t, "")
	if _, err := g2.Fetch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ok, err := g2.Descends(ctx, b, c1, c3); err != nil || !ok {
		t.Fatalf("fresh cache: Descends(c1, c3) = %v, %v; want true", ok, err)
	}

	// Rewinds: to c2 (in the cache) and to c0 (never fetched by g2).
	move := func(to string) {
		t.Helper()
		if _, err := gitserver.Git(r.srv.Path(r.repo), nil, "update-ref", "refs/heads/"+b, to); err != nil {
			t.Fatal(err)
		}
	}
	move(c2)
	fetch(c2)
	descends(c3, c2, false)
	move(c0)
	if got, err := g2.Fetch(ctx, b); err != nil || got[b] != c0 {
		t.Fatalf("fetch rewound c0 = %v, %v", got, err)
	}
	if ok, err := g2.Descends(ctx, b, c3, c0); err != nil || ok {
		t.Fatalf("rewind to c0: Descends(c3, c0) = %v, %v; want false", ok, err)
	}

	// An unrelated history pushed over the branch.
	orphan := r.srv.SeedRepo(t, r.repo, map[string]string{"g": "x"}, "other")
	move(orphan)
	fetch(orphan)
	descends(c3, orphan, false)
	if _, err := g.Descends(ctx, b, "nothex", c3); err == nil || !strings.Contains(err.Error(), "nothex") {
		t.Fatalf("bad hash error = %v", err)
	}
}
