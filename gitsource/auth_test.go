package gitsource_test

import (
	"strings"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/spf13/pflag"

	"stoker.dev/stoker/gitsource"
)

// TestRedact: passwords and tokens go, user names stay (issue 15 #10).
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:pass@example.com/r.git", "https://user:xxxxx@example.com/r.git"},
		{"https://ghp_token@example.com/r.git", "https://xxxxx@example.com/r.git"},
		{"https://example.com/r.git?private_token=abc#frag", "https://example.com/r.git"},
		{"ssh://git:pw@example.com:2222/r.git", "ssh://git:xxxxx@example.com:2222/r.git"},
		{"ssh://git@example.com/r.git", "ssh://git@example.com/r.git"},
		{"ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"},
		{"git://example.com/r.git", "git://example.com/r.git"},
		{"file:///srv/r.git", "file:///srv/r.git"},
		{"git@example.com:org/r.git", "git@example.com:org/r.git"},
		{"user:pw@example.com:org/r.git", "user:xxxxx@example.com:org/r.git"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := gitsource.Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestErrorsKeepUserNames: errors about the most common Git URL read as
// written; the user name "git" is not a secret and flag names stay whole
// (issue 15 #10: they came out as ssh://[redacted]@[redacted]hub.com/... and
// --[redacted]-ssh-key-file).
func TestErrorsKeepUserNames(t *testing.T) {
	const u = "ssh://git@github.com/org/repo.git"
	_, err := gitsource.Open(gitsource.Options{URL: u, WorkDir: t.TempDir(), Auth: gitsource.AuthOptions{LookupEnv: noEnv}})
	if err == nil {
		t.Fatal("opened an ssh URL without a key")
	}
	for _, want := range []string{u, "--git-ssh-key-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "xxxxx") {
		t.Errorf("error %q redacted something that is no secret", err)
	}
	// A password in the URL goes; the user name and the rest stay.
	_, err = gitsource.Open(gitsource.Options{URL: "ssh://git:hunter22@github.com/org/repo.git", WorkDir: t.TempDir(),
		Auth: gitsource.AuthOptions{LookupEnv: noEnv}})
	if err == nil || strings.Contains(err.Error(), "hunter22") || !strings.Contains(err.Error(), "ssh://git:xxxxx@github.com/org/repo.git") ||
		!strings.Contains(err.Error(), "--git-ssh-key-file") {
		t.Fatalf("error %v: want the password gone, the rest readable", err)
	}
}

// TestAuthFlagsAndSources binds the shared flags, then checks which source
// wins and what go-git auth method results.
func TestAuthFlagsAndSources(t *testing.T) {
	var o gitsource.AuthOptions
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o.BindFlags(fs)
	pw := writeSecret(t, "pw-from-file")
	tok := writeSecret(t, "tok-from-file")
	if err := fs.Parse([]string{"--git-username=alice", "--git-password-file=" + pw, "--git-ssh-key-file=/k",
		"--git-known-hosts-file=/kh", "--git-insecure-skip-host-key"}); err != nil {
		t.Fatal(err)
	}
	if o.Username != "alice" || o.PasswordFile != pw || o.SSHKeyFile != "/k" || o.KnownHostsFile != "/kh" || !o.InsecureIgnoreHostKey {
		t.Fatalf("flags not bound: %+v", o)
	}
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		name     string
		opts     gitsource.AuthOptions
		url      string
		wantUser string
		wantPass string
		bearer   string
	}{
		{"password file", gitsource.AuthOptions{Username: "alice", PasswordFile: pw, LookupEnv: env(nil)}, "https://h/r", "alice", "pw-from-file", ""},
		{"password env", gitsource.AuthOptions{LookupEnv: env(map[string]string{gitsource.EnvUsername: "bob", gitsource.EnvPassword: "pw-env"})}, "https://h/r", "bob", "pw-env", ""},
		{"token alone is bearer", gitsource.AuthOptions{TokenFile: tok, LookupEnv: env(nil)}, "https://h/r", "", "", "tok-from-file"},
		{"token env with user is basic", gitsource.AuthOptions{Username: "x-access-token", LookupEnv: env(map[string]string{gitsource.EnvToken: "tok-env"})}, "https://h/r", "x-access-token", "tok-env", ""},
		{"file beats env", gitsource.AuthOptions{TokenFile: tok, LookupEnv: env(map[string]string{gitsource.EnvToken: "tok-env"})}, "https://h/r", "", "", "tok-from-file"},
		{"url userinfo", gitsource.AuthOptions{LookupEnv: env(nil)}, "https://u:p@h/r", "u", "p", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.opts.Load(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			switch m := a.(type) {
			case *githttp.BasicAuth:
				if tc.bearer != "" || m.Username != tc.wantUser || m.Password != tc.wantPass {
					t.Fatalf("basic %s/%s, want user %q pass %q bearer %q", m.Username, m.Password, tc.wantUser, tc.wantPass, tc.bearer)
				}
			case *githttp.TokenAuth:
				if m.Token != tc.bearer {
					t.Fatalf("bearer %q, want %q", m.Token, tc.bearer)
				}
			default:
				t.Fatalf("auth %T", a)
			}
		})
	}
	for _, tc := range []struct {
		name, url string
		opts      gitsource.AuthOptions
		want      string
	}{
		{"ssh without key", "ssh://git@h/r", gitsource.AuthOptions{}, "--git-ssh-key-file"},
		{"missing password file", "https://h/r", gitsource.AuthOptions{PasswordFile: "/nonexistent/pw", LookupEnv: env(nil)}, "--git-password-file"},
		{"unknown scheme", "ftp://h/r", gitsource.AuthOptions{}, "unsupported protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.opts.Load(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want mention of %q", err, tc.want)
			}
		})
	}
	for _, u := range []string{"file:///x", "git://h/r"} {
		if a, err := (gitsource.AuthOptions{}).Load(u); err != nil || a != nil {
			t.Fatalf("Load(%s) = %v, %v; want no auth", u, a, err)
		}
	}
}
