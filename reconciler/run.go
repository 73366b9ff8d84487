package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/observe"
	"stoker.dev/stoker/reconciler/configserver"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/httpserver"
	"stoker.dev/stoker/reconciler/notify"
	"stoker.dev/stoker/reconciler/render"
)

// HubOptions are `stoker hub`'s flags.
type HubOptions struct {
	RepoURL        string
	Branch         string
	Path           string
	StatusRepoURL  string
	ReportsRepoURL string
	Interval       time.Duration
	// UnreachableAfter (a multiple, default 3) of AgentHeartbeat (the
	// agents' --heartbeat, default 10m) without a report marks a node
	// Unreachable.
	UnreachableAfter float64
	AgentHeartbeat   time.Duration
	// StatusLayout is --status-layout: "auto" (or ""), "1" or "2"
	// (HubConfig.StatusLayout).
	StatusLayout string
	// Listen is the HTTP address (/healthz, /metrics, /hooks/git); empty
	// disables the server. "127.0.0.1:0" picks a free port.
	Listen  string
	WorkDir string
	// Version is the binary's version (stoker_build_info, hub.yaml on
	// stoker/fleet).
	Version string
	Auth    gitsource.AuthOptions
	// WebhookSecretFile holds the shared secret of the push webhook.
	WebhookSecretFile string
	Strict            bool
	// Previews: globs of branches to render to stoker/preview/<branch>.
	Previews []string
	// Signing is the signed chain (signing.go).
	Signing SigningOptions
	// Notify posts fleet events to the receivers the config repo names.
	Notify NotifyOptions
	// ConfigServer serves /config/<pool> to joining machines on its own
	// listener when ConfigServer.Listen is set (configserver).
	ConfigServer configserver.Options
	Log          logrus.FieldLogger
	// Inventory, when set, supplies nodes from the Kubernetes API.
	Inventory Inventory
	// OnListen is called with the bound address once the server listens.
	OnListen func(addr string)
	// OnConfigListen is called with the config server's bound address.
	OnConfigListen func(addr string)
	// Leader, when set, wraps the loop so only one replica runs it (client-go
	// leader election in Kubernetes).
	Leader func(ctx context.Context, run func(context.Context) error) error
	// Health backs /healthz and /readyz; nil makes one. With Leader, the
	// election feeds it (Observed, SetLeading) so a replica standing by
	// stays healthy.
	Health *httpserver.Health
	// HealthWindow is how long /healthz tolerates no successful reconcile
	// (standing by: no Lease read); default 3 × Interval + 5 minutes.
	HealthWindow time.Duration
	// FireWebhook, when set (with Leader), records a verified webhook for
	// whichever replica leads; WatchWebhooks runs while this replica leads
	// and pokes the loop for every webhook any replica recorded.
	FireWebhook   func(ctx context.Context) error
	WatchWebhooks func(ctx context.Context, poke func())
	// TestClockStart (RFC 3339, for tests only: the hidden flag
	// --test-clock-start) starts the hub's clock at that instant, running
	// at wall-clock speed, so end-to-end tests can put a maintenance window
	// open or closed. Empty: the real clock.
	TestClockStart string
}

