package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"k8s.io/apimachinery/pkg/util/wait"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// flakyRepo wraps a real repository: the first failHeads Head calls fail
// with a refused connection (what a Git outage looks like), and every
// Commit is counted.
type flakyRepo struct {
	gitsource.Repo
	mu        sync.Mutex
	failHeads int
	heads     int
	commits   int
}

func (f *flakyRepo) Head(ctx context.Context, b string) (string, error) {
	f.mu.Lock()
	f.heads++
	fail := f.heads <= f.failHeads
	f.mu.Unlock()
	if fail {
		return "", fmt.Errorf("ls-remote: %w", syscall.ECONNREFUSED)
	}
	return f.Repo.Head(ctx, b)
}

func (f *flakyRepo) Commit(ctx context.Context, req gitsource.CommitRequest) (string, error) {
	f.mu.Lock()
	f.commits++
	f.mu.Unlock()
	return f.Repo.Commit(ctx, req)
}

func openRepo(t *testing.T, url string) gitsource.Repo {
	t.Helper()
	g, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: t.TempDir()})
	must(t, err)
	return g
}

// TestNodeNameAndLabelsCheckedAtStart: names that are no DNS-1123
// subdomain or no Git ref component, and bad labels, stop the agent at
// start with a clear error, before anything is pushed (issue 15 #11: they
// started fine and retried an impossible push forever; "a/b" blocked "a").
func TestNodeNameAndLabelsCheckedAtStart(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	for _, tc := range []struct {
		node   string
		labels map[string]string
		want   string
	}{
		{"my node", nil, `--node: node name "my node" is not a DNS-1123 subdomain`},
		{"../evil", nil, `"../evil" is not a DNS-1123 subdomain`},
		{"a/b", nil, `"a/b" is not a DNS-1123 subdomain`},
		{"Web-1", nil, "drop-in"},
		{"x.lock", nil, "valid Git branch"},
		{node, map[string]string{"bad key": ""}, `--labels: label key "bad key"`},
		{node, map[string]string{"zone": "a b"}, `--labels: label zone value "a b"`},
	} {
		t.Run(tc.node+fmt.Sprint(tc.labels), func(t *testing.T) {
			o := e.options()
			o.Node, o.Labels = tc.node, tc.labels
			err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error saying %q", err, tc.want)
			}
			if refs, _ := openRepo(t, e.srv.URL("cfg")).Refs(context.Background(), api.ReportsBranchPrefix); len(refs) != 0 {
				t.Fatalf("report branches pushed: %v", refs)
			}
			if !e.at(nil) {
				t.Fatal("something was applied")
			}
		})
	}
}

// TestShippedUnitNodeName: the shipped unit passes the host name (%H), so
// it documents the rule and the way out, and typical host names pass.
func TestShippedUnitNodeName(t *testing.T) {
	unit, err := os.ReadFile("../deploy/systemd/stoker-agent.service")
	must(t, err)
	if !strings.Contains(string(unit), "--node %H") || !strings.Contains(string(unit), "DNS-1123") || !strings.Contains(string(unit), "drop-in") {
		t.Fatalf("stoker-agent.service must pass --node %%H and say that the host name must be a DNS-1123 name, and how to override it in a drop-in:\n%s", unit)
	}
	for _, h := range []string{"node-1", "worker-0.example.com", "ip-10-0-1-7.ec2.internal", "vm"} {
		if err := api.ValidateNodeName(h); err != nil {
			t.Errorf("host name %s: %v", h, err)
		}
	}
}

// TestOnceRetriesTransientWithJitter: with --once, a Git outage is retried
// with the injected wait.Backoff (delays grow, jittered) until the node
// converges; before, --once returned on the first failure.
func TestOnceRetriesTransientWithJitter(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	o := e.options()
	real := openRepo(t, e.srv.URL("cfg"))
	o.Status = &flakyRepo{Repo: real, failHeads: 4}
	o.Reports = real
	o.Backoff = wait.Backoff{Duration: time.Millisecond, Factor: 2, Jitter: 1, Steps: 20, Cap: time.Second}
	log, hook := logtest.NewNullLogger()
	o.Log = log
	must(t, e.converge(o))
	if r := e.report(); r.State != api.StateDone || !e.at(c1) {
		t.Fatalf("report %+v, at c1 %v", r, e.at(c1))
	}
	var delays []time.Duration
	for _, en := range hook.AllEntries() {
		if en.Message == "agent step failed" {
			d, ok := en.Data["retry"].(time.Duration)
			if !ok {
				t.Fatalf("retry warning without a retry delay: %v", en.Data)
			}
			delays = append(delays, d)
		}
	}
	if len(delays) != 4 {
		t.Fatalf("retried %d times (%v), want 4", len(delays), delays)
	}
	exact := true
	for i, d := range delays {
		base := time.Millisecond << i
		if d < base || d > 2*base {
			t.Errorf("delay %d = %v, want in [%v, %v] (doubling, jitter 1)", i, d, base, 2*base)
		}
		exact = exact && d == base
	}
	if exact {
		t.Errorf("delays %v have no jitter", delays)
	}
	if b := DefaultBackoff(time.Second); b.Jitter <= 0 || b.Factor <= 1 {
		t.Errorf("default backoff %+v has no jitter or growth", b)
	}
}

// TestOnceStopsOnPermanentError: a repository that does not exist is a
// permanent error: --once returns it at once, and a report flush tries it
// once instead of retrying until its minute is up.
func TestOnceStopsOnPermanentError(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	o := e.options()
	missing := &flakyRepo{Repo: openRepo(t, e.srv.URL("missing"))}
	o.Status, o.Reports = missing, missing
	o.ReportBackoff = time.Millisecond
	err := Run(context.Background(), o)
	if err == nil || gitsource.IsRetryable(err) {
		t.Fatalf("Run = %v, want a permanent error", err)
	}

	flushed := &flakyRepo{Repo: openRepo(t, e.srv.URL("missing"))}
	rep := NewReporter(ReporterOptions{Repo: flushed, Node: node, Log: logrus.New(),
		Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 2, Jitter: 1, Steps: 30, Cap: time.Second}})
	rep.Update(func(r *api.Report) { r.State = api.StateDone })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = rep.Flush(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush = %v, want the permanent error at once", err)
	}
	if flushed.heads != 1 {
		t.Fatalf("Flush read the missing repository %d times, want once: a permanent error is not retried", flushed.heads)
	}
}
