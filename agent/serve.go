package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"stoker.dev/stoker/observe"
)

// observer is the agent's /metrics and /healthz (Options.Listen): each
// loop step is counted by result, and /healthz fails when no step has
// succeeded for three intervals plus five minutes (a wedged loop).
type observer struct {
	health   *observe.Health
	ticks    *prometheus.CounterVec
	lastOK   prometheus.Gauge
	onListen func(string)
}

// startObserver serves Options.Listen until ctx ends; nil when Listen is
// empty (every method of a nil observer does nothing).
func startObserver(ctx context.Context, o *Options) (*observer, error) {
	if o.Listen == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	observe.RegisterBuildInfo(reg, "agent", observe.Build(o.Version))
	ob := &observer{
		health: observe.NewHealth(3*o.Interval + 5*time.Minute),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stoker_agent_steps_total", Help: "Agent loop steps by result (success, error).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stoker_agent_last_successful_step_timestamp_seconds", Help: "Unix time of the last successful agent step.",
		}),
	}
	reg.MustRegister(ob.ticks, ob.lastOK, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := observe.Listen(o.Listen, reg, ob.health)
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ctx) }()
	if o.OnListen != nil {
		o.OnListen(srv.Addr())
	}
	return ob, nil
}

// step records one loop step's outcome.
func (ob *observer) step(err error) {
	if ob == nil {
		return
	}
	ob.health.Record(err)
	if err != nil {
		ob.ticks.WithLabelValues("error").Inc()
		return
	}
	ob.ticks.WithLabelValues("success").Inc()
	ob.lastOK.SetToCurrentTime()
}
