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

// startObserver notifies systemd and serves Options.Listen until ctx ends
// (no server when Listen is empty).
func startObserver(ctx context.Context, o *Options) (*observer, error) {
	health := observe.NewHealth(3*o.Interval + 5*time.Minute)
	// Type=notify: ready now. The watchdog is pinged while the process
	// runs, not gated on the loop: a drain or an apply may rightly take
	// longer than any health window, and killing the agent mid-step
	// would only make it recover the same step.
	observe.NotifySystemd(ctx, nil)
	if o.Listen == "" {
		return &observer{health: health}, nil
	}
	reg := prometheus.NewRegistry()
	observe.RegisterBuildInfo(reg, "agent", observe.Build(o.Version))
	ob := &observer{
		health: health,
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
	if ob.ticks == nil {
		return
	}
	if err != nil {
		ob.ticks.WithLabelValues("error").Inc()
		return
	}
	ob.ticks.WithLabelValues("success").Inc()
	ob.lastOK.SetToCurrentTime()
}
