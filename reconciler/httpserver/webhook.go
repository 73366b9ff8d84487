package httpserver

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
)

// maxWebhookBody bounds what the webhook reads; push payloads are small.
const maxWebhookBody = 5 << 20

// errBadSignature is returned for a webhook whose signature or token does
// not match the configured secret.
var errBadSignature = errors.New("webhook signature or token does not match")

// verifyWebhook checks a push webhook from GitHub (X-Hub-Signature-256 or
// X-Hub-Signature, HMAC of the body), Gitea/Forgejo/Gogs (X-Gitea-Signature
// and friends, hex HMAC-SHA256) or GitLab (X-Gitlab-Token, the secret
// itself). With no secret configured every request is refused: an open
// endpoint that makes the hub fetch is a denial-of-service lever.
func verifyWebhook(r *http.Request, body, secret []byte) error {
	if len(secret) == 0 {
		return errors.New("webhook secret not configured")
	}
	h := r.Header
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		return checkHMAC(sha256.New, secret, body, strings.TrimPrefix(sig, "sha256="))
	}
	for _, name := range []string{"X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature"} {
		if sig := h.Get(name); sig != "" {
			return checkHMAC(sha256.New, secret, body, sig)
		}
	}
	if sig := h.Get("X-Hub-Signature"); sig != "" {
		return checkHMAC(sha1.New, secret, body, strings.TrimPrefix(sig, "sha1="))
	}
	if tok := h.Get("X-Gitlab-Token"); tok != "" {
		if subtle.ConstantTimeCompare([]byte(tok), secret) == 1 {
			return nil
		}
		return errBadSignature
	}
	return errors.New("webhook carries no signature or token header")
}

func checkHMAC(newHash func() hash.Hash, secret, body []byte, hexSig string) error {
	want, err := hex.DecodeString(hexSig)
	if err != nil {
		return errBadSignature
	}
	mac := hmac.New(newHash, secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return errBadSignature
	}
	return nil
}

// webhookHandler answers POST /hooks/git: a verified push triggers an
// immediate reconcile (without waiting for the poll interval).
func webhookHandler(secret func() []byte, trigger func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := verifyWebhook(r, body, secret()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		trigger()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "reconcile triggered\n")
	}
}
