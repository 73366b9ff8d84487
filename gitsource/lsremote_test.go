package gitsource

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"stoker.dev/stoker/test/gitserver"
)

// TestGitProtoAdvertisedMatchesGoGit holds the buffered git:// ref check
// to go-git's own session on a real git daemon: the same refs, peeled
// tags and HEAD; and a missing or empty repository fails (or is empty) as
// go-git says, through the fallback.
func TestGitProtoAdvertisedMatchesGoGit(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	head := srv.SeedRepo(t, "cfg.git", map[string]string{"a": "a\n"}, "stoker/status")
	var refs strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&refs, "create refs/heads/stoker/reports/n-%03d %s\n", i, head)
	}
	cmd := exec.Command("git", "update-ref", "--stdin")
	cmd.Dir, cmd.Stdin = srv.Path("cfg.git"), strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git update-ref: %v: %s", err, out)
	}
	if out, err := gitserver.GitCombined(srv.Path("cfg.git"), nil, "tag", "-a", "-m", "t", "v1", head); err != nil {
		t.Fatalf("git tag: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ep, err := transport.NewEndpoint(srv.URL("cfg.git"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := gitProtoAdvertised(ctx, ep)
	if err != nil {
		t.Fatalf("gitProtoAdvertised: %v", err)
	}
	s, err := newGoGitSession(ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.AdvertisedReferencesContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(got.References) != 302 || !reflect.DeepEqual(got.References, want.References) {
		t.Errorf("refs: got %d, go-git %d (or they differ)", len(got.References), len(want.References))
	}
	if !reflect.DeepEqual(got.Peeled, want.Peeled) || len(got.Peeled) != 1 {
		t.Errorf("peeled: got %v, go-git %v", got.Peeled, want.Peeled)
	}
	if !reflect.DeepEqual(got.Head, want.Head) {
		t.Errorf("HEAD: got %v, go-git %v", got.Head, want.Head)
	}

	g, err := Open(Options{URL: srv.URL("cfg.git"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := g.Head(ctx, "stoker/status"); err != nil || h != head {
		t.Errorf("Head = %q, %v; want %s", h, err, head)
	}
	if r, err := g.Refs(ctx, "stoker/reports/"); err != nil || len(r) != 300 {
		t.Errorf("Refs = %d refs, %v; want 300", len(r), err)
	}

	srv.CreateRepo(t, "empty.git")
	e, err := Open(Options{URL: srv.URL("empty.git"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.Refs(ctx, ""); err != nil || len(r) != 0 {
		t.Errorf("Refs of an empty repository = %v, %v; want none", r, err)
	}
	if _, err := e.Head(ctx, "stoker/status"); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Head of an empty repository: %v; want ErrRefNotFound", err)
	}

	_, wantErr := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{srv.URL("missing.git")}}).
		ListContext(ctx, &git.ListOptions{})
	m, err := Open(Options{URL: srv.URL("missing.git"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Head(ctx, "stoker/status")
	if err == nil || wantErr == nil || !strings.Contains(err.Error(), wantErr.Error()) {
		t.Fatalf("Head of a missing repository: %v; want go-git's %v", err, wantErr)
	}
	t.Logf("a missing repository: %v", err)
}
