package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"

	"stoker.dev/stoker/api"
)

// Bounds of a delivery.
const (
	// DefaultQueue deliveries wait at most; the oldest goes when full.
	DefaultQueue = 256
	// DefaultTimeout bounds one HTTP attempt.
	DefaultTimeout = 10 * time.Second
	// maxSecretFile bounds url, token and hmac-key, read at each delivery.
	maxSecretFile = 4 << 10
	// maxResponse bounds what is read of a receiver's answer.
	maxResponse = 4 << 10
)

// DefaultBackoff retries a delivery 5 times over about 30 seconds.
var DefaultBackoff = wait.Backoff{Duration: 2 * time.Second, Factor: 2, Jitter: 0.1, Steps: 5}

// Options configure a Sender.
type Options struct {
	// SecretsDir holds <secretRef>/url and the optional token and
	// hmac-key of each receiver; read at each delivery, so they rotate
	// without a restart.
	SecretsDir string
	Queue      int
	Backoff    wait.Backoff
	Timeout    time.Duration
	// Client is the HTTP client (nil: one with Timeout that follows no
	// redirect, so a token never goes elsewhere).
	Client     *http.Client
	Registerer prometheus.Registerer
	Log        logrus.FieldLogger
	// Version goes into the User-Agent.
	Version string
}

// Sender posts events to receivers from its own goroutine (Run).
type Sender struct {
	o         Options
	mu        sync.Mutex
	receivers []api.Receiver
	queue     []delivery
	wake      chan struct{}
	m         metrics
}

type delivery struct {
	r api.Receiver
	e Event
}

type metrics struct {
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
	dropped    prometheus.Counter
	queued     prometheus.Gauge
}

// NewSender returns a Sender; call Run to start delivering.
func NewSender(o Options) *Sender {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Backoff.Steps <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	s := &Sender{o: o, wake: make(chan struct{}, 1), m: metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoker_hub_notify_events_total",
			Help: "Fleet events derived from stoker/fleet transitions, by type."}, []string{"type"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoker_hub_notify_deliveries_total",
			Help: "Notification deliveries by receiver and result (delivered, failed)."}, []string{"receiver", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoker_hub_notify_retries_total",
			Help: "Failed delivery attempts that were retried, by receiver."}, []string{"receiver"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "stoker_hub_notify_dropped_total",
			Help: "Deliveries dropped, oldest first, because the notification queue was full."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoker_hub_notify_queue_length",
			Help: "Deliveries waiting to be sent."}),
	}}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.m.events, s.m.deliveries, s.m.retries, s.m.dropped, s.m.queued)
	}
	return s
}

// SetReceivers replaces the receivers (from the default branch's
// api.NotificationsFile); deliveries already queued keep theirs.
func (s *Sender) SetReceivers(rs []api.Receiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receivers = append([]api.Receiver(nil), rs...)
}

// Receivers returns the receivers in force.
func (s *Sender) Receivers() []api.Receiver {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.Receiver(nil), s.receivers...)
}

// Notify queues events for every receiver that wants them and returns at
// once; a full queue drops its oldest delivery.
func (s *Sender) Notify(events []Event) {
	if s == nil || len(events) == 0 {
		return
	}
	s.mu.Lock()
	for _, e := range events {
		s.m.events.WithLabelValues(string(e.Type)).Inc()
		for _, r := range s.receivers {
			if !r.Wants(e.Type, e.Pools) {
				continue
			}
			if len(s.queue) >= s.o.Queue {
				s.queue = s.queue[1:]
				s.m.dropped.Inc()
			}
			s.queue = append(s.queue, delivery{r: r, e: e})
		}
	}
	s.m.queued.Set(float64(len(s.queue)))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers queued events, one at a time, until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	for {
		s.mu.Lock()
		var d delivery
		ok := len(s.queue) > 0
		if ok {
			d = s.queue[0]
			s.queue = s.queue[1:]
		}
		s.m.queued.Set(float64(len(s.queue)))
		s.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		s.deliver(ctx, d)
	}
}

