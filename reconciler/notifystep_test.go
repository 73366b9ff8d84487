package reconciler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/notify"
)

// TestHubNotifies: the hub hands the sender the events of each fleet
// transition it pushes, once: a second reconcile over the same state, and
// a new hub (a restart) reading the same stoker/fleet, send nothing.
func TestHubNotifies(t *testing.T) {
	got := make(chan notify.Event, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- e
	}))
	defer srv.Close()
	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "ops"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "ops", "url"), []byte(srv.URL+"/hook"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml":   workerPool(false, 2),
		"mc/50-chrony.yaml":   fileMC("50-chrony", "worker", "/etc/chrony.conf", "server%20a"),
		api.NotificationsFile: "receivers:\n  - name: ops\n    type: webhook\n",
	})
	newSender := func() (*notify.Sender, func()) {
		s := notify.NewSender(notify.Options{SecretsDir: secrets, Backoff: wait.Backoff{Duration: time.Millisecond, Steps: 1}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		return s, func() { cancel(); <-done }
	}
	s, stop := newSender()
	defer stop()
	e.hub.cfg.Notify = s
	e.addNode("w1", "worker")
	e.reconcile()
	want := func(t api.EventType, node string) notify.Event {
		select {
		case ev := <-got:
			if ev.Type != t || ev.Node != node {
				e.t.Fatalf("got %s %s, want %s %s", ev.Type, ev.Node, t, node)
			}
			return ev
		case <-time.After(time.Minute):
			e.t.Fatalf("no %s event", t)
		}
		return notify.Event{}
	}
	ev := want(api.EventRolloutStarted, "")
	if ev.Config == "" || len(ev.Pools) != 1 || ev.Pools[0] != "worker" {
		t.Errorf("RolloutStarted %+v", ev)
	}
	current := map[string]string{}
	e.converge(current)
	e.reconcile()
	want(api.EventRolloutFinished, "")
	e.report("w1", api.StateDegraded, current["w1"])
	e.reconcile()
	want(api.EventNodeDegraded, "w1")
	e.reconcile()
	// A restarted hub: same Git, nothing new to tell.
	e.hub = e.newHub()
	s2, stop2 := newSender()
	defer stop2()
	e.hub.cfg.Notify = s2
	e.reconcile()
	e.report("w1", api.StateDone, current["w1"])
	e.reconcile()
	e.addNode("w2", "worker")
	e.report("w2", api.StateDegraded, "")
	e.reconcile()
	want(api.EventNodeDegraded, "w2") // and nothing in between

	// A file that fails validation (a URL in Git) changes nothing: the
	// receivers in force stay.
	e.push("main", map[string]string{api.NotificationsFile: "receivers:\n  - name: chat\n    type: slack\n    url: https://hooks.example/x\n"})
	e.reconcile()
	if rs := s2.Receivers(); len(rs) != 1 || rs[0].Name != "ops" {
		t.Errorf("receivers after a bad %s = %+v, want ops kept", api.NotificationsFile, rs)
	}
	e.push("main", map[string]string{api.NotificationsFile: "receivers:\n  - name: chat\n    type: slack\n"})
	e.reconcile()
	if rs := s2.Receivers(); len(rs) != 1 || rs[0].Name != "chat" {
		t.Errorf("receivers after a good %s = %+v, want chat", api.NotificationsFile, rs)
	}
}
