package configserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Options configure the config server.
type Options struct {
	// Listen is the TCP address ("127.0.0.1:0" picks a free port).
	Listen string
	// TLSCertFile and TLSKeyFile are the server's certificate and key;
	// both are needed unless InsecureHTTP, which serves plain HTTP
	// (tokens and Git credentials in the clear: a trusted network only).
	TLSCertFile, TLSKeyFile string
	InsecureHTTP            bool
	// Tokens are the per-pool bearer tokens.
	Tokens Tokens
	// Snapshot returns stoker/status as the hub last saw it; nil until the
	// first reconcile (answered 503).
	Snapshot func() *Snapshot
	// Join is what the served config adds for the agent.
	Join Join
	// Rate and Burst limit each client address (requests per second);
	// zero takes DefaultRate and DefaultBurst.
	Rate  float64
	Burst int
	// Log receives one line per request; nil discards.
	Log logrus.FieldLogger
}

// Rate limits per client address: a booting fleet asks once per machine,
// retries are Ignition's backoff; anything faster is refused (429).
const (
	DefaultRate  = 1.0
	DefaultBurst = 10
	// maxClients bounds the limiter table; when full it starts over.
	maxClients = 4096
)

// Server is the config server's listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
	tls bool
}

// Listen checks o, binds o.Listen and builds the handler; Serve serves.
func Listen(o Options) (*Server, error) {
	if o.Snapshot == nil {
		return nil, errors.New("config server: no snapshot source")
	}
	if err := o.Join.Validate(); err != nil {
		return nil, err
	}
	if o.Tokens.Dir == "" {
		return nil, errors.New("config server: --config-token-dir is required: every pool needs a token")
	}
	var tlsCfg *tls.Config
	switch {
	case o.TLSCertFile != "" && o.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("config server: load certificate %s and key %s: %w", o.TLSCertFile, o.TLSKeyFile, err)
		}
		// TLS 1.2 at least, as MCO's server (flagged in its security audit).
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	case o.TLSCertFile != "" || o.TLSKeyFile != "":
		return nil, errors.New("config server: --config-tls-cert and --config-tls-key go together")
	case !o.InsecureHTTP:
		return nil, errors.New("config server: --config-tls-cert and --config-tls-key are required (or --config-insecure-http to serve tokens and credentials in the clear)")
	}
	log := o.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	for _, p := range o.Tokens.Validate() {
		log.Warn(p)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("config server: listen %s: %w", o.Listen, err)
	}
	h := &handler{o: o, log: log, clients: map[string]*rate.Limiter{}}
	mux := http.NewServeMux()
	mux.Handle("/config/", h)
	s := &Server{ln: netutil.LimitListener(ln, 256), tls: tlsCfg != nil, srv: &http.Server{
		Handler:           mux,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          stdlog.New(log.WithField("component", "config-server").WriterLevel(logrus.DebugLevel), "", 0),
	}}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down (5 s for open requests).
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = s.srv.Shutdown(sctx)
	}()
	var err error
	if s.tls {
		err = s.srv.ServeTLS(s.ln, "", "")
	} else {
		err = s.srv.Serve(s.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type handler struct {
	o   Options
	log logrus.FieldLogger

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func (h *handler) allow(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.clients[host]
	if !ok {
		if len(h.clients) >= maxClients {
			h.clients = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(h.o.Rate), h.o.Burst)
		h.clients[host] = l
	}
	return l.Allow()
}

// ServeHTTP answers GET/HEAD /config/<pool>. The checks run in this order
// so a client without a valid token learns nothing: method, rate, pool
// name, token (401 without one, 403 with a wrong one — also for a pool
// that does not exist), then the spec version (400) and the config (503
// before the first reconcile, 404 for a pool without a rendered config).
// Every request is logged once, without its token or query.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pool := strings.TrimPrefix(r.URL.Path, "/config/")
	log := h.log.WithFields(logrus.Fields{"pool": pool, "remote": r.RemoteAddr, "userAgent": r.UserAgent(), "accept": r.Header.Get("Accept")})
	refuse := func(code int, why string) {
		w.Header().Set("Content-Length", "0")
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stoker-config"`)
		}
		w.WriteHeader(code)
		log.WithField("status", code).Warn("config request refused: " + why)
	}
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		refuse(http.StatusMethodNotAllowed, "method "+r.Method)
		return
	case !h.allow(r.RemoteAddr):
		w.Header().Set("Retry-After", strconv.Itoa(int(1/h.o.Rate)+1))
		refuse(http.StatusTooManyRequests, "rate limit")
		return
	case len(validation.IsDNS1123Subdomain(pool)) > 0:
		refuse(http.StatusNotFound, "not a pool name")
		return
	}
	if err := h.o.Tokens.Check(pool, r.Header.Get("Authorization")); err != nil {
		switch {
		case errors.Is(err, ErrNoToken):
			refuse(http.StatusUnauthorized, err.Error())
		case errors.Is(err, ErrBadToken):
			refuse(http.StatusForbidden, err.Error())
		default:
			log.WithError(err).Error("config request failed: tokens unreadable")
			refuse(http.StatusInternalServerError, "tokens unreadable")
		}
		return
	}
	ver, err := Negotiate(r.Header.Get("Accept"))
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	snap := h.o.Snapshot()
	if snap == nil {
		refuse(http.StatusServiceUnavailable, "no stoker/status read yet")
		return
	}
	built, ok, err := Build(pool, snap, h.o.Join)
	if !ok {
		refuse(http.StatusNotFound, "no rendered config for this pool")
		return
	}
	if err != nil {
		log.WithError(err).Error("config request failed")
		refuse(http.StatusInternalServerError, "build failed")
		return
	}
	data, err := Encode(built.Config, ver)
	if err != nil {
		log.WithError(err).Error("config request failed")
		refuse(http.StatusInternalServerError, "encode failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
	fields := logrus.Fields{"status": http.StatusOK, "rendered": built.Rendered, "version": ver.String(), "bytes": len(data), "seeded": built.Seeded}
	if !built.Seeded {
		fields["notSeeded"] = built.NotSeeded
	}
	log.WithFields(fields).Info("served config")
}
