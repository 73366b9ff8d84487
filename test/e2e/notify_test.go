//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/notify"
)

// eventSink is a local HTTP receiver: a generic webhook at /hook that
// answers 503 to its first failFirst requests, and a Slack-compatible
// incoming webhook at slackPath.
type eventSink struct {
	mu        sync.Mutex
	failFirst int
	refused   int
	hooks     []notify.Event
	sigs      []bool // X-Signature matched hmacKey, per hook
	slack     []string
	deliv     map[string]int // X-Stoker-Delivery → count
}

const (
	slackPath = "/services/T000/B000/SLACKSECRETPATH"
	hmacKey   = "e2e-hmac-key"
)

func newEventSink(t *testing.T, failFirst int) (*eventSink, *httptest.Server) {
	s := &eventSink{failFirst: failFirst, deliv: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/hook":
			if s.refused < s.failFirst {
				s.refused++
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			var e notify.Event
			if err := json.Unmarshal(body, &e); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.hooks = append(s.hooks, e)
			s.sigs = append(s.sigs, r.Header.Get("X-Signature") == "sha256="+notify.Sign([]byte(hmacKey), body))
			s.deliv[r.Header.Get("X-Stoker-Delivery")]++
		case slackPath:
			var m map[string]string
			if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
				http.Error(w, "want {\"text\": ...}", http.StatusBadRequest)
				return
			}
			s.slack = append(s.slack, m["text"])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

// count is how many webhook events match type, config ("" any) and node
// ("" any).
func (s *eventSink) count(t api.EventType, config, node string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.hooks {
		if e.Type == t && (config == "" || e.Config == config) && (node == "" || e.Node == node) {
			n++
		}
	}
	return n
}

func (s *eventSink) slackHas(sub ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, text := range s.slack {
		ok := true
		for _, x := range sub {
			ok = ok && strings.Contains(text, x)
		}
		if ok {
			return true
		}
	}
	return false
}

func (s *eventSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "refused %d; webhook:\n", s.refused)
	for _, e := range s.hooks {
		fmt.Fprintf(&b, "  %s %v %s %s: %s\n", e.Type, e.Pools, e.Node, e.Config, e.Message)
	}
	b.WriteString("slack:\n")
	for _, x := range s.slack {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	return b.String()
}

// waitSink waits (up to 2m, on the sink's state) for cond.
func waitSink(t *testing.T, s *eventSink, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("receiver never got %s:\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notifySecrets writes the hub's secrets directory: ops (webhook, HMAC
// key) and chat (Slack) pointing at srv.
func notifySecrets(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	dir := t.TempDir()
	for ref, files := range map[string]map[string]string{
		"ops":  {"url": srv.URL + "/hook", "hmac-key": hmacKey},
		"chat": {"url": srv.URL + slackPath},
	} {
		if err := os.MkdirAll(filepath.Join(dir, ref), 0o700); err != nil {
			t.Fatal(err)
		}
		for name, v := range files {
			if err := os.WriteFile(filepath.Join(dir, ref, name), []byte(v+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

const notificationsYAML = `receivers:
  - name: ops
    type: webhook
  - name: team-chat
    type: slack
    secretRef: chat
    events: [RolloutStarted, RolloutFinished, RolloutStopped, NodeDegraded, NodeUnreachable]
    pools: [worker]
`

// TestNotifications: a rollout started and finished and a node gone
// Degraded (drift) reach a generic webhook (HMAC-signed) and a Slack one
// on a local HTTP receiver; the webhook refuses its first attempts, so
// they arrive by retry; each transition is sent once, also across a hub
// restart and a node's recovery; the receivers' URLs never reach the
// hub's log.
func TestNotifications(t *testing.T) {
	t.Parallel()
	sink, srv := newEventSink(t, 2)
	repo := simpleRepo("1", false, "v1")
	repo[api.NotificationsFile] = notificationsYAML
	f := newFleetNoHub(t, map[string]map[string]string{"main": repo})
	listen := freeAddr(t)
	hubFlags := []string{"--notify-secrets-dir", notifySecrets(t, srv), "--notify-retry-base", "200ms", "--log-level", "debug", "--listen", listen}
	if _, err := f.StartHub(hubFlags...); err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"))
	// The pool rendered before its nodes joined: with no machine it was
	// Updated at once, so joining nodes start no rollout of its config.
	v1 := poolOf(waitConverged(t, f, "", 2*time.Minute), "worker").Config

	if _, err := f.Commit("main", map[string]string{"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2")}, nil, "v2"); err != nil {
		t.Fatal(err)
	}
	v2 := poolOf(waitConverged(t, f, v1, 2*time.Minute), "worker").Config
	waitSink(t, sink, "the v2 rollout started and finished on both receivers", func() bool {
		return sink.count(api.EventRolloutStarted, v2, "") == 1 && sink.count(api.EventRolloutFinished, v2, "") == 1 &&
			sink.slackHas("RolloutStarted", v2) && sink.slackHas("RolloutFinished", v2)
	})

	// Drift makes w-0 Degraded.
	target := filepath.Join(f.Root("w-0"), e2eFile)
	if err := os.WriteFile(target, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitSink(t, sink, "w-0 Degraded on both receivers", func() bool {
		return sink.count(api.EventNodeDegraded, "", "w-0") == 1 && sink.slackHas("NodeDegraded", "w-0")
	})
	// A restarted hub reads the last transition back from stoker/fleet
	// and sends nothing again; w-0 recovering finishes no rollout again.
	f.Hub().Stop()
	if _, err := f.StartHub(hubFlags...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, v1, 2*time.Minute)
	// One more transition after the recovery, so anything the restart or
	// the recovery would have sent is in the queue before it: w-1 drifts.
	if err := os.WriteFile(filepath.Join(f.Root("w-1"), e2eFile), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitSink(t, sink, "w-1 Degraded", func() bool { return sink.count(api.EventNodeDegraded, "", "w-1") == 1 })

	for _, c := range []struct {
		t            api.EventType
		config, node string
	}{{api.EventRolloutStarted, v2, ""}, {api.EventRolloutFinished, v2, ""}, {api.EventNodeDegraded, "", "w-0"}} {
		if n := sink.count(c.t, c.config, c.node); n != 1 {
			t.Errorf("%s %s%s sent %d times, want once:\n%s", c.t, c.config, c.node, n, sink)
		}
	}
	sink.mu.Lock()
	if sink.refused != 2 {
		t.Errorf("the webhook refused %d attempts, want 2 (then retried)", sink.refused)
	}
	for i, ok := range sink.sigs {
		if !ok {
			t.Errorf("webhook event %d (%s): X-Signature does not match the HMAC of its body", i, sink.hooks[i].Type)
		}
	}
	for id, n := range sink.deliv {
		if n != 1 {
			t.Errorf("delivery %s arrived %d times", id, n)
		}
	}
	for _, e := range sink.hooks {
		if e.ID == "" || e.FleetCommit == "" || e.Message == "" || e.Time.IsZero() {
			t.Errorf("webhook event lacks id, fleetCommit, message or time: %+v", e)
		}
	}
	sink.mu.Unlock()
	// The restarted hub's counters: w-1's event delivered to both, nothing dropped.
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	for _, m := range []string{`stoker_hub_notify_deliveries_total{receiver="ops",result="delivered"} 1`,
		`stoker_hub_notify_deliveries_total{receiver="team-chat",result="delivered"} 1`, "stoker_hub_notify_dropped_total 0",
		`stoker_hub_notify_events_total{type="NodeDegraded"} 1`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(f.Dir, "logs", "hub*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if strings.Contains(string(data), "SLACKSECRETPATH") || strings.Contains(string(data), "/hook") || strings.Contains(string(data), hmacKey) {
			t.Errorf("%s holds a receiver's URL path or key", filepath.Base(l))
		}
		if !strings.Contains(string(data), "notification sent") {
			t.Errorf("%s logs no delivery", filepath.Base(l))
		}
	}
}

// TestNotificationsURLInGit: a URL in the repo's notifications file is
// refused by `stoker validate`, naming the file and the field.
func TestNotificationsURLInGit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo := simpleRepo("1", false, "v1")
	repo[api.NotificationsFile] = "receivers:\n  - name: chat\n    type: slack\n    url: https://hooks.example/services/T/B/X\n"
	for name, content := range repo {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runStoker(t, "validate", dir)
	if err == nil || !strings.Contains(out, ".stoker/notifications.yaml: receivers[0].url: a receiver's URL and secrets never come from Git") {
		t.Fatalf("stoker validate = %v:\n%s\nwant the url refused with file and field", err, out)
	}
}

// runStoker runs the binary under test and returns its combined output.
func runStoker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, stokerBin, args...).CombinedOutput()
	return string(out), err
}

// TestNotificationsRenderFailedAndUnreachable: a commit that fails
// validation and an agent gone silent reach the webhook as RenderFailed
// (naming the file) and NodeUnreachable, each once.
func TestNotificationsRenderFailedAndUnreachable(t *testing.T) {
	t.Parallel()
	sink, srv := newEventSink(t, 0)
	repo := simpleRepo("1", false, "v1")
	repo[api.NotificationsFile] = notificationsYAML
	f := newFleetNoHub(t, map[string]map[string]string{"main": repo})
	if _, err := f.StartHub("--notify-secrets-dir", notifySecrets(t, srv), "--agent-heartbeat", "1s", "--unreachable-after", "10"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"w-0", "w-1"} {
		if _, err := f.AddNode(worker(n, "a"), "--heartbeat", "1s"); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, f, "", 2*time.Minute)

	// /usr/bin is not a path a running node may be given.
	bad := fileMC("70-bad", "worker", "/usr/bin/e2e-bad", "x")
	if _, err := f.Commit("main", map[string]string{"machineconfigs/70-bad.yaml": bad}, nil, "a file outside the allowed paths"); err != nil {
		t.Fatal(err)
	}
	waitSink(t, sink, "RenderFailed", func() bool { return sink.count(api.EventRenderFailed, "", "") == 1 })
	sink.mu.Lock()
	for _, e := range sink.hooks {
		if e.Type == api.EventRenderFailed && (!strings.Contains(e.Message, "machineconfigs/70-bad.yaml") || strings.Join(e.Pools, ",") != "master,worker") {
			// A default branch that fails validation holds every pool: one
			// event names them all.
			t.Errorf("RenderFailed %+v: want one event for both pools, naming the file", e)
		}
	}
	sink.mu.Unlock()

	f.Agent("w-1").Kill()
	waitSink(t, sink, "w-1 Unreachable on both receivers", func() bool {
		return sink.count(api.EventNodeUnreachable, "", "w-1") == 1 && sink.slackHas("NodeUnreachable", "w-1")
	})
	if sink.slackHas("RenderFailed") {
		t.Errorf("the Slack receiver got RenderFailed, which its events filter leaves out:\n%s", sink)
	}
}
