package configserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ign35 "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/testutil"
)

const (
	tokenOld = "old-token-0123456789abcdef"
	tokenNew = "new-token-fedcba9876543210"
)

func testSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	src, mode := "data:,kubelet%3Dyes%0A", 0o644
	r := &api.Rendered{Name: "rendered-worker-abc", Config: ign35.Config{Ignition: ign35.Ignition{Version: api.IgnitionVersion}}}
	r.Config.Storage.Files = []ign35.File{{Node: ign35.Node{Path: "/etc/kubelet.conf"}, FileEmbedded1: ign35.FileEmbedded1{Mode: &mode, Contents: ign35.Resource{Source: &src}}}}
	raw, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &Snapshot{
		Commit:   "0123456789abcdef0123456789abcdef01234567",
		Pools:    map[string]api.PoolTarget{"worker": {Name: "worker", Rendered: r.Name}, "infra": {Name: "infra", Rendered: r.Name}},
		Labels:   map[string]map[string]string{"worker": {"node-role.kubernetes.io/worker": ""}},
		Rendered: map[string][]byte{r.Name: raw},
	}
}

type testServer struct {
	url    string
	client *http.Client
	logs   *bytes.Buffer
	dir    string
}

func startServer(t *testing.T, mutate func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, certPEM := testutil.WriteTestCert(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	// Rotation overlap: two valid tokens for worker; none for infra.
	if err := os.WriteFile(filepath.Join(tokens, "worker"), []byte("# rotating\n"+tokenOld+"\n"+tokenNew+"\nshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cred := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(cred, []byte("read-only-git-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubKey := filepath.Join(dir, "hub.pub")
	if err := os.WriteFile(hubKey, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4 hub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := logrus.New()
	log.SetOutput(logs)
	snap := testSnapshot(t)
	o := Options{
		Listen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile,
		Tokens: Tokens{Dir: tokens}, Snapshot: func() *Snapshot { return snap }, Log: log, Rate: 1000, Burst: 1000,
		Join: Join{RepoURL: "http://git.example:8080/fleet.git", Credentials: []Credential{{Flag: "git-token-file", HubFile: cred}}, TrustHubKeys: []string{hubKey}},
	}
	if mutate != nil {
		mutate(&o)
	}
	srv, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &testServer{
		url:    "https://" + srv.Addr(),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		logs:   logs, dir: dir,
	}
}

func (s *testServer) get(t *testing.T, method, path, token, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

const accept36 = "application/vnd.coreos.ignition+json;version=3.6.0, */*;q=0.1"

// TestAuthServesNothing: without a token 401, with a wrong token, a token
// of another pool or for a pool without tokens 403 — each with an empty
// body. MCO's APIHandler.ServeHTTP answers 403 for a bad token too, but
// serves everyone without one.
func TestAuthServesNothing(t *testing.T) {
	s := startServer(t, nil)
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"no token", "/config/worker", "", http.StatusUnauthorized},
		{"wrong token", "/config/worker", "wrong-token-0123456789", http.StatusForbidden},
		{"short line is no token", "/config/worker", "short", http.StatusForbidden},
		{"pool without tokens", "/config/infra", tokenNew, http.StatusForbidden},
		{"unknown pool", "/config/nope", tokenNew, http.StatusForbidden},
		{"traversal", "/config/..%2Ftokens%2Fworker", tokenNew, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				code, body := s.get(t, m, tc.path, tc.token, accept36)
				if code != tc.want || len(body) != 0 {
					t.Fatalf("%s %s: %d %q; want %d and nothing", m, tc.path, code, body, tc.want)
				}
			}
		})
	}
	code, _ := s.get(t, http.MethodPost, "/config/worker", tokenNew, accept36)
	if code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
	if strings.Contains(s.logs.String(), "wrong-token") || strings.Contains(s.logs.String(), tokenNew) {
		t.Fatalf("a token reached the log:\n%s", s.logs)
	}
	if n := strings.Count(s.logs.String(), "config request refused"); n != 6*2+1 {
		t.Fatalf("%d refusals logged, want %d (every request once):\n%s", n, 6*2+1, s.logs)
	}
}

// TestServesJoiningConfig: both tokens of the rotation work; the served
// config holds the rendered files, the agent's unit, credentials, hub
// key, labels and the seeded state, and no token is logged.
func TestServesJoiningConfig(t *testing.T) {
	s := startServer(t, nil)
	snap := testSnapshot(t)
	for _, tok := range []string{tokenOld, tokenNew} {
		code, body := s.get(t, http.MethodGet, "/config/worker", tok, accept36)
		if code != http.StatusOK {
			t.Fatalf("token %d: %d %s", len(tok), code, body)
		}
		var cfg ign35.Config
		if err := json.Unmarshal(body, &cfg); err != nil || cfg.Ignition.Version != "3.5.0" {
			t.Fatalf("decode: %v %s", err, body)
		}
		files := map[string]string{}
		for _, f := range cfg.Storage.Files {
			src := *f.Contents.Source
			if b64, ok := strings.CutPrefix(src, "data:;base64,"); ok {
				data, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatal(err)
				}
				src = string(data)
			}
			files[f.Path] = src
		}
		if files["/etc/kubelet.conf"] == "" || files["/etc/stoker/git-token"] != "read-only-git-token\n" || !strings.HasPrefix(files["/etc/stoker/trust-hub-key-0"], "ssh-ed25519") {
			t.Fatalf("files: %v", files)
		}
		var seed api.SeedState
		if err := json.Unmarshal([]byte(files["/var/lib/stoker/agent-state.json"]), &seed); err != nil || seed.Current != "rendered-worker-abc" || seed.StatusCommit != snap.Commit {
			t.Fatalf("seed %+v %v", seed, err)
		}
		if files["/var/lib/stoker/configs/rendered-worker-abc.json"] != string(snap.Rendered["rendered-worker-abc"]) {
			t.Fatal("kept config is not rendered/<name>.json byte for byte")
		}
		if len(cfg.Systemd.Units) != 1 || cfg.Systemd.Units[0].Name != AgentUnit || !*cfg.Systemd.Units[0].Enabled {
			t.Fatalf("units: %+v", cfg.Systemd.Units)
		}
		unit := *cfg.Systemd.Units[0].Contents
		for _, want := range []string{`"--repo" "http://git.example:8080/fleet.git"`, `"--node" "%H"`, `"--labels" "node-role.kubernetes.io/worker="`, `"--git-token-file" "/etc/stoker/git-token"`, `"--trust-hub-key" "/etc/stoker/trust-hub-key-0"`} {
			if !strings.Contains(unit, want) {
				t.Fatalf("unit lacks %s:\n%s", want, unit)
			}
		}
	}
	// Old clients get 2.2.
	code, body := s.get(t, http.MethodGet, "/config/worker", tokenNew, "")
	if code != http.StatusOK || !strings.Contains(string(body), `"version":"2.2.0"`) {
		t.Fatalf("curl: %d %.200s", code, body)
	}
	code, _ = s.get(t, http.MethodGet, "/config/worker", tokenNew, "application/vnd.coreos.ignition+json;version=3.0.0")
	if code != http.StatusBadRequest {
		t.Fatalf("3.0 only: %d", code)
	}
	logs := s.logs.String()
	for _, secret := range []string{tokenOld, tokenNew, "read-only-git-token"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("%q reached the log:\n%s", secret, logs)
		}
	}
	if n := strings.Count(logs, "served config"); n != 3 {
		t.Fatalf("%d served lines, want 3:\n%s", n, logs)
	}
}

