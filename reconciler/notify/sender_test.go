package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"

	"stoker.dev/stoker/api"
)

// receiver is a real HTTP server that fails its first fails requests
// per path with 503 and records every request.
type receiver struct {
	mu    sync.Mutex
	fails map[string]int
	got   chan got
}

type got struct {
	path    string
	body    []byte
	headers http.Header
}

func newReceiver(t *testing.T, fails map[string]int) (*receiver, *httptest.Server) {
	r := &receiver{fails: fails, got: make(chan got, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		fail := r.fails[req.URL.Path] > 0
		if fail {
			r.fails[req.URL.Path]--
		}
		r.mu.Unlock()
		if fail {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		if req.URL.Path == "/gone" {
			http.Error(w, "no such hook", http.StatusNotFound)
		}
		r.got <- got{path: req.URL.Path, body: body, headers: req.Header}
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func writeSecret(t *testing.T, dir, ref string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, ref), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, ref, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSenderDelivers(t *testing.T) {
	rcv, srv := newReceiver(t, map[string]int{"/hook": 2})
	dir := t.TempDir()
	writeSecret(t, dir, "ops", map[string]string{"url": srv.URL + "/hook", "hmac-key": "k3y", "token": "t0ken"})
	writeSecret(t, dir, "chat", map[string]string{"url": srv.URL + "/services/T0/B0/SLACKSECRET"})
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetLevel(logrus.DebugLevel)
	reg := prometheus.NewRegistry()
	s := NewSender(Options{SecretsDir: dir, Registerer: reg, Log: log,
		Backoff: wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 4}})
	s.SetReceivers([]api.Receiver{
		{Name: "ops", Type: api.ReceiverWebhook, Events: []api.EventType{api.EventNodeDegraded}},
		{Name: "chat", Type: api.ReceiverSlack, Pools: []string{"worker"}},
		{Name: "infra-only", Type: api.ReceiverSlack, Pools: []string{"infra"}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer cancel()

	ev := Event{ID: "id1", Type: api.EventNodeDegraded, Pools: []string{"worker"}, Node: "w-0", Message: "node w-0 (pool worker) is Degraded: boom"}
	s.Notify([]Event{ev})
	seen := map[string]got{}
	for len(seen) < 2 {
		select {
		case g := <-rcv.got:
			seen[g.path] = g
		case <-time.After(time.Minute):
			t.Fatalf("deliveries: got %d of 2", len(seen))
		}
	}
	hook := seen["/hook"]
	var back Event
	if err := json.Unmarshal(hook.body, &back); err != nil || back.ID != "id1" || back.Node != "w-0" || back.Type != api.EventNodeDegraded {
		t.Errorf("webhook body %s (%v)", hook.body, err)
	}
	if sig := hook.headers.Get("X-Signature"); sig != "sha256="+Sign([]byte("k3y"), hook.body) {
		t.Errorf("X-Signature %q does not sign the body with the key", sig)
	}
	if a := hook.headers.Get("Authorization"); a != "Bearer t0ken" {
		t.Errorf("Authorization %q", a)
	}
	var slack map[string]string
	if err := json.Unmarshal(seen["/services/T0/B0/SLACKSECRET"].body, &slack); err != nil || !strings.Contains(slack["text"], "NodeDegraded: node w-0") || len(slack) != 1 {
		t.Errorf("slack body %s (%v)", seen["/services/T0/B0/SLACKSECRET"].body, err)
	}
	// Two 503s were retried; the third attempt went through.
	if n := testutil.ToFloat64(s.m.retries.WithLabelValues("ops")); n != 2 {
		t.Errorf("retries of ops = %v, want 2", n)
	}
	waitDelivered(t, s, "ops", 1)
	waitDelivered(t, s, "chat", 1)
	cancel()
	<-done // the sender's log lines are all written
	if strings.Contains(logs.String(), "SLACKSECRET") || strings.Contains(logs.String(), "t0ken") || strings.Contains(logs.String(), "/hook") {
		t.Errorf("a secret reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "notification sent") {
		t.Errorf("no delivery logged:\n%s", logs.String())
	}
}

func waitDelivered(t *testing.T, s *Sender, r string, want float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for testutil.ToFloat64(s.m.deliveries.WithLabelValues(r, "delivered")) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: delivered %v, want %v", r, testutil.ToFloat64(s.m.deliveries.WithLabelValues(r, "delivered")), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSenderGivesUp: a 4xx is not retried, a receiver down for good is
// retried Steps times, and neither blocks the next delivery.
func TestSenderGivesUp(t *testing.T) {
	rcv, srv := newReceiver(t, map[string]int{"/down": 1000})
	dir := t.TempDir()
	writeSecret(t, dir, "gone", map[string]string{"url": srv.URL + "/gone"})
	writeSecret(t, dir, "down", map[string]string{"url": srv.URL + "/down"})
	writeSecret(t, dir, "ok", map[string]string{"url": srv.URL + "/ok"})
	s := NewSender(Options{SecretsDir: dir, Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 3}})
	s.SetReceivers([]api.Receiver{{Name: "gone", Type: api.ReceiverWebhook}, {Name: "down", Type: api.ReceiverWebhook},
		{Name: "ok", Type: api.ReceiverWebhook}, {Name: "nosecret", Type: api.ReceiverWebhook}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	s.Notify([]Event{{ID: "x", Type: api.EventRenderFailed, Message: "m"}})
	paths := map[string]bool{}
	for !paths["/ok"] {
		select {
		case g := <-rcv.got:
			paths[g.path] = true
		case <-time.After(time.Minute):
			t.Fatal("the healthy receiver got nothing")
		}
	}
	deadline := time.Now().Add(time.Minute)
	for testutil.ToFloat64(s.m.deliveries.WithLabelValues("nosecret", "failed")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the receiver without a secret was not counted failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range []string{"gone", "down"} {
		if n := testutil.ToFloat64(s.m.deliveries.WithLabelValues(r, "failed")); n != 1 {
			t.Errorf("%s failed = %v, want 1", r, n)
		}
	}
	if n := testutil.ToFloat64(s.m.retries.WithLabelValues("gone")); n != 0 {
		t.Errorf("a 404 was retried %v times", n)
	}
	if n := testutil.ToFloat64(s.m.retries.WithLabelValues("down")); n != 3 {
		t.Errorf("down retried %v times, want 3 (Steps)", n)
	}
}

// TestSenderQueueDropsOldest: Notify never blocks; past the queue's size
// the oldest delivery goes and is counted.
func TestSenderQueueDropsOldest(t *testing.T) {
	s := NewSender(Options{SecretsDir: t.TempDir(), Queue: 3})
	s.SetReceivers([]api.Receiver{{Name: "r", Type: api.ReceiverWebhook}})
	for i := 0; i < 5; i++ {
		s.Notify([]Event{{ID: string(rune('a' + i)), Type: api.EventNodeDegraded}})
	}
	if n := testutil.ToFloat64(s.m.dropped); n != 2 {
		t.Errorf("dropped = %v, want 2", n)
	}
	var ids []string
	for _, d := range s.queue {
		ids = append(ids, d.e.ID)
	}
	if strings.Join(ids, "") != "cde" {
		t.Errorf("queue holds %v, want the newest c d e", ids)
	}
}
