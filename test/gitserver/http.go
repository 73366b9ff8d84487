package gitserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// HTTPBackendPath is where git-http-backend is looked up first; otherwise
// `git --exec-path` is asked.
const HTTPBackendPath = "/usr/lib/git-core/git-http-backend"

// StartHTTP serves the bare repositories under root with `git http-backend`
// behind net/http/cgi on 127.0.0.1. Every request needs basic auth with the
// server's Username/Password or a bearer Token (random per server); the
// authenticated user is passed as REMOTE_USER so pushes are allowed.
func StartHTTP(root string) (*Server, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("start git http server: %w", err)
	}
	backend, err := httpBackend()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start git http server: %w", err)
	}
	s := &Server{Kind: HTTP, Root: root, Addr: l.Addr().String(),
		Username: "stoker", Password: "pw-" + randomHex(12), Token: "tok-" + randomHex(16)}
	h := &authHandler{users: map[string]string{s.Username: s.Password}, token: s.Token, tokenUser: s.Username,
		backend: cgi.Handler{
			Path: backend,
			Root: "/",
			Env: []string{
				"GIT_PROJECT_ROOT=" + root,
				"GIT_HTTP_EXPORT_ALL=1",
				"GIT_CONFIG_NOSYSTEM=1",
				"GIT_CONFIG_GLOBAL=/dev/null",
			},
		}}
	s.http = h
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	s.stop = func() error {
		err := srv.Close()
		<-done
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}
	return s, nil
}

func httpBackend() (string, error) {
	if _, err := exec.LookPath(HTTPBackendPath); err == nil {
		return HTTPBackendPath, nil
	}
	out, err := Git("", nil, "--exec-path")
	if err != nil {
		return "", fmt.Errorf("find git-http-backend: %w", err)
	}
	return filepath.Join(strings.TrimSpace(out), "git-http-backend"), nil
}

// authHandler admits basic auth or a bearer token and passes the
// authenticated user to git http-backend as REMOTE_USER.
type authHandler struct {
	mu               sync.Mutex
	users            map[string]string // user → password
	token, tokenUser string
	backend          cgi.Handler
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := ""
	if u, p, isBasic := r.BasicAuth(); isBasic {
		h.mu.Lock()
		want, known := h.users[u]
		h.mu.Unlock()
		if known && equal(p, want) {
			user = u
		}
	} else if tok, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); isBearer && equal(tok, h.token) {
		user = h.tokenUser
	}
	if user == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="stoker-test"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	next := h.backend
	next.Env = append(append([]string{}, h.backend.Env...), "REMOTE_USER="+user)
	next.ServeHTTP(w, r)
}

// AddHTTPUser admits another basic-auth user (HTTP only) and returns its
// random password; git http-backend sees it as REMOTE_USER.
func (s *Server) AddHTTPUser(name string) (string, error) {
	if s.http == nil {
		return "", fmt.Errorf("add http user %s: not an HTTP server", name)
	}
	pw := "pw-" + randomHex(12)
	s.http.mu.Lock()
	s.http.users[name] = pw
	s.http.mu.Unlock()
	return pw, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
