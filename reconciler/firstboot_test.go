package reconciler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/configserver"
	"stoker.dev/stoker/test/gitserver"
)

// TestRunHubConfigServer: with --config-listen the hub serves each pool's
// target rendered config (pools/<pool>.yaml on stoker/status) on its own
// listener; before the first reconcile 503, without a token 401. MCO's
// clusterServer.GetConfig serves the pool's spec configuration once a node
// has updated; Stoker serves the target always (README: differences).
func TestRunHubConfigServer(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", map[string]string{"mc/50-x.yaml": fileMC("50-x", "worker", "/etc/x", "1")}, "main")
	tokens := t.TempDir()
	const token = "worker-token-0123456789"
	if err := os.WriteFile(filepath.Join(tokens, "worker"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunHub(ctx, HubOptions{RepoURL: srv.URL("config"), Interval: time.Hour, WorkDir: t.TempDir(),
			ConfigServer:   configserver.Options{Listen: "127.0.0.1:0", InsecureHTTP: true, Tokens: configserver.Tokens{Dir: tokens}},
			OnConfigListen: func(a string) { addrc <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunHub: %v", err)
		}
	}()
	url := "http://" + <-addrc + "/config/worker"
	get := func(tok string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/vnd.coreos.ignition+json;version=3.6.0, */*;q=0.1")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get(""); code != http.StatusUnauthorized || len(body) != 0 {
		t.Fatalf("no token: %d %q", code, body)
	}
	var body []byte
	waitFor(t, "the config server to serve after the first reconcile", func() bool {
		var code int
		code, body = get(token)
		return code == http.StatusOK
	})
	pool, err := gitserver.Git(srv.Path("config"), nil, "show", api.StatusBranch+":"+api.PoolFile("worker"))
	if err != nil {
		t.Fatal(err)
	}
	var target api.PoolTarget
	if err := yaml.Unmarshal([]byte(pool), &target); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Storage struct{ Files []struct{ Path string } }
		Systemd struct {
			Units []struct {
				Name     string
				Contents *string
			}
		}
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, f := range cfg.Storage.Files {
		paths[f.Path] = true
	}
	if !paths["/etc/x"] || !paths["/var/lib/stoker/configs/"+target.Rendered+".json"] {
		t.Fatalf("served files %v lack /etc/x or the kept %s", paths, target.Rendered)
	}
	// A hub keeping its reports in the config repo (no ReportsRepoURL)
	// tells the joining agent so: `stoker agent` requires --reports-repo.
	var unit string
	for _, u := range cfg.Systemd.Units {
		if u.Name == "stoker-agent.service" && u.Contents != nil {
			unit = *u.Contents
		}
	}
	if want := `"--reports-repo" "` + srv.URL("config") + `"`; !strings.Contains(unit, want) {
		t.Fatalf("served agent unit lacks %s:\n%s", want, unit)
	}
}
