package reconciler

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/gitserver"
)

// TestRunHubHTTP runs the hub as `stoker hub` does, on 127.0.0.1:0 with a
// one-hour poll interval, so only the webhook can make it see a push.
func TestRunHubHTTP(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", map[string]string{"mc/50-x.yaml": fileMC("50-x", "worker", "/etc/x", "1")}, "main")
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("hook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunHub(ctx, HubOptions{RepoURL: srv.URL("config"), Interval: time.Hour, Listen: "127.0.0.1:0",
			WorkDir: t.TempDir(), WebhookSecretFile: secret, OnListen: func(a string) { addrc <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunHub: %v", err)
		}
	}()
	base := "http://" + <-addrc
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d while starting, want 200", code)
	}
	waitFor(t, "readyz ok after the first reconcile", func() bool { code, _ := get("/readyz"); return code == 200 })
	if srv.Head(t, "config", api.StatusBranch) == "" {
		t.Fatal("healthy hub has not written stoker/status")
	}
	if _, body := get("/metrics"); !strings.Contains(body, `stoker_hub_reconciles_total{result="success"}`) ||
		!strings.Contains(body, "stoker_hub_last_successful_sync_timestamp_seconds") ||
		!strings.Contains(body, `stoker_build_info{component="hub",goversion="go`) {
		t.Fatalf("metrics lack the hub's series:\n%s", body)
	}
	fleetBefore := srv.Head(t, "config", api.FleetBranch)
	if _, err := srv.Seed("config", map[string]string{"mc/50-x.yaml": fileMC("50-x", "worker", "/etc/x", "2")}, nil, "main"); err != nil {
		t.Fatal(err)
	}
	body := `{"ref":"refs/heads/main"}`
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", base+"/hooks/git", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(strings.Repeat("00", 32)); code != http.StatusUnauthorized {
		t.Fatalf("forged webhook got %d, want 401", code)
	}
	mac := hmac.New(sha256.New, []byte("hook-secret"))
	mac.Write([]byte(body))
	if code := post(hex.EncodeToString(mac.Sum(nil))); code != http.StatusAccepted {
		t.Fatalf("signed webhook got %d, want 202", code)
	}
	waitFor(t, "the webhook's reconcile to update stoker/fleet", func() bool {
		return srv.Head(t, "config", api.FleetBranch) != fleetBefore
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
