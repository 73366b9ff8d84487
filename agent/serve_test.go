package agent

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAgentListen: --listen serves /metrics (build info, steps by result)
// and /healthz for a running agent.
func TestAgentListen(t *testing.T) {
	e := newEnv(t)
	addr := make(chan string, 1)
	o := e.options()
	o.Listen = "127.0.0.1:0"
	o.Interval = 50 * time.Millisecond
	o.OnListen = func(a string) { addr <- a }
	e.start(o)
	base := "http://" + <-addr
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d %s", code, body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body := get("/metrics")
		if strings.Contains(body, `stoker_build_info{component="agent"`) && strings.Contains(body, "stoker_agent_steps_total{result=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack the agent's series:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