// RunHub runs the hub until ctx ends: it reconciles every Interval and
// whenever a verified push webhook arrives, and serves HTTP on Listen.
func RunHub(ctx context.Context, o HubOptions) error {
	if o.RepoURL == "" {
		return errors.New("hub: --repo is required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	statusLayout, err := ParseStatusLayout(o.StatusLayout)
	if err != nil {
		return fmt.Errorf("hub: --status-layout: %w", err)
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "stoker-hub-")
		if err != nil {
			return fmt.Errorf("hub: create work dir: %w", err)
		}
		// A temporary cache is the hub's alone: it goes when the hub does.
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	reg := prometheus.NewRegistry()
	observe.RegisterBuildInfo(reg, "hub", observe.Build(o.Version))
	hubTrust, signer, err := o.Signing.load(reg, o.Log)
	if err != nil {
		return err
	}
	// --status-repo and an empty ReportsRepoURL (a library caller's;
	// `stoker hub` requires --reports-repo) default to the config repo;
	// one cache per distinct URL.
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
	metrics := httpserver.NewMetrics(reg)
	var sender *notify.Sender
	if o.Notify.SecretsDir != "" {
		sender = notify.NewSender(notify.Options{SecretsDir: o.Notify.SecretsDir, Registerer: reg, Version: o.Version,
			Timeout: o.Notify.Timeout, Backoff: o.Notify.backoff(), Log: o.Log.WithField("component", "notify")})
	}
	now, err := testClock(o.TestClockStart)
	if err != nil {
		return err
	}
	hub := NewHub(HubConfig{
		Now:    now,
		Config: cfgRepo, Status: statusRepo, Reports: reportsRepo,
		Branch: o.Branch, Path: o.Path, Inventory: o.Inventory,
		Load: render.LoadOptions{Strict: o.Strict}, Log: o.Log, Metrics: metrics, Previews: o.Previews,
		Build: api.HubInfo(observe.Build(o.Version)),
		Trust: hubTrust, UnreachableAfter: unreachableAfter(o.UnreachableAfter, o.AgentHeartbeat),
		Notify: sender, StatusLayout: statusLayout,
	})
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	healthy := o.Health
	if healthy == nil {
		healthy = httpserver.NewHealth()
	}
	if o.HealthWindow <= 0 {
		o.HealthWindow = 3*o.Interval + 5*time.Minute
	}
	onWebhook := func() error {
		poke()
		if o.FireWebhook != nil {
			return o.FireWebhook(ctx)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if sender != nil {
		wg.Add(1)
		go func() { defer wg.Done(); sender.Run(ctx) }()
	}
	if o.Listen != "" {
		srv, err := httpserver.Listen(httpserver.Options{
			Listen:        o.Listen,
			Health:        healthy,
			HealthMaxAge:  o.HealthWindow,
			Gatherer:      reg,
			WebhookSecret: func() []byte { return httpserver.ReadSecretFile(o.WebhookSecretFile) },
			Trigger:       onWebhook,
			Watched:       hub.Watches,
			Metrics:       metrics,
			Log:           o.Log,
		})
		if err != nil {
			return fmt.Errorf("hub: listen %s: %w", o.Listen, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx); err != nil {
				errc <- fmt.Errorf("hub: http: %w", err)
			}
		}()
		o.Log.WithField("addr", srv.Addr()).Info("hub listening")
		if o.OnListen != nil {
			o.OnListen(srv.Addr())
		}
	}
	if o.ConfigServer.Listen != "" {
		cs := o.ConfigServer
		cs.Snapshot, cs.Log = hub.Snapshot, o.Log.WithField("component", "config-server")
		if cs.Join.RepoURL == "" {
			cs.Join.RepoURL = o.RepoURL
		}
		if cs.Join.StatusRepoURL == "" {
			cs.Join.StatusRepoURL = o.StatusRepoURL
		}
		if cs.Join.ReportsRepoURL == "" {
			cs.Join.ReportsRepoURL = o.ReportsRepoURL
		}
		if cs.Join.ReportsRepoURL == "" {
			// The hub keeps reports in its config repo (a library caller:
			// `stoker hub` requires --reports-repo); a joining agent must
			// say so, since `stoker agent` requires it too.
			cs.Join.ReportsRepoURL = cs.Join.RepoURL
		}
		srv, err := configserver.Listen(cs)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx); err != nil {
				errc <- fmt.Errorf("hub: config server: %w", err)
			}
		}()
		o.Log.WithFields(logrus.Fields{"addr": srv.Addr(), "tls": !cs.InsecureHTTP}).Info("config server listening")
		if o.OnConfigListen != nil {
			o.OnConfigListen(srv.Addr())
		}
	}
	loop := func(ctx context.Context) error {
		ticker := time.NewTicker(o.Interval)
		defer ticker.Stop()
		if o.WatchWebhooks != nil {
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); o.WatchWebhooks(wctx, poke) }()
			defer func() { stop(); <-done }()
		}
		for {
			res, err := hub.Reconcile(ctx)
			healthy.Record(err)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				o.Log.WithError(err).Warn("reconcile failed; retrying at the next interval")
			} else if !res.Skipped {
				o.Log.WithFields(logrus.Fields{"status": fleetview.Short(res.StatusCommit), "fleet": fleetview.Short(res.FleetCommit)}).
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
	// Type=notify: ready once listening; the watchdog is pinged while the
	// hub is alive as /healthz sees it.
	observe.NotifySystemd(ctx, func() error { return healthy.Alive(o.HealthWindow) })
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

// NotifyOptions are the hub's --notify-* flags.
type NotifyOptions struct {
	// SecretsDir holds <receiver>/url (and token, hmac-key) for the
	// receivers named in the config repo; empty sends nothing.
	SecretsDir string
	// Retries is the number of attempts per delivery; RetryBase the
	// first wait between them (doubling, with jitter).
	Retries   int
	RetryBase time.Duration
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
}

func (n NotifyOptions) backoff() wait.Backoff {
	b := notify.DefaultBackoff
	if n.Retries > 0 {
		b.Steps = n.Retries
	}
	if n.RetryBase > 0 {
		b.Duration = n.RetryBase
	}
	return b
}

// unreachableAfter is multiple × heartbeat, with the defaults for zeros.
func unreachableAfter(multiple float64, heartbeat time.Duration) time.Duration {
	if multiple <= 0 {
		multiple = api.DefaultUnreachableMultiple
	}
	if heartbeat <= 0 {
		heartbeat = api.DefaultHeartbeat
	}
	return time.Duration(multiple * float64(heartbeat))
}

// DefaultInterval is the hub's poll interval when --interval is not given.
const DefaultInterval = 15 * time.Second

// testClock is the hub's clock for --test-clock-start: nil (the real
// clock) when start is empty.
func testClock(start string) (func() time.Time, error) {
	if start == "" {
		return nil, nil
	}
	t0, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return nil, fmt.Errorf("hub: --test-clock-start %q: %w", start, err)
	}
	began := time.Now()
	return func() time.Time { return t0.Add(time.Since(began)) }, nil
}
