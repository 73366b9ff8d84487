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
	// One gauge per count, as MCO's mcp_*_machine_count: a total never
	// sits beside its parts, so sum() over a metric means something.
	machineCount     *prometheus.GaugeVec
	readyCount       *prometheus.GaugeVec
	updatedCount     *prometheus.GaugeVec
	unavailableCount *prometheus.GaugeVec
	degradedCount    *prometheus.GaugeVec
	paused           *prometheus.GaugeVec
	conditions       *prometheus.GaugeVec
	nodes            *prometheus.GaugeVec
	webhooks         *prometheus.CounterVec
	lastSync         prometheus.Gauge
	rolloutSteps     prometheus.Counter
}

// NewMetrics registers the hub's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stoker_hub_reconcile_duration_seconds", Help: "Duration of one hub reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"result"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stoker_hub_reconciles_total", Help: "Hub reconciles by result (success, skipped, render_error: ran but a source does not render, error).",
		}, []string{"result"}),
		renderErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_render_errors", Help: "Render errors per pool at the last reconcile.",
		}, []string{"pool"}),
		machineCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_machine_count", Help: "Machines (nodes) in the pool.",
		}, []string{"pool"}),
		readyCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_ready_machine_count", Help: "Machines of the pool updated and ready.",
		}, []string{"pool"}),
		updatedCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_updated_machine_count", Help: "Machines of the pool running its rendered config.",
		}, []string{"pool"}),
		unavailableCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_unavailable_machine_count", Help: "Machines of the pool updating, not ready or unreachable.",
		}, []string{"pool"}),
		degradedCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_degraded_machine_count", Help: "Machines of the pool reporting Degraded.",
		}, []string{"pool"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_paused", Help: "1 when the pool is paused (spec.paused), else 0.",
		}, []string{"pool"}),
		conditions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_pool_condition", Help: "1 when the pool's condition (Updated, Updating, Degraded, RenderDegraded) is True, else 0.",
		}, []string{"pool", "condition"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stoker_hub_nodes", Help: "Nodes by state on stoker/fleet (Working, Done, Degraded, Unreachable; \"\" for a node not managed): the states partition the nodes.",
		}, []string{"state"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stoker_hub_webhooks_total", Help: "Webhook deliveries by forge and result (triggered, ignored, rejected).",
		}, []string{"forge", "result"}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stoker_hub_last_successful_sync_timestamp_seconds", Help: "Unix time of the last successful reconcile.",
		}),
		rolloutSteps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stoker_hub_rollout_steps_total", Help: "Nodes advanced to a new desired config.",
		}),
	}
	reg.MustRegister(m.reconcileDuration, m.reconciles, m.renderErrors, m.machineCount, m.readyCount, m.updatedCount,
		m.unavailableCount, m.degradedCount, m.paused, m.conditions, m.nodes, m.webhooks, m.lastSync, m.rolloutSteps)
	return m
}

// ObserveReconcile records one reconcile that took d: its error, whether
// it was skipped (no ref moved), how many nodes it advanced and the render
// errors per pool. A reconcile that ran but left render errors counts as
// result "render_error", not "success", so an alert on the rate of
// non-successes fires for a bad commit too.
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
	case len(renderErrors) > 0:
		result = "render_error"
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

// ObserveFleet records the machine counts, pause and conditions per pool
// and the number of nodes in each state.
func (m *Metrics) ObserveFleet(pools map[string]*api.PoolFleet, nodeStates map[api.NodeState]int) {
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.machineCount, m.readyCount, m.updatedCount, m.unavailableCount,
		m.degradedCount, m.paused, m.conditions, m.nodes} {
		g.Reset()
	}
	for name, p := range pools {
		m.machineCount.WithLabelValues(name).Set(float64(p.MachineCount))
		m.readyCount.WithLabelValues(name).Set(float64(p.ReadyMachineCount))
		m.updatedCount.WithLabelValues(name).Set(float64(p.UpdatedMachineCount))
		m.unavailableCount.WithLabelValues(name).Set(float64(p.UnavailableMachineCount))
		m.degradedCount.WithLabelValues(name).Set(float64(p.DegradedMachineCount))
		m.paused.WithLabelValues(name).Set(boolGauge(p.Paused))
		for _, t := range api.PoolConditionTypes {
			if c := p.PoolCondition(t); c != nil {
				m.conditions.WithLabelValues(name, t).Set(boolGauge(c.Status == "True"))
			}
		}
	}
	for _, s := range []api.NodeState{api.StateWorking, api.StateDone, api.StateDegraded, api.StateUnreachable} {
		m.nodes.WithLabelValues(string(s)).Set(float64(nodeStates[s]))
	}
	for s, n := range nodeStates {
		m.nodes.WithLabelValues(string(s)).Set(float64(n))
	}
}

// ObserveWebhook counts one webhook delivery from forge ("github",
// "gitlab", ...) by result: "triggered", "ignored" or "rejected".
func (m *Metrics) ObserveWebhook(forge, result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(forge, result).Inc()
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NodesGauge is stoker_hub_nodes{state}, for tests.
func (m *Metrics) NodesGauge(state string) prometheus.Gauge { return m.nodes.WithLabelValues(state) }
