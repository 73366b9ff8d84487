package httpserver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"stoker.dev/stoker/api"
)

// Metrics are the hub's Prometheus metrics. A nil *Metrics records nothing,
// so tests and the CLI need not build one.
type Metrics struct {
	reconcileDuration *prometheus.HistogramVec
	reconciles        *prometheus.CounterVec
	renderErrors      *prometheus.GaugeVec
	machines          *prometheus.GaugeVec
	lastSync          prometheus.Gauge
	rolloutSteps      prometheus.Counter
}

// NewMetrics registers the hub's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stoker_hub_reconcile_duration_seconds", Help: "Duration of one hub reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"result"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stoker_hub_reconciles_total", Help: "Hub reconciles by result (success, skipped, error).",
		}, []string{"result"}),
		renderErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_render_errors", Help: "Render errors per pool at the last reconcile.",
		}, []string{"pool"}),
		machines: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_machines", Help: "Machines per pool by state (total, ready, updated, unavailable, degraded).",
		}, []string{"pool", "state"}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stoker_hub_last_successful_sync_timestamp_seconds", Help: "Unix time of the last successful reconcile.",
		}),
		rolloutSteps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stoker_hub_rollout_steps_total", Help: "Nodes advanced to a new desired config.",
		}),
	}
	reg.MustRegister(m.reconcileDuration, m.reconciles, m.renderErrors, m.machines, m.lastSync, m.rolloutSteps)
	return m
}

// ObserveReconcile records one reconcile that took d: its error, whether
// it was skipped (no ref moved), how many nodes it advanced and the render
// errors per pool.
func (m *Metrics) ObserveReconcile(d time.Duration, err error, skipped bool, steps int, renderErrors map[string]api.Problems) {
	if m == nil {
		return
	}
	result := "success"
	switch {
	case err != nil:
		result = "error"
	case skipped:
		result = "skipped"
	}
	m.reconcileDuration.WithLabelValues(result).Observe(d.Seconds())
	m.reconciles.WithLabelValues(result).Inc()
	if err != nil {
		return
	}
	m.lastSync.SetToCurrentTime()
	m.rolloutSteps.Add(float64(steps))
	if skipped {
		return
	}
	m.renderErrors.Reset()
	for pool, ps := range renderErrors {
		m.renderErrors.WithLabelValues(pool).Set(float64(len(ps)))
	}
}

// ObserveFleet records the machine counts per pool.
func (m *Metrics) ObserveFleet(pools map[string]*api.PoolFleet) {
	if m == nil {
		return
	}
	m.machines.Reset()
	for name, p := range pools {
		m.machines.WithLabelValues(name, "total").Set(float64(p.MachineCount))
		m.machines.WithLabelValues(name, "ready").Set(float64(p.ReadyMachineCount))
		m.machines.WithLabelValues(name, "updated").Set(float64(p.UpdatedMachineCount))
		m.machines.WithLabelValues(name, "unavailable").Set(float64(p.UnavailableMachineCount))
		m.machines.WithLabelValues(name, "degraded").Set(float64(p.DegradedMachineCount))
	}
}
