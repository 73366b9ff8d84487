package review

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffSignature: `stoker diff` says whether HEAD is a commit the hub
// would render: signed by the trust root or by BASE's allowed signers, or
// unverified (unsigned, unknown key, no trust root), in text and markdown.
func TestDiffSignature(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (openssh-client)")
	}
	keys := t.TempDir()
	key := func(name string) (string, string) {
		k := filepath.Join(keys, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return k, strings.TrimSpace(string(pub))
	}
	alice, alicePub := key("alice")
	bob, bobPub := key("bob")
	mallory, _ := key("mallory")
	root := filepath.Join(keys, "root")
	if err := os.WriteFile(root, []byte("alice@example.com "+alicePub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := diffBase()
	base[DefaultRepoSigners] = "bob@example.com " + bobPub + "\n"
	head := map[string]string{"machineconfigs/99-x.yaml": "# x\n"}
	cases := []struct {
		name, key string
		roots     []string
		want      string
	}{
		{"root key", alice, []string{root}, "signature: verified: HEAD signed by ssh key SHA256:"},
		{"repo signer at BASE", bob, []string{root}, "(bob@example.com, base:.stoker/allowed_signers:1)"},
		{"unknown key", mallory, []string{root}, "signature: unverified: HEAD signed by an untrusted key: ssh key SHA256:"},
		{"unsigned", "", []string{root}, "signature: unverified: HEAD is unsigned"},
		// Without the root only BASE's file counts, and it lists bob.
		{"root key without --trust-root", alice, nil, "signature: unverified: HEAD signed by an untrusted key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := gitRepo(t, base, nil)
			args := []string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}
			if tc.key != "" {
				args = append(args, "-c", "gpg.format=ssh", "-c", "user.signingKey="+tc.key)
			}
			args = append(args, "commit", "-q", "--allow-empty", "-m", "signed head")
			if tc.key != "" {
				args = append(args, "-S")
			}
			for name, data := range head {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := exec.Command("git", "-C", dir, "add", "-A").CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			cmd := exec.Command("git", args...)
			cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git commit: %v %s", err, out)
			}
			for _, format := range []string{"text", "markdown"} {
				var out bytes.Buffer
				err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "HEAD", Dir: dir, Output: format, TrustRoots: tc.roots, Stdout: &out})
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				if format == "markdown" {
					want = strings.TrimPrefix(want, "signature: ")
				}
				if !strings.Contains(out.String(), want) {
					t.Fatalf("%s output does not say %q:\n%s", format, want, out.String())
				}
			}
		})
	}
}
