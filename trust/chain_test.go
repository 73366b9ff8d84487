package trust_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/trust"
)

const signersPath = ".stoker/allowed_signers"

type chainRepo struct {
	t      *testing.T
	srv    *gitserver.Server
	name   string
	g      *gitsource.GoGit
	chain  *trust.Chain
	branch string
}

func newChainRepo(t *testing.T, root *trust.Set) *chainRepo {
	srv := gitserver.New(t, gitserver.Daemon)
	srv.CreateRepo(t, "config")
	g, err := gitsource.Open(gitsource.Options{URL: srv.URL("config"), WorkDir: t.TempDir(), FullHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	return &chainRepo{t: t, srv: srv, name: "config", g: g, branch: "main",
		chain: &trust.Chain{Root: root, SignersPath: signersPath, Guarded: []string{".stoker/node_signers"}}}
}

// commit makes a commit with the git CLI, signed with key ("" = unsigned).
func (r *chainRepo) commit(files map[string]string, key string) string {
	r.t.Helper()
	c, err := gitserver.CommitFilesSigned(r.srv.Path(r.name), r.branch, files, nil, "change", key)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *chainRepo) verify(head string) (trust.Verdict, error) {
	r.t.Helper()
	if _, err := r.g.Fetch(context.Background(), r.branch); err != nil {
		r.t.Fatal(err)
	}
	return r.chain.Verify(context.Background(), r.g.History(), head)
}

func mustRefuse(t *testing.T, err error, want error, text string) {
	t.Helper()
	if !trust.IsRefused(err) || !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
		t.Fatalf("want a refusal wrapping %v mentioning %q, got %v", want, text, err)
	}
}

// TestChain walks real histories made and signed by the git CLI (ssh-keygen
// signs), read back through gitsource from a git daemon.
func TestChain(t *testing.T) {
	dir := t.TempDir()
	alice, alicePub := sshKeygen(t, dir, "alice") // in the trust root
	bob, bobPub := sshKeygen(t, dir, "bob")       // added by the repo file
	mallory, malloryPub := sshKeygen(t, dir, "mallory")
	rootFile := filepath.Join(dir, "root")
	if err := os.WriteFile(rootFile, []byte("alice@example.com "+alicePub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := trust.LoadFiles(rootFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("signed by the root", func(t *testing.T) {
		r := newChainRepo(t, root)
		head := r.commit(map[string]string{"a.yaml": "a"}, alice)
		v, err := r.verify(head)
		if err != nil || v.By.Kind != "ssh" || !strings.Contains(v.By.Signer, "alice@example.com") {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		r := newChainRepo(t, root)
		r.commit(map[string]string{"a.yaml": "a"}, alice)
		head := r.commit(map[string]string{"a.yaml": "b"}, "")
		_, err := r.verify(head)
		mustRefuse(t, err, trust.ErrUnsigned, head[:12])
	})
	t.Run("untrusted key", func(t *testing.T) {
		r := newChainRepo(t, root)
		head := r.commit(map[string]string{"a.yaml": "a"}, mallory)
		_, err := r.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, "SHA256:")
	})
	t.Run("repo signers extend the root", func(t *testing.T) {
		r := newChainRepo(t, root)
		r.commit(map[string]string{signersPath: "bob@example.com " + bobPub + "\n"}, alice)
		head := r.commit(map[string]string{"a.yaml": "by bob"}, bob)
		v, err := r.verify(head)
		if err != nil || !strings.Contains(v.By.Signer, "bob@example.com") {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
		// Bob can change the file too: he is trusted at its parent.
		head = r.commit(map[string]string{signersPath: "bob@example.com " + bobPub + "\ncarol@example.com " + malloryPub + "\n"}, bob)
		if _, err := r.verify(head); err != nil {
			t.Fatal(err)
		}
		// Alice removes bob; bob's next commit is refused.
		r.commit(map[string]string{signersPath: "# nobody\n"}, alice)
		head = r.commit(map[string]string{"a.yaml": "bob again"}, bob)
		_, err = r.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, "ssh key")
	})
	t.Run("signers changed by an untrusted commit", func(t *testing.T) {
		r := newChainRepo(t, root)
		r.commit(map[string]string{"a.yaml": "a"}, alice)
		// Mallory adds herself and signs with her own key.
		head := r.commit(map[string]string{signersPath: "mallory@example.com " + malloryPub + "\n"}, mallory)
		_, err := r.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, "SHA256:")
		// An unsigned change, then a root-signed commit on top: still
		// refused, the file differs from its last trusted version.
		r2 := newChainRepo(t, root)
		r2.commit(map[string]string{"a.yaml": "a"}, alice)
		bad := r2.commit(map[string]string{signersPath: "mallory@example.com " + malloryPub + "\n"}, "")
		head = r2.commit(map[string]string{"a.yaml": "b"}, alice)
		_, err = r2.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, signersPath+" differs from its last trusted version: changed by commit "+bad[:12])
		// Mallory's key does not count at the next commit either.
		head = r2.commit(map[string]string{"a.yaml": "c"}, mallory)
		_, err = r2.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, "SHA256:")
		// Alice puts a reviewed file in place: trusted again.
		head = r2.commit(map[string]string{signersPath: "bob@example.com " + bobPub + "\n"}, alice)
		if _, err := r2.verify(head); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("guarded node signers", func(t *testing.T) {
		r := newChainRepo(t, root)
		r.commit(map[string]string{".stoker/node_signers": "node-1 " + bobPub + "\n"}, alice)
		head := r.commit(map[string]string{"a.yaml": "a"}, alice)
		v, err := r.verify(head)
		if err != nil || !strings.Contains(string(v.Files[".stoker/node_signers"]), "node-1") {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
		r.commit(map[string]string{".stoker/node_signers": "node-1 " + malloryPub + "\n"}, "")
		head = r.commit(map[string]string{"a.yaml": "b"}, alice)
		_, err = r.verify(head)
		mustRefuse(t, err, trust.ErrUntrusted, ".stoker/node_signers differs")
	})
	t.Run("merge judged at its first parent", func(t *testing.T) {
		r := newChainRepo(t, root)
		base := r.commit(map[string]string{"a.yaml": "a"}, alice)
		// A side branch with an unsigned commit adding bob as a signer.
		r.branch = "feature"
		if _, err := gitserver.Git(r.srv.Path(r.name), nil, "update-ref", "refs/heads/feature", base); err != nil {
			t.Fatal(err)
		}
		side := r.commit(map[string]string{signersPath: "bob@example.com " + bobPub + "\n"}, "")
		r.branch = "main"
		tree, err := gitserver.Git(r.srv.Path(r.name), nil, "rev-parse", side+"^{tree}")
		if err != nil {
			t.Fatal(err)
		}
		merge := func(key string) string {
			t.Helper()
			out, err := gitserver.Git(r.srv.Path(r.name), nil, "-c", "gpg.format=ssh", "-c", "user.signingKey="+key,
				"commit-tree", strings.TrimSpace(tree), "-p", base, "-p", side, "-m", "merge feature", "-S")
			if err != nil {
				t.Fatal(err)
			}
			c := strings.TrimSpace(out)
			if _, err := gitserver.Git(r.srv.Path(r.name), nil, "update-ref", "refs/heads/main", c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		// Signed by the root: the merge vouches for the side branch, and
		// bob is trusted from then on.
		if _, err := r.verify(merge(alice)); err != nil {
			t.Fatalf("root-signed merge: %v", err)
		}
		if _, err := r.verify(r.commit(map[string]string{"a.yaml": "by bob"}, bob)); err != nil {
			t.Fatalf("bob after the merge: %v", err)
		}
		// The same merge signed by bob himself (not yet trusted at the
		// first parent) is refused.
		if _, err := gitserver.Git(r.srv.Path(r.name), nil, "update-ref", "refs/heads/main", base); err != nil {
			t.Fatal(err)
		}
		if r.g, err = gitsource.Open(gitsource.Options{URL: r.srv.URL(r.name), WorkDir: t.TempDir(), FullHistory: true}); err != nil {
			t.Fatal(err)
		}
		r.chain = &trust.Chain{Root: root, SignersPath: signersPath}
		_, err = r.verify(merge(bob))
		mustRefuse(t, err, trust.ErrUntrusted, "SHA256:")
	})
	t.Run("incremental and depth bound", func(t *testing.T) {
		r := newChainRepo(t, root)
		r.commit(map[string]string{signersPath: "bob@example.com " + bobPub + "\n"}, alice)
		var head string
		for i := 0; i < 5; i++ {
			head = r.commit(map[string]string{"a.yaml": strings.Repeat("x", i)}, bob)
		}
		r.chain.MaxDepth = 3
		_, err := r.verify(head)
		if err == nil || trust.IsRefused(err) || !strings.Contains(err.Error(), "more than 3 commits") {
			t.Fatalf("want the depth bound, got %v", err)
		}
		r.chain.MaxDepth = 0
		if _, err := r.verify(head); err != nil {
			t.Fatal(err)
		}
		r.chain.MaxDepth = 3 // walks only from the last verified head now
		head = r.commit(map[string]string{"a.yaml": "next"}, bob)
		if _, err := r.verify(head); err != nil {
			t.Fatal(err)
		}
	})
}
