package gitserver_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// The hook and forced command shipped in deploy/ (paths from this package).
var (
	updateHook     = filepath.Join("..", "..", "deploy", "git-hooks", "update")
	stokerGitShell = filepath.Join("..", "..", "deploy", "git-hooks", "stoker-git-shell")
)

// pusher pushes with the git CLI as one identity.
type pusher struct {
	name string
	url  string   // with credentials for HTTP
	env  []string // GIT_SSH_COMMAND for SSH
	key  string   // ssh key (go-git)
	pw   string   // http password (go-git)
}

func identities(t *testing.T, srv *gitserver.Server, names ...string) map[string]pusher {
	t.Helper()
	out := map[string]pusher{}
	shell, err := filepath.Abs(stokerGitShell)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := pusher{name: n}
		switch srv.Kind {
		case gitserver.HTTP:
			pw, err := srv.AddHTTPUser(n)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(srv.URL("status"))
			u.User = url.UserPassword(n, pw)
			p.url, p.pw = u.String(), pw
		case gitserver.SSH:
			key, err := srv.AddSSHKey(n, shell+" "+n)
			if err != nil {
				t.Fatal(err)
			}
			p.url, p.key = srv.URL("status"), key
			p.env = []string{"GIT_SSH_COMMAND=" + srv.GitSSHCommandFor(key)}
		default:
			p.url = srv.URL("status")
		}
		out[n] = p
	}
	return out
}

// TestUpdateHookLeastPrivilege runs deploy/git-hooks/update behind git
// http-backend (REMOTE_USER) and sshd (stoker-git-shell forced command per
// key) and behind git-daemon (no identity: read-only). Every refusal shows
// its reason in the pusher's Git output.
func TestUpdateHookLeastPrivilege(t *testing.T) {
	for _, kind := range gitserver.Kinds {
		t.Run(kind.String(), func(t *testing.T) {
			srv := gitserver.New(t, kind)
			srv.CreateRepo(t, "status")
			old := srv.SeedRepo(t, "status", map[string]string{"pools/worker.yaml": "a\n"}, "stoker/status")
			cur, err := gitserver.CommitFiles(srv.Path("status"), "stoker/status", map[string]string{"pools/worker.yaml": "b\n"}, nil, "next")
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.InstallHook("status", "update", updateHook, "stoker.hubUser", "hub"); err != nil {
				t.Fatal(err)
			}
			ids := identities(t, srv, "hub", "node-1", "node-2")
			// A local repository holding the commits to push.
			work := t.TempDir()
			for _, args := range [][]string{{"init", "-q", "--bare"}, {"fetch", "-q", srv.Path("status"), "stoker/status"}} {
				if _, err := gitserver.Git(work, nil, args...); err != nil {
					t.Fatal(err)
				}
			}
			next, err := gitserver.CommitFiles(work, "next", map[string]string{"report.yaml": "state: Done\n"}, nil, "report")
			if err != nil {
				t.Fatal(err)
			}
			push := func(who, spec string) (string, error) {
				p := ids[who]
				return gitserverPush(work, p, spec)
			}
			type c struct {
				who, spec, refusal string // refusal "" = accepted
			}
			cases := []c{
				{"node-1", next + ":refs/heads/stoker/reports/node-2", "node node-1 may push only refs/heads/stoker/reports/node-1"},
				{"node-1", "+" + next + ":refs/heads/stoker/status", "node node-1 may push only refs/heads/stoker/reports/node-1"},
				{"node-1", next + ":refs/heads/stoker/reports/node-1", ""},
				{"hub", next + ":refs/heads/stoker/reports/node-2", "the hub may push only"},
				{"hub", "+" + old + ":refs/heads/stoker/status", "only moves forward"},
				{"node-2", next + ":refs/heads/stoker/reports/node-2", ""},
			}
			if kind == gitserver.Daemon {
				cases = []c{
					{"node-1", next + ":refs/heads/stoker/reports/node-1", "no authenticated identity"},
					{"hub", cur + ":refs/heads/stoker/fleet", "no authenticated identity"},
				}
			}
			for _, tc := range cases {
				out, err := push(tc.who, tc.spec)
				switch {
				case tc.refusal == "" && err != nil:
					t.Errorf("%s pushing %s: refused: %v\n%s", tc.who, tc.spec, err, out)
				case tc.refusal != "" && err == nil:
					t.Errorf("%s pushing %s: accepted, want refused (%s)", tc.who, tc.spec, tc.refusal)
				case tc.refusal != "" && !strings.Contains(out, "remote: stoker update hook: refused") || !strings.Contains(out, tc.refusal):
					t.Errorf("%s pushing %s: Git output does not say %q:\n%s", tc.who, tc.spec, tc.refusal, out)
				}
			}
			if kind == gitserver.Daemon {
				return
			}
			// The same refusal through Stoker's own transport (an agent's
			// report push as another node).
			p := ids["node-1"]
			auth := gitsource.AuthOptions{LookupEnv: func(string) (string, bool) { return "", false }}
			if kind == gitserver.HTTP {
				auth.Username, auth.PasswordFile = p.name, writeFile(t, p.pw)
			} else {
				auth.SSHKeyFile, auth.KnownHostsFile = p.key, srv.KnownHostsFile
			}
			g, err := gitsource.Open(gitsource.Options{URL: srv.URL("status"), WorkDir: t.TempDir(), Auth: auth})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.Commit(context.Background(), gitsource.CommitRequest{Branch: "stoker/reports/node-2",
				Parent: srv.Head(t, "status", "stoker/reports/node-2"), Changes: map[string][]byte{"report.yaml": []byte("state: Done\nforged: true\n")}, Message: "forged report"})
			if err == nil || errors.Is(err, gitsource.ErrConflict) || errors.Is(err, gitsource.ErrNothingToCommit) {
				t.Fatalf("node-1 pushing node-2's report ref through gitsource: want a refusal, got %v", err)
			}
			if !strings.Contains(err.Error(), "node node-1 may push only refs/heads/stoker/reports/node-1") {
				t.Fatalf("gitsource's error does not carry the hook's reason: %v", err)
			}
			if _, err := g.Commit(context.Background(), gitsource.CommitRequest{Branch: "stoker/reports/node-1",
				Changes: map[string][]byte{"report.yaml": []byte("state: Working\n")}, Message: "own report",
				Parent: srv.Head(t, "status", "stoker/reports/node-1")}); err != nil {
				t.Fatalf("node-1 pushing its own report through gitsource: %v", err)
			}
		})
	}
}

func gitserverPush(work string, p pusher, spec string) (string, error) {
	return gitserver.GitCombined(work, p.env, "push", "--porcelain", p.url, spec)
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
