//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/nspawn"
	"stoker.dev/stoker/test/testutil"
)

// Ignition for first-boot tests: STOKER_IGNITION_BIN is the real binary
// (hack/ignition.sh builds it); without it the tests skip, unless
// STOKER_REQUIRE_IGNITION is set.
const (
	ignitionEnv        = "STOKER_IGNITION_BIN"
	requireIgnitionEnv = "STOKER_REQUIRE_IGNITION"
)

func ignitionBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(ignitionEnv)
	if bin == "" {
		if os.Getenv(requireIgnitionEnv) != "" {
			t.Fatalf("%s is set but %s is not: run hack/ignition.sh", requireIgnitionEnv, ignitionEnv)
		}
		t.Skipf("%s not set (hack/ignition.sh builds Ignition)", ignitionEnv)
	}
	return bin
}

// TestFirstBootIgnition (18): a machine joins the fleet as MCO's machines
// do (machine-config-server, pkg/server/api.go APIHandler.ServeHTTP): the
// real Ignition binary fetches /config/worker from the hub over TLS with
// the pool's bearer token (a pointer config), runs its files stage into
// the machine's root, the machine boots in systemd-nspawn, systemd
// applies Ignition's preset and starts the agent, and the agent reports
// Done on the served rendered config without changing anything: the
// files Ignition wrote are the files on day two, byte for byte and
// untouched. Without a token or with a wrong one the hub serves nothing.
func TestFirstBootIgnition(t *testing.T) {
	ign := ignitionBin(t)
	nspawn.Skip(t)
	t.Parallel()
	repo := simpleRepo("1", false, "first-boot")
	repo["machineconfigs/60-e2e-hello.yaml"] = helloUnitMC
	f := newFleetNoHub(t, map[string]map[string]string{"main": repo})

	dir := t.TempDir()
	certFile, keyFile, certPEM := testutil.WriteTestCert(t, dir)
	tokens := filepath.Join(dir, "tokens")
	const token = "e2e-worker-token-0123456789abcdef"
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tokens, "worker"), []byte("old-worker-token-0123456789\n"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	if _, err := f.StartHub("--config-listen", addr, "--config-tls-cert", certFile, "--config-tls-key", keyFile,
		"--config-token-dir", tokens, "--config-agent-binary", "/opt/stoker/bin/"+filepath.Base(stokerBin),
		"--config-agent-arg=--reboot=systemd", "--config-agent-arg=--os-backend=none", "--config-agent-arg=--drain=none",
		"--config-agent-arg=--interval=1s"); err != nil {
		t.Fatal(err)
	}
	url := "https://" + addr + "/config/worker"
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(tok string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/vnd.coreos.ignition+json;version=3.6.0, */*;q=0.1")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return resp.StatusCode, b
	}
	deadline := time.Now().Add(2 * time.Minute)
	var served []byte
	for {
		code, body := get(token)
		if code == http.StatusOK {
			served = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub never served /config/worker: last %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		tok  string
		want int
	}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789abcdef", http.StatusForbidden}} {
		if code, body := get(tc.tok); code != tc.want || len(body) != 0 {
			t.Fatalf("token %q: %d %q, want %d and nothing", tc.tok, code, body, tc.want)
		}
	}
	var servedCfg struct {
		Storage struct {
			Files []struct {
				Path string
			}
		}
	}
	if err := json.Unmarshal(served, &servedCfg); err != nil {
		t.Fatal(err)
	}
	rendered := ""
	for _, fl := range servedCfg.Storage.Files {
		if name, ok := strings.CutPrefix(fl.Path, "/var/lib/stoker/configs/"); ok {
			rendered = strings.TrimSuffix(name, ".json")
		}
	}
	if rendered == "" {
		t.Fatalf("served config seeds no rendered config: %s", served)
	}

	// The pointer config a machine image carries: where to fetch, with
	// which token and CA.
	pointer := fmt.Sprintf(`{"ignition":{"version":"3.5.0","config":{"replace":{"source":%q,"httpHeaders":[{"name":"Authorization","value":"Bearer %s"}]}},"security":{"tls":{"certificateAuthorities":[{"source":"data:;base64,%s"}]}}}}`,
		url, token, base64.StdEncoding.EncodeToString(certPEM))
	pointerFile := filepath.Join(dir, "pointer.ign")
	if err := os.WriteFile(pointerFile, []byte(pointer), 0o600); err != nil {
		t.Fatal(err)
	}
	const node = "firstboot-0"
	type written struct {
		sum   string
		mode  os.FileMode
		mtime time.Time
	}
	managed := []string{e2eFile, "/etc/systemd/system/e2e-hello.service"}
	first := map[string]written{}
	// ignite runs Ignition's fetch and files stages into a machine's root
	// before its first boot; tamper, when set, changes the root after.
	ignite := func(tag string, tamper func(root string) error) func(root string) error {
		return func(root string) error {
			for _, stage := range []string{"fetch", "files"} {
				cmd := exec.Command(ign, "-platform", "file", "-stage", stage, "-root", root, "-log-to-stdout",
					"-config-cache", filepath.Join(dir, tag+"-ignition.json"), "-state-file", filepath.Join(dir, tag+"-ignition-state"))
				cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+pointerFile)
				out, err := cmd.CombinedOutput()
				t.Logf("%s: ignition %s:\n%s", tag, stage, lastLines(string(out), 15))
				if err != nil {
					return fmt.Errorf("ignition stage %s: %w", stage, err)
				}
			}
			if tamper != nil {
				if err := tamper(root); err != nil {
					return err
				}
			}
			// First boot, as on a new machine: systemd applies the
			// presets Ignition wrote (and makes a machine id).
			return os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("uninitialized\n"), 0o444)
		}
	}
	m := nspawn.Boot(t, nspawn.Options{
		Name:  node,
		Binds: []nspawn.Bind{{Source: filepath.Dir(stokerBin), Target: "/opt/stoker/bin", ReadOnly: true}},
		Setup: ignite(node, func(root string) error {
			for _, p := range managed {
				fi, data, err := statRead(filepath.Join(root, p))
				if err != nil {
					return err
				}
				first[p] = written{digest(data), fi.Mode(), fi.ModTime()}
			}
			return nil
		}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Logf("agent journal:\n%s", m.Journal(c, "stoker-agent.service"))
		}
	})
	// The node reports Done on the served config (and the hub agrees).
	v, err := f.WaitFor(ctx, 3*time.Minute, func(v *fleetview.FleetView) bool {
		n := nodeOf(v, node)
		return n.State == api.StateDone && n.CurrentConfig == rendered && n.DesiredConfig == rendered && demo.Converged(v)
	}, nil)
	if err != nil {
		t.Fatalf("node %s never Done on the served %s: %v\n%s", node, rendered, err, table(v))
	}
	r, err := f.Report(node)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != api.StateDone || r.CurrentConfig != rendered || len(r.Drift) > 0 {
		t.Fatalf("report: %s on %s (%s), drift %v", r.State, r.CurrentConfig, r.Reason, r.Drift)
	}
	for verb, want := range map[string]string{"is-enabled": "enabled", "is-active": "active"} {
		for _, unit := range []string{"stoker-agent.service", "e2e-hello.service"} {
			out, _ := m.Run(ctx, "systemctl", verb, unit)
			if strings.TrimSpace(out) != want {
				t.Errorf("%s %s = %q, want %q", unit, verb, strings.TrimSpace(out), want)
			}
		}
	}
	// Day two is first boot: same bytes, same modes, never rewritten.
	for _, p := range managed {
		fi, data, err := statRead(m.Path(p))
		if err != nil {
			t.Fatal(err)
		}
		if got := (written{digest(data), fi.Mode(), fi.ModTime()}); got != first[p] {
			t.Errorf("%s changed after first boot: %+v, Ignition wrote %+v", p, got, first[p])
		}
	}
	// The agent planned nothing: its state is the seeded one (an update
	// keeps its plan), and it backed nothing up.
	st, err := os.ReadFile(m.Path("/var/lib/stoker/" + api.AgentStateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(st), `"plan"`) || !strings.Contains(string(st), rendered) {
		t.Errorf("agent state after first start:\n%s", st)
	}
	journal := m.Journal(ctx, "stoker-agent.service")
	t.Logf("node %s: %s on %s; agent journal:\n%s", node, r.State, r.CurrentConfig, lastLines(journal, 12))
	if strings.Contains(journal, "planned update") {
		t.Errorf("the agent planned an update on first boot:\n%s", journal)
	}
	hubLog, _ := os.ReadFile(filepath.Join(f.Dir, "logs", "hub.log"))
	if strings.Contains(string(hubLog), token) {
		t.Error("the token reached the hub's log")
	}

	// The seeded state is not trusted blindly: a machine whose disk does
	// not match what was served (a file changed after Ignition) is
	// Degraded with the drift named on its first start, and the agent
	// leaves the file as found (drift policy report).
	const bad = "firstboot-1"
	mb := nspawn.Boot(t, nspawn.Options{
		Name:  bad,
		Binds: []nspawn.Bind{{Source: filepath.Dir(stokerBin), Target: "/opt/stoker/bin", ReadOnly: true}},
		Setup: ignite(bad, func(root string) error {
			return os.WriteFile(filepath.Join(root, e2eFile), []byte("changed after Ignition"), 0o644)
		}),
	})
	if _, err := f.WaitFor(ctx, 3*time.Minute, func(v *fleetview.FleetView) bool {
		n := nodeOf(v, bad)
		return n.State == api.StateDegraded && len(n.Drift) > 0
	}, nil); err != nil {
		t.Fatalf("tampered node %s never Degraded with drift: %v\n%s", bad, err, mb.Journal(ctx, "stoker-agent.service"))
	}
	rb, err := f.Report(bad)
	if err != nil {
		t.Fatal(err)
	}
	if rb.CurrentConfig != rendered || len(rb.Drift) != 1 || rb.Drift[0].Path != e2eFile {
		t.Errorf("tampered node: current %s, drift %+v", rb.CurrentConfig, rb.Drift)
	}
	if data, err := os.ReadFile(mb.Path(e2eFile)); err != nil || string(data) != "changed after Ignition" {
		t.Errorf("%s on the tampered node = %q, %v: the agent rewrote it", e2eFile, data, err)
	}
}

func statRead(p string) (os.FileInfo, []byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(p)
	return fi, data, err
}

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
