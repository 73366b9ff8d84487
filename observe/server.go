package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health backs /healthz: healthy while the last successful loop step is
// younger than MaxAge (and during the first MaxAge after start).
type Health struct {
	mu      sync.Mutex
	now     func() time.Time
	started time.Time
	lastOK  time.Time
	lastErr error
	maxAge  time.Duration
}

// NewHealth starts the clock now; maxAge is how long /healthz tolerates
// no successful step.
func NewHealth(maxAge time.Duration) *Health {
	return &Health{now: time.Now, started: time.Now(), maxAge: maxAge}
}

// Record notes one step's outcome.
func (h *Health) Record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if err == nil {
		h.lastOK = h.now()
	}
}

// check returns nil when healthy, else why not.
func (h *Health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	since := h.lastOK
	if since.IsZero() {
		since = h.started
	}
	if age := h.now().Sub(since); age > h.maxAge {
		return fmt.Errorf("no successful step for %s (last error: %v)", age.Round(time.Second), h.lastErr)
	}
	return nil
}

// Server serves /metrics (Prometheus) and /healthz on one listener, with
// bounded timeouts and headers.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr ("127.0.0.1:0" picks a port) for gatherer and health.
func Listen(addr string, gatherer prometheus.Gatherer, health *Health) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := health.check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error { return ServeUntil(ctx, s.srv, s.ln) }

// ServeUntil serves srv on ln until ctx ends, then shuts it down, giving
// open requests 5 s; a closed server is not an error. The hub's and the
// agent's servers both stop this way.
func ServeUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