// deliver posts d with retries; it logs the outcome once.
func (s *Sender) deliver(ctx context.Context, d delivery) {
	log := s.o.Log.WithFields(logrus.Fields{"receiver": d.r.Name, "event": d.e.Type, "id": d.e.ID})
	if len(d.e.Pools) == 1 {
		log = log.WithField("pool", d.e.Pools[0])
	}
	if d.e.Node != "" {
		log = log.WithField("node", d.e.Node)
	}
	target, err := s.target(d.r)
	if err != nil {
		s.m.deliveries.WithLabelValues(d.r.Name, "failed").Inc()
		log.WithError(err).Warn("notification not sent")
		return
	}
	body, err := payload(d.r.Type, d.e)
	if err != nil {
		s.m.deliveries.WithLabelValues(d.r.Name, "failed").Inc()
		log.WithError(err).Warn("notification not sent")
		return
	}
	attempts := 0
	var last error
	err = wait.ExponentialBackoffWithContext(ctx, s.o.Backoff, func(ctx context.Context) (bool, error) {
		attempts++
		err := s.post(ctx, target, d, body)
		if err == nil {
			return true, nil
		}
		last = err
		var p permanent
		if errors.As(err, &p) {
			return false, err
		}
		s.m.retries.WithLabelValues(d.r.Name).Inc()
		log.WithError(err).WithField("attempt", attempts).Debug("notification attempt failed; retrying")
		return false, nil
	})
	if err == nil {
		s.m.deliveries.WithLabelValues(d.r.Name, "delivered").Inc()
		log.WithFields(logrus.Fields{"url": target.redacted, "attempts": attempts}).Info("notification sent")
		return
	}
	if last != nil && !errors.As(err, new(permanent)) {
		err = fmt.Errorf("%w after %d attempts", last, attempts)
	}
	s.m.deliveries.WithLabelValues(d.r.Name, "failed").Inc()
	log.WithError(err).WithField("url", target.redacted).Warn("notification not sent")
}

// target is a receiver's URL and keys, read from the secrets directory.
type target struct {
	url      string
	redacted string
	token    string
	hmacKey  []byte
}

func (s *Sender) target(r api.Receiver) (target, error) {
	if s.o.SecretsDir == "" {
		return target{}, errors.New("no --notify-secrets-dir: the hub has no receiver URLs")
	}
	dir := filepath.Join(s.o.SecretsDir, r.Secret()) // Secret is a DNS label: no separator, no ".."
	raw, err := readSecret(filepath.Join(dir, "url"), true)
	if err != nil {
		return target{}, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return target{}, fmt.Errorf("read %s: not an http or https URL", filepath.Join(dir, "url"))
	}
	t := target{url: raw, redacted: Redact(u)}
	if t.token, err = readSecret(filepath.Join(dir, "token"), false); err != nil {
		return target{}, err
	}
	key, err := readSecret(filepath.Join(dir, "hmac-key"), false)
	if err != nil {
		return target{}, err
	}
	t.hmacKey = []byte(key)
	return t, nil
}

// Redact is what of a receiver's URL may be logged: scheme and host, the
// password hidden by net/url's Redacted; path and query (a Slack webhook's
// secret) never.
func Redact(u *url.URL) string {
	r := &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}
	s := r.Redacted()
	if u.Path != "" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

func readSecret(path string, required bool) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read receiver secret: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read receiver secret %s: %w", path, err)
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("read receiver secret %s: more than %d bytes", path, maxSecretFile)
	}
	v := strings.TrimSpace(string(data))
	if v == "" && required {
		return "", fmt.Errorf("read receiver secret %s: empty", path)
	}
	return v, nil
}

// permanent marks an answer a retry will not change (4xx but 408, 429).
type permanent struct{ error }

func (s *Sender) post(ctx context.Context, t target, d delivery, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("post to %s: %w", t.redacted, scrub(err, t))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stoker-hub/"+s.o.Version)
	req.Header.Set("X-Stoker-Event", string(d.e.Type))
	req.Header.Set("X-Stoker-Delivery", d.e.ID)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if len(t.hmacKey) > 0 {
		req.Header.Set("X-Signature", "sha256="+Sign(t.hmacKey, body))
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", t.redacted, scrub(err, t))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("post to %s: %s", t.redacted, resp.Status)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return permanent{err}
	}
	return err
}

// Sign is the X-Signature value without its "sha256=" prefix: hex
// HMAC-SHA256 of body with key, as Flux's generic-hmac provider sends it.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// scrub replaces the URL in a net/http error with its redacted form.
func scrub(err error, t target) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: t.redacted, Err: ue.Err}
	}
	return errors.New(strings.ReplaceAll(err.Error(), t.url, t.redacted))
}

// payload is the request body for a receiver type; both are bounded by
// the event's bounded fields.
func payload(typ string, e Event) ([]byte, error) {
	if typ == api.ReceiverSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{Text: SlackText(e)})
	}
	return json.Marshal(e)
}

// SlackText is the one line a Slack-compatible receiver shows.
func SlackText(e Event) string {
	return fmt.Sprintf("[stoker] %s: %s", e.Type, e.Message)
}
