package gitsource_test

import (
	"context"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// TestFetchCheckedSkipsTheRefCheck: a fetch at the commit the caller just
// checked (an agent's poll that saw stoker/status move, the hub's loop)
// makes no ref check of its own, so the Git server sends at least one
// advertisement less than Fetch for the same objects; and when the
// branch moved again after the check, a first (depth-1) fetch returns the
// newer head, which is readable (the checked one is not in the cache).
func TestFetchCheckedSkipsTheRefCheck(t *testing.T) {
	ctx := context.Background()
	srv := gitserver.New(t, gitserver.Daemon)
	counter := gitserver.NewCounter(t, srv)
	srv.CreateRepo(t, "r.git")
	srv.SeedRepo(t, "r.git", map[string]string{"a": "1\n"}, "main")
	old := srv.SeedRepo(t, "r.git", map[string]string{"s": "1\n"}, "stoker/status")
	open := func() *gitsource.GoGit {
		g, err := gitsource.Open(gitsource.Options{URL: counter.URL("r.git"), WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	plain, checked := open(), open()
	for _, g := range []*gitsource.GoGit{plain, checked} {
		if _, err := g.Fetch(ctx, "stoker/status"); err != nil {
			t.Fatal(err)
		}
	}
	head := srv.SeedRepo(t, "r.git", map[string]string{"s": "2\n"}, "stoker/status")
	counter.Quiet()
	before := counter.Sent()
	if _, err := plain.Head(ctx, "stoker/status"); err != nil {
		t.Fatal(err)
	}
	counter.Quiet()
	adv := counter.Sent() - before

	before = counter.Sent()
	got, err := plain.Fetch(ctx, "stoker/status")
	if err != nil || got["stoker/status"] != head {
		t.Fatalf("Fetch = %v, %v; want stoker/status at %s", got, err, head)
	}
	counter.Quiet()
	viaFetch := counter.Sent() - before

	before = counter.Sent()
	got, err = gitsource.FetchChecked(ctx, checked, map[string]string{"stoker/status": head}, "stoker/status")
	if err != nil || got["stoker/status"] != head {
		t.Fatalf("FetchChecked = %v, %v; want stoker/status at %s", got, err, head)
	}
	counter.Quiet()
	viaChecked := counter.Sent() - before
	t.Logf("advertisement %d B; moved branch: Fetch %d B, FetchChecked %d B", adv, viaFetch, viaChecked)
	// The packs may differ by a few bytes (their headers); a saving of
	// less than most of one advertisement means a ref check was made.
	if viaFetch-viaChecked < adv*9/10 {
		t.Fatalf("FetchChecked saved %d B against Fetch; want about the advertisement (%d B)", viaFetch-viaChecked, adv)
	}
	if _, err := checked.Tree(ctx, head); err != nil {
		t.Fatal(err)
	}

	// Moved again between the check and a first fetch (depth 1).
	fresh := open()
	newer := srv.SeedRepo(t, "r.git", map[string]string{"s": "3\n"}, "stoker/status")
	got, err = gitsource.FetchChecked(ctx, fresh, map[string]string{"stoker/status": head}, "stoker/status")
	if err != nil || got["stoker/status"] != newer {
		t.Fatalf("FetchChecked after another push = %v, %v; want stoker/status at %s (checked at %s, before at %s)", got, err, newer, head, old)
	}
	if _, err := fresh.Tree(ctx, newer); err != nil {
		t.Fatal(err)
	}
}
