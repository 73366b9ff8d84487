package gitsource

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh/knownhosts"
)

// urlRE finds URLs ("scheme://...") inside a string such as a go-git
// error message, so each can be redacted as a URL.
var urlRE = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redactedMark stands where a secret was.
const redactedMark = "xxxxx"

// Redact returns rawURL safe for logs and errors. It removes passwords and
// tokens only: the password as net/url's URL.Redacted does, the query and
// fragment (tokens travel there, e.g. ?private_token=), and for http(s)
// URLs a user name with no password, because that is how a bare token is
// put into an HTTPS URL (https://TOKEN@host/...) and how Load uses it.
// User names stay readable everywhere else: ssh://git@github.com/org/r.git
// is returned as is. A scp-like "user:password@host:path" loses the
// password.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if at := strings.LastIndex(rawURL, "@"); at >= 0 && !strings.Contains(rawURL, "://") {
			if user, _, ok := strings.Cut(rawURL[:at], ":"); ok {
				return user + ":" + redactedMark + rawURL[at:]
			}
		}
		return rawURL
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); !hasPassword && (u.Scheme == "http" || u.Scheme == "https") {
			u.User = url.User(redactedMark)
		}
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.Redacted()
}

// redactor removes known secrets (passwords and tokens, by exact value)
// and the secrets of every URL (Redact) from error messages; the wrapped
// error stays reachable for errors.Is/As. User names are never secrets.
type redactor struct {
	r *strings.Replacer
}

func newRedactor(secrets ...string) redactor {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 3 { // shorter strings would mangle ordinary text
			pairs = append(pairs, s, redactedMark)
		}
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) string(s string) string {
	return scrubURLs(r.r.Replace(s))
}

// scrubURLs redacts every URL found in s.
func scrubURLs(s string) string {
	return urlRE.ReplaceAllStringFunc(s, Redact)
}

// err wraps err so that its message carries no secret.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := r.string(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// IsRetryable reports whether err is transient: a timeout or deadline, a
// refused or reset connection, a dropped stream, or a server 5xx. Auth
// failures, unknown host keys, missing repositories or refs, conflicts and
// anything unrecognised are permanent: retrying them unchanged cannot help.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrRefNotFound), errors.Is(err, ErrNothingToCommit),
		errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.Is(err, context.Canceled):
		return false
	}
	var keyErr *knownhosts.KeyError
	if errors.As(err, &keyErr) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var httpErr *githttp.Err
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		code := httpErr.StatusCode()
		return code >= 500 || code == 429 || code == 408
	}
	var unexpected *plumbing.UnexpectedError
	if errors.As(err, &unexpected) && errors.As(unexpected.Err, &httpErr) {
		code := httpErr.StatusCode()
		return code >= 500 || code == 429 || code == 408
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "knownhosts:") {
		return false
	}
	for _, s := range []string{"unexpected EOF", "connection reset", "broken pipe", "i/o timeout", "connection refused"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