// TestRateLimited: past the burst a client gets 429 and nothing else.
func TestRateLimited(t *testing.T) {
	s := startServer(t, func(o *Options) { o.Rate, o.Burst = 0.001, 2 })
	for i := 0; i < 2; i++ {
		if code, _ := s.get(t, http.MethodGet, "/config/worker", tokenNew, accept36); code != http.StatusOK {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code, body := s.get(t, http.MethodGet, "/config/worker", tokenNew, accept36); code != http.StatusTooManyRequests || len(body) != 0 {
		t.Fatalf("third: %d %q", code, body)
	}
}

// TestListenRefuses: no TLS without the explicit plain-HTTP flag, no
// server without tokens, bad agent credentials named.
func TestListenRefuses(t *testing.T) {
	snap := func() *Snapshot { return nil }
	base := Options{Listen: "127.0.0.1:0", Tokens: Tokens{Dir: t.TempDir()}, Snapshot: snap, Join: Join{RepoURL: "x"}}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no tls", func(o *Options) {}, "--config-insecure-http"},
		{"cert without key", func(o *Options) { o.TLSCertFile = "c" }, "go together"},
		{"no tokens", func(o *Options) { o.InsecureHTTP, o.Tokens.Dir = true, "" }, "--config-token-dir"},
		{"bad credential", func(o *Options) {
			o.InsecureHTTP, o.Join.Credentials = true, []Credential{{Flag: "git-password", HubFile: "f"}}
		}, "agent credential 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mutate(&o)
			if _, err := Listen(o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Listen: %v; want %q", err, tc.want)
			}
		})
	}
	// Plain HTTP only when asked.
	o := base
	o.InsecureHTTP = true
	srv, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + srv.Addr() + "/config/worker")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain http without token: %d", resp.StatusCode)
	}
}

// TestTokenRotation: the token file is re-read on every request, so
// removing the old line ends the overlap without a restart.
func TestTokenRotation(t *testing.T) {
	s := startServer(t, nil)
	if code, _ := s.get(t, http.MethodGet, "/config/worker", tokenOld, accept36); code != http.StatusOK {
		t.Fatalf("old token during the overlap: %d", code)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "tokens", "worker"), []byte(tokenNew+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := s.get(t, http.MethodGet, "/config/worker", tokenOld, accept36); code != http.StatusForbidden || len(body) != 0 {
		t.Fatalf("old token after the rotation: %d %q", code, body)
	}
	if code, _ := s.get(t, http.MethodGet, "/config/worker", tokenNew, accept36); code != http.StatusOK {
		t.Fatalf("new token after the rotation: %d", code)
	}
}
