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

// httpUserinfoRE finds "http(s)://userinfo@" and passwordRE
// "scheme://user:password@" anywhere in a string, e.g. inside a go-git
// error message.
var (
	httpUserinfoRE = regexp.MustCompile(`(?i)(https?://)[^/@\s]*@`)
	passwordRE     = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*):[^/@\s]*@`)
)

// Redact returns rawURL safe for logs and errors: HTTP(S) URLs lose their
// whole userinfo (a token often sits in the user name), other URLs lose the
// password, and every URL loses its query and fragment. A string that does
// not parse as a URL (scp-like "git@host:path") loses anything before '@'
// that contains ':' .
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if at := strings.LastIndex(rawURL, "@"); at >= 0 && strings.Contains(rawURL[:at], ":") {
			return "redacted@" + rawURL[at+1:]
		}
		return scrubURLs(rawURL)
	}
	if u.User != nil {
		switch u.Scheme {
		case "http", "https":
			u.User = url.User("redacted")
		default:
			u.User = url.User(u.User.Username())
		}
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return u.String()
}

// redactor removes known secrets (passwords, tokens, URL userinfo) from
// error messages; the wrapped error stays reachable for errors.Is/As.
type redactor struct {
	r *strings.Replacer
}

func newRedactor(secrets ...string) redactor {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 3 { // shorter strings would mangle ordinary text
			pairs = append(pairs, s, "[redacted]")
		}
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) string(s string) string {
	return scrubURLs(r.r.Replace(s))
}

func scrubURLs(s string) string {
	s = httpUserinfoRE.ReplaceAllString(s, "${1}redacted@")
	return passwordRE.ReplaceAllString(s, "${1}@")
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
