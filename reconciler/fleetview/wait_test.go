package fleetview

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/gitserver"
)

func fleetFiles(t *testing.T, updated metav1.ConditionStatus) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, p := range []api.PoolFleet{
		{Name: "worker", Config: "rendered-worker-1", MachineCount: 1, Conditions: []metav1.Condition{{Type: api.PoolUpdated, Status: updated, Reason: "X",
			LastTransitionTime: metav1.NewTime(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}}},
		{Name: "infra", Config: "rendered-infra-1"},
	} {
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		files[api.PoolFile(p.Name)] = string(b)
	}
	for _, n := range []api.NodeFleet{{Name: "w1", Pool: "worker"}, {Name: "i1", Pool: "infra"}} {
		b, _ := yaml.Marshal(n)
		files[api.NodeFile(n.Name)] = string(b)
	}
	return files
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestStatusPoolFilterWideAndWait: `stoker status worker` shows only that
// pool and its nodes, -o wide adds columns, an unknown pool is named, and
// --wait-for Updated returns once the pool is Updated (or fails with
// ErrWaitTimeout after --timeout).
func TestStatusPoolFilterWideAndWait(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", fleetFiles(t, metav1.ConditionFalse), api.FleetBranch)
	url := srv.URL("config")
	var out bytes.Buffer
	if err := RunStatus(context.Background(), StatusOptions{RepoURL: url, Pools: []string{"worker"}, Output: "wide", Out: &out}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "infra") || strings.Contains(out.String(), "i1") || !strings.Contains(out.String(), "w1") ||
		!strings.Contains(out.String(), "UNAVAILABLEMACHINECOUNT") {
		t.Fatalf("stoker status worker -o wide:\n%s", out.String())
	}
	if err := RunStatus(context.Background(), StatusOptions{RepoURL: url, Pools: []string{"nope"}, Out: &out}); err == nil || !strings.Contains(err.Error(), `no pool "nope"`) {
		t.Fatalf("unknown pool: %v", err)
	}
	if err := RunStatus(context.Background(), StatusOptions{RepoURL: url, WaitFor: "Bogus", Out: &out}); err == nil || !strings.Contains(err.Error(), "--wait-for") {
		t.Fatalf("bad condition: %v", err)
	}
	// The timeout path: the condition never holds.
	err := RunStatus(context.Background(), StatusOptions{RepoURL: url, Pools: []string{"worker"}, WaitFor: "Updated", Timeout: time.Second,
		Interval: 100 * time.Millisecond, Out: &out})
	if !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("want ErrWaitTimeout, got %v", err)
	}
	// The success path: the hub marks the pool Updated while we wait.
	done := make(chan error, 1)
	var waited syncBuf
	go func() {
		done <- RunStatus(context.Background(), StatusOptions{RepoURL: url, Pools: []string{"worker"}, WaitFor: "condition=Updated=True",
			Timeout: 2 * time.Minute, Interval: 50 * time.Millisecond, Output: "json", Out: &waited})
	}()
	if _, err := srv.Seed("config", fleetFiles(t, metav1.ConditionTrue), nil, api.FleetBranch); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(waited.String(), `"status": "True"`) {
		t.Fatalf("printed after the wait:\n%s", waited.String())
	}
}

// TestVersionReadsHub: `stoker version -o json --repo` prints the client's
// build and the hub's, read from hub.yaml on stoker/fleet.
func TestVersionReadsHub(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	files := fleetFiles(t, metav1.ConditionTrue)
	files[api.HubFile] = "version: v9.8.7\nrevision: abcdef0123\ngoVersion: go1.26\n"
	srv.SeedRepo(t, "config", files, api.FleetBranch)
	var out bytes.Buffer
	err := RunVersion(context.Background(), VersionOptions{Client: api.HubInfo{Version: "v1.0.0", GoVersion: "go1.26"},
		RepoURL: srv.URL("config"), Output: "json", Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"version": "v9.8.7"`) || !strings.Contains(out.String(), `"version": "v1.0.0"`) {
		t.Fatalf("version -o json:\n%s", out.String())
	}
	out.Reset()
	if err := RunVersion(context.Background(), VersionOptions{Client: api.HubInfo{Version: "v1.0.0"}, Out: &out}); err != nil || !strings.HasPrefix(out.String(), "Client: v1.0.0") {
		t.Fatalf("version: %v %q", err, out.String())
	}
}
