package agent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/trust"
)

// genKey makes an ed25519 key pair with ssh-keygen and returns the private
// key file (the public key is file + ".pub").
func genKey(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (openssh-client)")
	}
	key := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return key
}

// publishSigned writes what the hub would on stoker/status, signed by the
// git CLI with key ("" = unsigned, as someone bypassing the hub would).
func (e *env) publishSigned(r *api.Rendered, key string) string {
	e.t.Helper()
	files := map[string]string{}
	nt, err := yaml.Marshal(api.NodeTarget{Name: node, Pool: "worker", DesiredConfig: r.Name})
	must(e.t, err)
	files[api.NodeFile(node)] = string(nt)
	pt, err := yaml.Marshal(api.PoolTarget{Name: "worker", Rendered: r.Name, Disruption: livePolicy})
	must(e.t, err)
	files[api.PoolFile("worker")] = string(pt)
	data, err := r.Encode()
	must(e.t, err)
	files[api.RenderedFile(r.Name)] = string(data)
	must(e.t, e.srv.Create("cfg"))
	c, err := gitserver.CommitFilesSigned(e.srv.Path("cfg"), api.StatusBranch, files, nil, "render", key)
	must(e.t, err)
	return c
}

// TestTrustHubKey: with --trust-hub-key the agent acts only on status
// commits the hub signed. A forged (unsigned) head, a head signed by an
// unknown key and a rewind to an older signed head are refused, reported
// Degraded with the reason, and change nothing on the node; during a key
// rotation both hub keys are accepted.
func TestTrustHubKey(t *testing.T) {
	e := newEnv(t)
	hub1, hub2, mallory := genKey(t, "hub1"), genKey(t, "hub2"), genKey(t, "mallory")
	opts := func(keys ...string) Options {
		o := e.options()
		for _, k := range keys {
			o.TrustHubKeys = append(o.TrustHubKeys, k+".pub")
		}
		return o
	}
	s1 := e.publishSigned(c1, hub1)
	must(t, e.converge(opts(hub1)))
	if r := e.report(); r.State != api.StateDone || !e.at(c1) {
		t.Fatalf("signed c1: report %+v", r)
	}
	systemdCalls := len(e.sd.Systemd.(*nodeops.RootSystemd).Log())
	refused := func(what, head, reason string, keys ...string) {
		t.Helper()
		if err := e.converge(opts(keys...)); err != nil {
			t.Logf("agent: %v", err)
		}
		r := e.report()
		if r.State != api.StateDegraded || r.CurrentConfig != c1.Name || !strings.Contains(r.Reason, head) || !strings.Contains(r.Reason, reason) {
			t.Fatalf("%s: report %+v, want Degraded at %s naming %s and %q", what, r, c1.Name, head, reason)
		}
		if !e.at(c1) {
			t.Fatalf("%s: node left c1", what)
		}
		if n := len(e.sd.Systemd.(*nodeops.RootSystemd).Log()); n != systemdCalls {
			t.Fatalf("%s: systemd called %d more times", what, n-systemdCalls)
		}
		if st, err := LoadState(e.stateDir); err != nil || st.StatusCommit == head {
			t.Fatalf("%s: state %+v (%v): the refused head was recorded", what, st, err)
		}
	}

	forged := e.publishSigned(c2, "")
	refused("forged unsigned", forged, "unsigned", hub1)
	wrongKey := e.publishSigned(c2, mallory)
	refused("untrusted key", wrongKey, "signed by an untrusted key: ssh key SHA256:", hub1)

	// Rotation: the hub now signs with hub2; agents trust both.
	s2 := e.publishSigned(c2, hub2)
	must(t, e.converge(opts(hub1, hub2)))
	if r := e.report(); r.State != api.StateDone || !e.at(c2) {
		t.Fatalf("hub2-signed c2 during rotation: report %+v", r)
	}
	// After the overlap, hub1 is dropped: its signature no longer counts.
	old := e.publishSigned(c1, hub1)
	if err := e.converge(opts(hub2)); err != nil {
		t.Logf("agent: %v", err)
	}
	if r := e.report(); r.State != api.StateDegraded || !strings.Contains(r.Reason, old) || !e.at(c2) {
		t.Fatalf("hub1 after rotation: report %+v", r)
	}

	// Replay: the branch is moved back to s1, correctly signed by hub1 and
	// trusted again here, but older than s2: the ancestry rule refuses it.
	must(t, e.srv.Create("cfg"))
	if _, err := gitserver.Git(e.srv.Path("cfg"), nil, "update-ref", "refs/heads/"+api.StatusBranch, s1); err != nil {
		t.Fatal(err)
	}
	if err := e.converge(opts(hub1, hub2)); err != nil {
		t.Logf("agent: %v", err)
	}
	if r := e.report(); r.State != api.StateDegraded || !strings.Contains(r.Reason, "does not descend") ||
		!strings.Contains(r.Reason, s1) || !strings.Contains(r.Reason, s2) || !e.at(c2) {
		t.Fatalf("rewind to an older signed commit: report %+v", r)
	}
}

