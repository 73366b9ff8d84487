//go:build e2e

package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/test/kubeapi"
)

// hubProc is one hub replica, as the chart's Deployment runs it.
type hubProc struct {
	name string
	addr string
	cmd  *exec.Cmd
	exit chan error
}

func startHubReplica(t *testing.T, f *demo.Fleet, name, kubeconfig, secret string, window time.Duration) *hubProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(f.Dir, "logs", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stokerBin, "hub", "--repo", f.RepoURL, "--reports-repo", f.ReportsRepoURL, "--interval", "1h", "--listen", addr,
		"--work-dir", t.TempDir(), "--kubeconfig", kubeconfig, "--webhook-secret-file", secret,
		"--health-window", window.String())
	cmd.Env = append(os.Environ(), "POD_NAMESPACE=default", "POD_NAME="+name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hubProc{name: name, addr: addr, cmd: cmd, exit: make(chan error, 1)}
	go func() { h.exit <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-h.exit:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return h
}

// get returns the status code and body of GET path, or 0 when the hub
// does not answer.
func (h *hubProc) get(path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + h.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (h *hubProc) waitHealth(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if code, body = h.get("/healthz"); code == 200 && strings.Contains(body, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s /healthz = %d %q, want 200 %q", h.name, code, body, want)
}

// TestFollowerHubStaysUpAndPassesWebhooks (issue 13): two hub replicas
// with leader election against a real kube-apiserver and a short health
// window. The one standing by stays alive and ready for many windows (its
// liveness probe would never restart it), and a push webhook sent to it
// is not lost: the leader reconciles the pushed commit at once, with a
// poll interval of an hour.
func TestFollowerHubStaysUpAndPassesWebhooks(t *testing.T) {
	kube := kubeapi.Start(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	f, err := demo.NewFleet(t.TempDir(), stokerBin, interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	if _, err := f.Commit("main", simpleRepo("1", false, "v1"), nil, "seed"); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The window must well exceed the Lease retry period (2s, jittered), at which a
	// replica standing by reads the Lease.
	const window = 6 * time.Second
	leader := startHubReplica(t, f, "hub-a", kubeconfig, secret, window)
	leader.waitHealth(t, "leading")
	follower := startHubReplica(t, f, "hub-b", kubeconfig, secret, window)
	follower.waitHealth(t, "standing by")

	start := time.Now()
	for time.Since(start) < 3*window+window/2 {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body := follower.get(p); code != 200 || !strings.Contains(body, "standing by") {
				t.Fatalf("follower %s after %s = %d %q, want 200 standing by", p, time.Since(start).Round(time.Millisecond), code, body)
			}
		}
		select {
		case err := <-follower.exit:
			t.Fatalf("follower exited: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("follower healthy and ready for %s (%d health windows)", time.Since(start).Round(time.Millisecond), int(time.Since(start)/window))

	before, err := f.ReadFile(api.StatusBranch, api.PoolFile("worker"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit("main", map[string]string{"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2")}, nil, "v2"); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	code, body := postWebhook(t, follower.addr, "s3cret", `{"ref":"refs/heads/main"}`)
	if code != http.StatusAccepted {
		t.Fatalf("webhook to the follower = %d %q, want 202", code, body)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		after, err := f.ReadFile(api.StatusBranch, api.PoolFile("worker"))
		if err == nil && after != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not render the pushed commit within 90s of the webhook to the follower (poll interval 1h)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("webhook to the follower rendered by the leader in %s", time.Since(sent).Round(time.Millisecond))
	if code, body := follower.get("/healthz"); code != 200 || !strings.Contains(body, "standing by") {
		t.Errorf("follower after the webhook: %d %q", code, body)
	}
}

func postWebhook(t *testing.T, addr, secret, payload string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/hooks/git", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, payload))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strconv.Quote(strings.TrimSpace(string(b)))
}

func hmacHex(secret, payload string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}
