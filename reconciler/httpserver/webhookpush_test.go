package httpserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
)

// TestWebhookEvents: only a verified push to a watched branch triggers a
// reconcile; a GitHub ping, other events and pushes to other branches are
// answered 200 and fetch nothing. Bitbucket (Cloud and Data Center) and
// Azure DevOps payloads are understood; every delivery is counted.
func TestWebhookEvents(t *testing.T) {
	secret := []byte("s3cret")
	sig := func(body string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	watched := func(b string) bool { return b == "main" || b == "canary" }
	tests := []struct {
		name, body string
		headers    map[string]string
		basic      string // Azure DevOps password
		status     int
		triggered  bool
		forge      string
		result     string
	}{
		{"github ping", `{"zen":"Keep it logically awesome.","hook_id":1}`, map[string]string{"X-GitHub-Event": "ping"}, "", 200, false, "github", "ignored"},
		{"github push main", `{"ref":"refs/heads/main"}`, map[string]string{"X-GitHub-Event": "push"}, "", 202, true, "github", "triggered"},
		{"github push elsewhere", `{"ref":"refs/heads/feature/x"}`, map[string]string{"X-GitHub-Event": "push"}, "", 200, false, "github", "ignored"},
		{"github tag", `{"ref":"refs/tags/v1"}`, map[string]string{"X-GitHub-Event": "push"}, "", 200, false, "github", "ignored"},
		{"github issues", `{"action":"opened"}`, map[string]string{"X-GitHub-Event": "issues"}, "", 200, false, "github", "ignored"},
		{"gitlab push", `{"ref":"refs/heads/canary"}`, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret"}, "", 202, true, "gitlab", "triggered"},
		{"gitlab tag push", `{"ref":"refs/tags/v1"}`, map[string]string{"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": "s3cret"}, "", 200, false, "gitlab", "ignored"},
		{"gitea push", `{"ref":"refs/heads/main"}`, map[string]string{"X-Gitea-Event": "push"}, "", 202, true, "gitea", "triggered"},
		{"bitbucket cloud push", `{"push":{"changes":[{"new":{"type":"branch","name":"main"},"old":{"type":"branch","name":"main"}}]}}`,
			map[string]string{"X-Event-Key": "repo:push"}, "", 202, true, "bitbucket", "triggered"},
		{"bitbucket cloud push other", `{"push":{"changes":[{"new":{"type":"branch","name":"wip"}}]}}`,
			map[string]string{"X-Event-Key": "repo:push"}, "", 200, false, "bitbucket", "ignored"},
		{"bitbucket dc refs changed", `{"changes":[{"ref":{"id":"refs/heads/canary","type":"BRANCH"}}]}`,
			map[string]string{"X-Event-Key": "repo:refs_changed"}, "", 202, true, "bitbucket", "triggered"},
		{"bitbucket pr", `{"pullrequest":{}}`, map[string]string{"X-Event-Key": "pullrequest:created"}, "", 200, false, "bitbucket", "ignored"},
		{"azure devops push", `{"eventType":"git.push","resource":{"refUpdates":[{"name":"refs/heads/main"}]}}`, nil, "s3cret", 202, true, "azure-devops", "triggered"},
		{"azure devops pr", `{"eventType":"git.pullrequest.created","resource":{}}`, nil, "s3cret", 200, false, "azure-devops", "ignored"},
		{"azure devops wrong password", `{"eventType":"git.push","resource":{"refUpdates":[{"name":"refs/heads/main"}]}}`, nil, "nope", 401, false, "generic", "rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			triggered := false
			h := hook{secret: func() []byte { return secret }, trigger: func() error { triggered = true; return nil },
				maxBody: maxWebhookBody, log: logrus.New(), watched: watched, metrics: m}.handler()
			req := httptest.NewRequest("POST", "/hooks/git", strings.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if tc.basic != "" {
				req.SetBasicAuth("stoker", tc.basic)
			} else if req.Header.Get("X-Gitlab-Token") == "" {
				req.Header.Set("X-Hub-Signature-256", sig(tc.body))
				if req.Header.Get("X-Event-Key") != "" {
					req.Header.Del("X-Hub-Signature-256")
					req.Header.Set("X-Hub-Signature", sig(tc.body)) // Bitbucket's header
				}
			}
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != tc.status || triggered != tc.triggered {
				t.Fatalf("status %d triggered %v, want %d %v (%s)", rec.Code, triggered, tc.status, tc.triggered, rec.Body)
			}
			if got := promtest.ToFloat64(m.webhooks.WithLabelValues(tc.forge, tc.result)); got != 1 {
				t.Fatalf("stoker_hub_webhooks_total{forge=%q,result=%q} = %v", tc.forge, tc.result, got)
			}
		})
	}
}