// TestSignedReports: with SignKeyFile every report commit is signed by the
// node's key; `git verify-commit` (ssh-keygen) and trust agree, with the
// node name as principal.
func TestSignedReports(t *testing.T) {
	e := newEnv(t)
	key := genKey(t, "node")
	e.publishSigned(c1, "")
	o := e.options()
	o.SignKeyFile = key
	must(t, e.converge(o))
	pub, err := os.ReadFile(key + ".pub")
	must(t, err)
	allowed := filepath.Join(t.TempDir(), "allowed")
	must(t, os.WriteFile(allowed, []byte(node+" "+string(pub)), 0o600))
	env := []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gpg.ssh.allowedSignersFile", "GIT_CONFIG_VALUE_0=" + allowed}
	if out, err := gitserver.Git(e.srv.Path("cfg"), env, "verify-commit", "-v", api.ReportsBranch(node)); err != nil {
		t.Fatalf("git verify-commit: %v: %s", err, out)
	}
	set, err := trust.LoadFiles(allowed)
	must(t, err)
	g, err := gitsource.Open(gitsource.Options{URL: e.srv.URL("cfg"), WorkDir: t.TempDir()})
	must(t, err)
	heads, err := g.Fetch(context.Background(), api.ReportsBranch(node))
	must(t, err)
	c, err := g.History().Commit(context.Background(), heads[api.ReportsBranch(node)])
	must(t, err)
	if _, err := set.Verify(c.Signed, node); err != nil {
		t.Fatalf("report as %s: %v", node, err)
	}
	if _, err := set.Verify(c.Signed, "other-node"); !errors.Is(err, trust.ErrUntrusted) {
		t.Fatalf("report as another node: %v", err)
	}
}

// TestLeastPrivilegeLayout runs the agent in the layout deploy/README.md
// documents: stoker/status read from git-daemon (which the update hook
// makes read-only), reports pushed over git http-backend as the node's own
// user, which deploy/git-hooks/update lets push only its own report ref.
func TestLeastPrivilegeLayout(t *testing.T) {
	e := newEnv(t)
	hub := genKey(t, "hub")
	e.publishSigned(c1, hub)
	httpSrv, err := gitserver.StartHTTP(e.srv.Root)
	must(t, err)
	t.Cleanup(func() { _ = httpSrv.Close() })
	must(t, e.srv.InstallHook("cfg", "update", filepath.Join("..", "deploy", "git-hooks", "update"), "stoker.hubUser", "hub"))
	pw, err := httpSrv.AddHTTPUser(node)
	must(t, err)
	pwFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pwFile, []byte(pw), 0o600))

	o := e.options()
	o.StatusRepoURL = e.srv.URL("cfg") // git:// — no identity, so no push
	o.ReportsRepoURL = httpSrv.URL("cfg")
	o.Auth = gitsource.AuthOptions{Username: node, PasswordFile: pwFile, LookupEnv: func(string) (string, bool) { return "", false }}
	o.TrustHubKeys = []string{hub + ".pub"}
	must(t, e.converge(o))
	if r := e.report(); r.State != api.StateDone || !e.at(c1) {
		t.Fatalf("report %+v", r)
	}
	// The read-only side really is read-only: a push over git-daemon is
	// refused by the hook.
	work := t.TempDir()
	if _, err := gitserver.Git(work, nil, "init", "-q", "--bare"); err != nil {
		t.Fatal(err)
	}
	c, err := gitserver.CommitFiles(work, "x", map[string]string{"report.yaml": "forged\n"}, nil, "forged")
	must(t, err)
	out, err := gitserver.GitCombined(work, nil, "push", e.srv.URL("cfg"), "+"+c+":refs/heads/"+api.ReportsBranch(node))
	if err == nil || !strings.Contains(out, "no authenticated identity") {
		t.Fatalf("push over git-daemon: %v\n%s", err, out)
	}
}
