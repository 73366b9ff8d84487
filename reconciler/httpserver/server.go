package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/netutil"

	"stoker.dev/stoker/observe"
)

// Options configure the hub's HTTP server.
type Options struct {
	// Listen is the TCP address; "127.0.0.1:0" picks a free port.
	Listen string
	// Health backs /healthz and /readyz; HealthMaxAge is how long /healthz
	// tolerates no successful reconcile.
	Health       *Health
	HealthMaxAge time.Duration
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// WebhookSecret returns the push webhook's shared secret (read on each
	// request, so a rotated Secret takes effect); Trigger starts a reconcile
	// (or records the webhook for the leader); its error is answered 503,
	// so the sender retries.
	WebhookSecret func() []byte
	Trigger       func() error
	// Watched says whether a push to a branch concerns the hub (nil: every
	// push does); other pushes and non-push events are answered 200 and
	// trigger nothing.
	Watched func(branch string) bool
	// Metrics counts webhooks (nil: not counted).
	Metrics *Metrics
	// Limits bound every connection; zero fields take DefaultLimits'.
	Limits Limits
	// Log receives one line per rejected webhook; nil discards.
	Log logrus.FieldLogger
}

// Limits bound what one client can hold of the server.
type Limits struct {
	// ReadHeaderTimeout closes a connection whose request headers have
	// not arrived in time (half-sent requests); ReadTimeout bounds the
	// whole request including its body, WriteTimeout the response, and
	// IdleTimeout a keep-alive connection waiting for its next request.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds the request headers; MaxBodyBytes the webhook
	// body (larger is refused with 413, before it is read).
	MaxHeaderBytes int
	MaxBodyBytes   int64
	// MaxConns bounds the connections open at once; more wait in the
	// listen backlog until one closes.
	MaxConns int
}

// DefaultLimits are the hub's: generous for Prometheus scrapes, webhook
// deliveries and probes, small enough that slow or idle clients cannot
// pile up.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    64 << 10,
	MaxBodyBytes:      maxWebhookBody,
	MaxConns:          256,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ReadHeaderTimeout > 0 {
		d.ReadHeaderTimeout = l.ReadHeaderTimeout
	}
	if l.ReadTimeout > 0 {
		d.ReadTimeout = l.ReadTimeout
	}
	if l.WriteTimeout > 0 {
		d.WriteTimeout = l.WriteTimeout
	}
	if l.IdleTimeout > 0 {
		d.IdleTimeout = l.IdleTimeout
	}
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	if l.MaxBodyBytes > 0 {
		d.MaxBodyBytes = l.MaxBodyBytes
	}
	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}
	return d
}

// Server serves /healthz, /readyz, /metrics and /hooks/git.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds o.Listen and builds the handlers; Serve then serves them.
func Listen(o Options) (*Server, error) {
	lim := o.Limits.withDefaults()
	log := o.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", o.Health.healthz(o.HealthMaxAge))
	mux.HandleFunc("/readyz", o.Health.readyz(o.HealthMaxAge))
	mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("/hooks/git", hook{secret: o.WebhookSecret, trigger: o.Trigger, maxBody: lim.MaxBodyBytes, log: log,
		watched: o.Watched, metrics: o.Metrics}.handler())
	return &Server{ln: netutil.LimitListener(ln, lim.MaxConns), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          stdlog.New(log.WithField("component", "http").WriterLevel(logrus.DebugLevel), "", 0),
	}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down (5 s for open requests).
func (s *Server) Serve(ctx context.Context) error { return observe.ServeUntil(ctx, s.srv, s.ln) }

// Health backs /healthz and /readyz. A hub alone, or the replica that
// leads, is healthy while its reconciles succeed; a replica standing by
// (Observed, SetLeading: leader election) is healthy while it keeps
// reading the Lease, so its liveness probe never restarts it for not
// leading, and it is ready to take webhooks (it records them for the
// leader) without being the leader, so a rolling update is not stalled.
type Health struct {
	mu           sync.Mutex
	now          func() time.Time
	started      time.Time
	lastOK       time.Time
	lastErr      error
	elected      bool // leader election is on
	leading      bool
	leadingSince time.Time
	observed     time.Time // last successful Lease call
}

// NewHealth starts the health clock now.
func NewHealth() *Health { return &Health{now: time.Now, started: time.Now()} }

// Record notes the outcome of one reconcile.
func (h *Health) Record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if err == nil {
		h.lastOK = h.now()
	}
}

// Observed notes a successful read or write of the leader election Lease.
func (h *Health) Observed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.elected, h.observed = true, h.now()
}

// SetLeading notes that this replica started (true) or stopped leading.
func (h *Health) SetLeading(leading bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.elected, h.leading = true, leading
	if leading {
		h.leadingSince = h.now()
	}
}

// check returns whether the hub is alive and ready, and why not.
func (h *Health) check(maxAge time.Duration) (alive, ready bool, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if h.elected && !h.leading {
		since := latest(h.started, h.observed)
		if now.Sub(since) > maxAge {
			return false, false, fmt.Sprintf("standing by, but the leader election lease was not read since %s", since.Format(time.RFC3339))
		}
		return true, true, "ok: standing by (not leading); webhooks are recorded for the leader"
	}
	since := latest(h.started, h.leadingSince, h.lastOK)
	alive = now.Sub(since) <= maxAge
	ready = !h.lastOK.IsZero() && h.lastErr == nil && !h.lastOK.Before(h.leadingSince)
	switch {
	case !alive:
		msg = fmt.Sprintf("unhealthy: no successful reconcile since %s; last error: %v", since.Format(time.RFC3339), h.lastErr)
	case !ready:
		msg = fmt.Sprintf("not ready: last error: %v", h.lastErr)
	case h.leading:
		msg = "ok: leading"
	default:
		msg = "ok"
	}
	return alive, ready, msg
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// healthz (liveness) fails once the hub is stuck: no successful reconcile
// for maxAge (counting from start, or from taking the lead), or, standing
// by, no Lease read for maxAge.
// Alive returns nil while /healthz would answer 200 with maxAge, else why
// not (the systemd watchdog pings only while it is nil).
func (h *Health) Alive(maxAge time.Duration) error {
	if alive, _, msg := h.check(maxAge); !alive {
		return errors.New(msg)
	}
	return nil
}

func (h *Health) healthz(maxAge time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		alive, _, msg := h.check(maxAge)
		if !alive {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
	}
}

// readyz (readiness) succeeds once a reconcile has succeeded and the last
// one did, or, standing by, while the Lease is read.
func (h *Health) readyz(maxAge time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ready, msg := h.check(maxAge)
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
	}
}

// ReadSecretFile returns the trimmed contents of path, or nil when path is
// empty or unreadable (the webhook then refuses every request).
func ReadSecretFile(path string) []byte {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return []byte(strings.TrimSpace(string(data)))
}
