//go:build fleetbench

package fleetbench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"stoker.dev/stoker/agent"
	"stoker.dev/stoker/demo"
	examplesrepo "stoker.dev/stoker/examples-repo"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

var (
	nodes    = flag.Int("nodes", 20, "agents to run")
	interval = flag.Duration("interval", 5*time.Second, "hub and agent --interval")
	idleFor  = flag.Duration("idle", 30*time.Second, "steady-state window measured")
)

// cpu is a process's user+system CPU (children it waited for included).
func cpu(t *testing.T, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read cpu of %d: %v", pid, err)
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func rss(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}

func TestFleet(t *testing.T) {
	bin := os.Getenv("STOKER_BIN")
	if bin == "" {
		t.Skip("STOKER_BIN unset (make bench-fleet builds it)")
	}
	dir := t.TempDir()
	repos := filepath.Join(dir, "repos")
	srv := &gitserver.Server{Kind: gitserver.Daemon, Root: repos}
	if err := os.MkdirAll(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := srv.Create("config.git"); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, p := range []string{"pools/worker.yaml", "machineconfiguration.yaml", "machineconfigs/50-infra-motd.yaml"} {
		data, err := examplesrepo.FS.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = string(data)
	}
	files["machineconfigs/50-infra-motd.yaml"] = strings.ReplaceAll(files["machineconfigs/50-infra-motd.yaml"], "role: infra", "role: worker")
	if _, err := gitserver.CommitFiles(srv.Path("config.git"), "main", files, nil, "seed"); err != nil {
		t.Fatal(err)
	}
	execPath, _ := exec.Command("git", "--exec-path").Output()
	port := 30000 + os.Getpid()%20000
	daemon := exec.Command(filepath.Join(strings.TrimSpace(string(execPath)), "git-daemon"), "--reuseaddr", "--listen=127.0.0.1",
		"--port="+strconv.Itoa(port), "--export-all", "--base-path="+repos, "--enable=receive-pack", "--max-connections=0", repos)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	url := fmt.Sprintf("git://127.0.0.1:%d/config.git", port)
	time.Sleep(time.Second)
	hub := exec.Command(bin, "hub", "--repo", url, "--interval", interval.String(), "--work-dir", filepath.Join(dir, "hub"))
	hubLog, _ := os.Create(filepath.Join(dir, "hub.log"))
	hub.Stdout, hub.Stderr = hubLog, hubLog
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Process.Kill(); hub.Wait() })

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	start := time.Now()
	for i := 0; i < *nodes; i++ {
		name := fmt.Sprintf("node-%04d", i)
		root := filepath.Join(dir, "nodes", name, "root")
		for _, d := range []string{"etc", "home/core", "var"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000:core:/home/core:/bin/bash\n"), 0o644)
		os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ncore:x:1000:\n"), 0o644)
		o := agent.Options{RepoURL: url, Node: name, Root: root, StateDir: filepath.Join(dir, "nodes", name, "state"),
			Labels: map[string]string{"node-role.kubernetes.io/worker": ""}, Interval: *interval,
			Reboot: "simulate", Drain: "none", OSBackend: "none", DriftInterval: time.Hour, NoInotify: true, Version: "fleetbench"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := agent.Run(ctx, o); err != nil && ctx.Err() == nil {
				t.Errorf("agent %s: %v", name, err)
			}
		}()
	}
	reader, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: filepath.Join(dir, "reader")})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func(*fleetview.FleetView) bool) time.Duration {
		t0 := time.Now()
		for {
			v, err := fleetview.ReadFleet(ctx, reader)
			if err == nil && ok(v) {
				return time.Since(t0)
			}
			if time.Since(t0) > 10*time.Minute {
				t.Fatalf("%s: not after 10m (%v)", what, err)
			}
			time.Sleep(time.Second)
		}
	}
	all := func(v *fleetview.FleetView) bool { return demo.Converged(v) && len(v.Nodes) == *nodes }
	wait("first convergence", all)
	t.Logf("nodes %d interval %s: all Done %s after start", *nodes, interval, time.Since(start).Round(time.Second))

	self := os.Getpid()
	c0 := [3]time.Duration{cpu(t, hub.Process.Pid), cpu(t, self), cpu(t, daemon.Process.Pid)}
	time.Sleep(*idleFor)
	c1 := [3]time.Duration{cpu(t, hub.Process.Pid), cpu(t, self), cpu(t, daemon.Process.Pid)}
	polls := float64(*nodes) * idleFor.Seconds() / interval.Seconds()
	for i, name := range []string{"hub", "agents", "git daemon"} {
		d := c1[i] - c0[i]
		t.Logf("idle %s: %.3f cores, %.1f µs per node per poll", name, d.Seconds()/idleFor.Seconds(), float64(d.Microseconds())/polls)
	}
	t.Logf("hub memory: %s", rss(hub.Process.Pid))

	worker := func(v *fleetview.FleetView) string {
		for _, p := range v.Pools {
			if p.Name == "worker" {
				return p.Config
			}
		}
		return ""
	}
	var before string
	if v, err := fleetview.ReadFleet(ctx, reader); err == nil {
		before = worker(v)
	}
	pushed := time.Now()
	files["machineconfigs/50-infra-motd.yaml"] = strings.ReplaceAll(files["machineconfigs/50-infra-motd.yaml"], "infra%20node.", "infra%20node%20(rollout).")
	if _, err := gitserver.CommitFiles(srv.Path("config.git"), "main", map[string]string{"machineconfigs/50-infra-motd.yaml": files["machineconfigs/50-infra-motd.yaml"]}, nil, "rollout"); err != nil {
		t.Fatal(err)
	}
	wait("rollout", func(v *fleetview.FleetView) bool {
		return all(v) && worker(v) != before
	})
	took := time.Since(pushed)
	batches := 4 // maxUnavailable 25% of examples-repo's worker pool
	bound := time.Duration(batches) * (*interval + 2*time.Second)
	t.Logf("rollout: push -> all Done %s, bound batches x (interval + 2s) = %s", took.Round(time.Second), bound)
	t.Logf("hub memory after rollout: %s", rss(hub.Process.Pid))
}
