package httpserver

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestWebhook(t *testing.T) {
	secret := []byte("s3cret")
	body := `{"ref":"refs/heads/main"}`
	sign := func(key []byte, sha1Sum bool) string {
		if sha1Sum {
			m := hmac.New(sha1.New, key)
			m.Write([]byte(body))
			return "sha1=" + hex.EncodeToString(m.Sum(nil))
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(body))
		return hex.EncodeToString(m.Sum(nil))
	}
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		secret  []byte
		status  int
	}{
		{"github sha256", "POST", map[string]string{"X-Hub-Signature-256": "sha256=" + sign(secret, false)}, secret, 202},
		{"github sha1", "POST", map[string]string{"X-Hub-Signature": sign(secret, true)}, secret, 202},
		{"github wrong key", "POST", map[string]string{"X-Hub-Signature-256": "sha256=" + sign([]byte("other"), false)}, secret, 401},
		{"github garbage", "POST", map[string]string{"X-Hub-Signature-256": "sha256=zz"}, secret, 401},
		{"gitea", "POST", map[string]string{"X-Gitea-Signature": sign(secret, false)}, secret, 202},
		{"gitea wrong", "POST", map[string]string{"X-Gitea-Signature": sign([]byte("x"), false)}, secret, 401},
		{"gitlab token", "POST", map[string]string{"X-Gitlab-Token": "s3cret"}, secret, 202},
		{"gitlab wrong token", "POST", map[string]string{"X-Gitlab-Token": "s3cret2"}, secret, 401},
		{"unsigned", "POST", nil, secret, 401},
		{"no secret configured", "POST", map[string]string{"X-Gitlab-Token": ""}, nil, 401},
		{"GET refused", "GET", nil, secret, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			triggered := 0
			h := webhookHandler(func() []byte { return tc.secret }, func() error { triggered++; return nil }, maxWebhookBody, logrus.New())
			req := httptest.NewRequest(tc.method, "/hooks/git", strings.NewReader(body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.status == http.StatusAccepted]; triggered != want {
				t.Fatalf("triggered %d times, want %d", triggered, want)
			}
		})
	}
}
