package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/gitsource"
)

// HubOptions are `stoker hub`'s flags.
type HubOptions struct {
	RepoURL        string
	Branch         string
	Path           string
	StatusRepoURL  string
	ReportsRepoURL string
	Interval       time.Duration
	// Listen is the HTTP address (/healthz, /metrics, /hooks/git); empty
	// disables the server. "127.0.0.1:0" picks a free port.
	Listen  string
	WorkDir string
	Auth    gitsource.AuthOptions
	// WebhookSecretFile holds the shared secret of the push webhook.
	WebhookSecretFile string
	Strict            bool
	// Previews: globs of branches to render to stoker/preview/<branch>.
	Previews []string
	// Signing is the signed chain (signing.go).
	Signing SigningOptions
	Log     logrus.FieldLogger
	// Inventory, when set, supplies nodes from the Kubernetes API.
	Inventory Inventory
	// OnListen is called with the bound address once the server listens.
	OnListen func(addr string)
	// Leader, when set, wraps the loop so only one replica runs it (client-go
	// leader election in Kubernetes).
	Leader func(ctx context.Context, run func(context.Context) error) error
}

// RunHub runs the hub until ctx ends: it reconciles every Interval and
// whenever a verified push webhook arrives, and serves HTTP on Listen.
func RunHub(ctx context.Context, o HubOptions) error {
	if o.RepoURL == "" {
		return errors.New("hub: --repo is required")
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "stoker-hub-")
		if err != nil {
			return fmt.Errorf("hub: create work dir: %w", err)
		}
		o.WorkDir = dir
	}
	reg := prometheus.NewRegistry()
	hubTrust, signer, err := o.Signing.load(reg, o.Log)
	if err != nil {
		return err
	}
	// --status-repo and --reports-repo default to the config repo; one
	// cache per distinct URL.
	repos := map[string]gitsource.Repo{}
	open := func(url, sub string) (gitsource.Repo, error) {
		if url == "" {
			url = o.RepoURL
		}
		if r, ok := repos[url]; ok {
			return r, nil
		}
		// Signing walks history (in-repo signers, the last hub-signed
		// status commit) and signs what the hub writes.
		r, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: filepath.Join(o.WorkDir, sub), Auth: o.Auth, Logger: o.Log,
			Signer: signer, FullHistory: sub != "reports" && (hubTrust.Source != nil || hubTrust.HubKeys != nil)})
		if err != nil {
			return nil, fmt.Errorf("hub: open %s: %w", gitsource.Redact(url), err)
		}
		repos[url] = r
		return r, nil
	}
	cfgRepo, err := open(o.RepoURL, "config")
	if err != nil {
		return err
	}
	statusRepo, err := open(o.StatusRepoURL, "status")
	if err != nil {
		return err
	}
	reportsRepo, err := open(o.ReportsRepoURL, "reports")
	if err != nil {
		return err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hub := NewHub(HubConfig{
		Config: cfgRepo, Status: statusRepo, Reports: reportsRepo,
		Branch: o.Branch, Path: o.Path, Inventory: o.Inventory,
		Load: LoadOptions{Strict: o.Strict}, Log: o.Log, Metrics: NewMetrics(reg), Previews: o.Previews,
		Trust: hubTrust,
	})
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	healthy := newHealthState()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if o.Listen != "" {
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("hub: listen %s: %w", o.Listen, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", healthy.healthz(3*o.Interval+5*time.Minute))
		mux.HandleFunc("/readyz", healthy.readyz)
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/hooks/git", webhookHandler(func() []byte { return readSecretFile(o.WebhookSecretFile) }, poke))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("hub: http: %w", err)
			}
		}()
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
		o.Log.WithField("addr", ln.Addr().String()).Info("hub listening")
		if o.OnListen != nil {
			o.OnListen(ln.Addr().String())
		}
	}
	loop := func(ctx context.Context) error {
		ticker := time.NewTicker(o.Interval)
		defer ticker.Stop()
		for {
			res, err := hub.Reconcile(ctx)
			healthy.record(err)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				o.Log.WithError(err).Warn("reconcile failed; retrying at the next interval")
			} else if !res.Skipped {
				o.Log.WithFields(logrus.Fields{"status": short(res.StatusCommit), "fleet": short(res.FleetCommit)}).
					Debugf("reconciled: %d nodes advanced", len(res.Steps))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			case <-trigger:
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if o.Leader != nil {
			err = o.Leader(ctx, loop)
		} else {
			err = loop(ctx)
		}
		errc <- err
		cancel()
	}()
	err = <-errc
	cancel()
	wg.Wait()
	return err
}

// healthState backs /healthz and /readyz.
type healthState struct {
	mu      sync.Mutex
	started time.Time
	lastOK  time.Time
	lastErr error
}

func newHealthState() *healthState { return &healthState{started: time.Now()} }

func (h *healthState) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err
	if err == nil {
		h.lastOK = time.Now()
	}
}

// healthz (liveness) fails once no reconcile has succeeded for maxAge,
// counting from start, so a hub stuck on Git gets restarted.
func (h *healthState) healthz(maxAge time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		since := h.started
		if h.lastOK.After(since) {
			since = h.lastOK
		}
		lastErr := h.lastErr
		h.mu.Unlock()
		if time.Since(since) > maxAge {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: no successful reconcile since %s; last error: %v\n", since.Format(time.RFC3339), lastErr)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// readyz (readiness) succeeds once a reconcile has succeeded and the last
// one did.
func (h *healthState) readyz(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	ok, lastErr := !h.lastOK.IsZero() && h.lastErr == nil, h.lastErr
	h.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: last error: %v\n", lastErr)
		return
	}
	fmt.Fprintln(w, "ok")
}

func readSecretFile(path string) []byte {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return []byte(strings.TrimSpace(string(data)))
}
