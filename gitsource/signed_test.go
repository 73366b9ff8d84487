package gitsource_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"golang.org/x/crypto/ssh"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/trust"
)

// pgpSigner signs with an OpenPGP entity, as go-git's SignKey does.
type pgpSigner struct{ e *openpgp.Entity }

func (s pgpSigner) Sign(m io.Reader) ([]byte, error) {
	var b bytes.Buffer
	err := openpgp.ArmoredDetachSign(&b, s.e, m, nil)
	return b.Bytes(), err
}

// TestSignedCommitsVerifyWithGit: commits gitsource signs (SSH and
// OpenPGP) verify with `git verify-commit` (ssh-keygen and gpg underneath)
// and with trust.Set over gitsource's History.
func TestSignedCommitsVerifyWithGit(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "hub")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "hub_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshSigner, err := trust.LoadSSHSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pubLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshSigner.PublicKey())))
	allowed := filepath.Join(dir, "allowed")
	if err := os.WriteFile(allowed, []byte("hub@stoker "+pubLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	entity, err := openpgp.NewEntity("Reviewer", "", "reviewer@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pubArmor bytes.Buffer
	w, err := armor.Encode(&pubArmor, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := entity.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()

	for _, tc := range []struct {
		name   string
		signer gitsource.Signer
		trust  string
		kind   string
	}{
		{"ssh", sshSigner, "hub@stoker " + pubLine + "\n", "ssh"},
		{"openpgp", pgpSigner{entity}, pubArmor.String(), "openpgp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := gitserver.New(t, gitserver.Daemon)
			url := srv.CreateRepo(t, "status")
			g, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: t.TempDir(), Signer: tc.signer})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c, err := g.Commit(ctx, gitsource.CommitRequest{Branch: "stoker/status", Changes: map[string][]byte{"a": []byte("a\n")}, Message: "signed"})
			if err != nil {
				t.Fatal(err)
			}
			env := []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gpg.ssh.allowedSignersFile", "GIT_CONFIG_VALUE_0=" + allowed}
			if tc.kind == "openpgp" {
				if _, err := exec.LookPath("gpg"); err != nil {
					t.Skip("gpg not installed")
				}
				home := filepath.Join(t.TempDir(), "gnupg")
				if err := os.MkdirAll(home, 0o700); err != nil {
					t.Fatal(err)
				}
				imp := exec.Command("gpg", "--batch", "--homedir", home, "--import")
				imp.Stdin = strings.NewReader(pubArmor.String())
				if out, err := imp.CombinedOutput(); err != nil {
					t.Fatalf("gpg --import: %v: %s", err, out)
				}
				env = append(env, "GNUPGHOME="+home)
			}
			if out, err := gitserver.Git(srv.Path("status"), env, "verify-commit", "-v", c); err != nil {
				t.Fatalf("git verify-commit %s: %v: %s", c, err, out)
			}
			set, err := trust.Parse(tc.name, []byte(tc.trust))
			if err != nil {
				t.Fatal(err)
			}
			tc2, err := g.History().Commit(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			v, err := set.Verify(tc2.Signed, "")
			if err != nil || v.Kind != tc.kind {
				t.Fatalf("trust verify: %+v %v", v, err)
			}
			if _, err := (&trust.Set{}).Verify(tc2.Signed, ""); err == nil {
				t.Fatal("an empty trust set accepted the commit")
			}
		})
	}
}
