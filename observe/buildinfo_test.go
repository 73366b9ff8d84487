package observe

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg, "agent", BuildInfo{Version: "v1.2.3", Revision: "abc", GoVersion: runtime.Version()})
	want := `# HELP stoker_build_info Always 1; the labels name the running build.
# TYPE stoker_build_info gauge
stoker_build_info{component="agent",goversion="` + runtime.Version() + `",revision="abc",version="v1.2.3"} 1
`
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want), "stoker_build_info"); err != nil {
		t.Fatal(err)
	}
	if b := Build("dev"); b.Version != "dev" || b.GoVersion != runtime.Version() {
		t.Fatalf("Build: %+v", b)
	}
}
