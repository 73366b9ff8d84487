package observe

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is the build's identity: the version set at link time, the
// VCS revision Go recorded, and the Go version.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"goVersion"`
}

// Build returns this binary's BuildInfo for version (main.version).
func Build(version string) BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Revision = s.Value
			}
		}
	}
	return b
}

// RegisterBuildInfo registers stoker_build_info{version,revision,goversion}
// = 1 with reg, labelled with component ("hub" or "agent").
func RegisterBuildInfo(reg prometheus.Registerer, component string, b BuildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stoker_build_info", Help: "Always 1; the labels name the running build.",
	}, []string{"component", "version", "revision", "goversion"})
	g.WithLabelValues(component, b.Version, b.Revision, b.GoVersion).Set(1)
	reg.MustRegister(g)
}
