package httpserver

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/sirupsen/logrus"
)

// maxWebhookBody is the default bound on a webhook body; push payloads are
// small (GitHub caps them at 25 MB, with commits lists; 5 MiB is plenty
// for a ref update).
const maxWebhookBody = 5 << 20

// errBadSignature is returned for a webhook whose signature or token does
// not match the configured secret.
var errBadSignature = errors.New("webhook signature or token does not match")

// verifyWebhook checks a push webhook from GitHub (X-Hub-Signature-256 or
// X-Hub-Signature, HMAC of the body), Gitea/Forgejo/Gogs (X-Gitea-Signature
// and friends, hex HMAC-SHA256) or GitLab (X-Gitlab-Token, the secret
// itself), Bitbucket (X-Hub-Signature sha256=) or Azure DevOps (basic
// auth, the secret as password). With no secret configured every request is refused: an open
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
		// Bitbucket signs with SHA-256 under GitHub's old header name.
		if hexSig, ok := strings.CutPrefix(sig, "sha256="); ok {
			return checkHMAC(sha256.New, secret, body, hexSig)
		}
		return checkHMAC(sha1.New, secret, body, strings.TrimPrefix(sig, "sha1="))
	}
	if tok := h.Get("X-Gitlab-Token"); tok != "" {
		if subtle.ConstantTimeCompare([]byte(tok), secret) == 1 {
			return nil
		}
		return errBadSignature
	}
	// Azure DevOps service hooks send the secret as basic auth's password.
	if _, pass, ok := r.BasicAuth(); ok {
		if subtle.ConstantTimeCompare([]byte(pass), secret) == 1 {
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
// immediate reconcile (without waiting for the poll interval). The body is
// read through http.MaxBytesReader (over maxBody: 413); every rejected
// request is logged once, with the client and why.
func webhookHandler(secret func() []byte, trigger func() error, maxBody int64, log logrus.FieldLogger) http.HandlerFunc {
	return hook{secret: secret, trigger: trigger, maxBody: maxBody, log: log}.handler()
}

// hook is the webhook endpoint's configuration.
type hook struct {
	secret  func() []byte
	trigger func() error
	maxBody int64
	log     logrus.FieldLogger
	// watched says whether a push to branch concerns the hub; nil: all do.
	watched func(branch string) bool
	metrics *Metrics
}

// handler answers a verified push to a watched branch with 202 and a
// reconcile; any other verified event (a GitHub ping, an issue, a push to
// a branch the hub does not read) with 200 and no fetch.
func (k hook) handler() http.HandlerFunc {
	secret, trigger, maxBody, log := k.secret, k.trigger, k.maxBody, k.log
	return func(w http.ResponseWriter, r *http.Request) {
		reject := func(status int, why string) {
			log.WithFields(logrus.Fields{"remote": r.RemoteAddr, "status": status, "event": eventOf(r)}).
				Warn("rejected webhook: " + why)
			http.Error(w, why, status)
		}
		if r.Method != http.MethodPost {
			reject(http.StatusMethodNotAllowed, "POST only")
			return
		}
		if r.ContentLength > maxBody {
			reject(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the %d byte limit", r.ContentLength, maxBody))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				reject(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the %d byte limit", maxBody))
				return
			}
			reject(http.StatusBadRequest, "read body: "+err.Error())
			return
		}
		if err := verifyWebhook(r, body, secret()); err != nil {
			k.metrics.ObserveWebhook(parsePush(r.Header, nil).forge, "rejected")
			reject(http.StatusUnauthorized, err.Error())
			return
		}
		ev := parsePush(r.Header, body)
		if why := k.ignore(ev); why != "" {
			k.metrics.ObserveWebhook(ev.forge, "ignored")
			log.WithFields(logrus.Fields{"forge": ev.forge, "event": ev.event}).Debug("webhook ignored: " + why)
			_, _ = io.WriteString(w, "ignored: "+why+"\n")
			return
		}
		k.metrics.ObserveWebhook(ev.forge, "triggered")
		if err := trigger(); err != nil {
			log.WithError(err).Warn("webhook verified but not recorded; answered 503 so the sender retries")
			http.Error(w, "reconcile not triggered, retry: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "reconcile triggered\n")
	}
}

// eventOf names the forge's event header, for the log.
func eventOf(r *http.Request) string {
	for _, h := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event", "X-Gogs-Event"} {
		if v := r.Header.Get(h); v != "" {
			return v
		}
	}
	return ""
}
