package render

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/yaml"
)

// realisticRepo is the benchmark repo of issue 14: 1,000 MachineConfigs
// over 10 pools (master, worker and eight custom pools that take the
// worker MCs too), each MC with 2–3 files of 1–4 KB (base64 data URLs, as
// real manifests carry them; all but the first gzipped, as Butane writes
// them) and a unit, some with a dropin, plus kernel arguments. It returns the files and their total size.
func realisticRepo() (fstest.MapFS, int) {
	fsys := fstest.MapFS{}
	total := 0
	put := func(name, content string) {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
		total += len(content)
	}
	roles := []string{"master", "worker"}
	for i := 0; i < 8; i++ {
		r := fmt.Sprintf("custom%d", i)
		roles = append(roles, r)
		put("pools/"+r+".yaml", pool(r, strings.ReplaceAll(workerInfraSel, "infra", r)))
	}
	for i := 0; i < 1000; i++ {
		role := roles[i%len(roles)]
		name := fmt.Sprintf("%03d-%s", i, role)
		var b strings.Builder
		fmt.Fprintf(&b, "  kernelArguments: [k%d=1]\n  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n", i)
		for f := 0; f < 2+i%2; f++ {
			path := fmt.Sprintf("/etc/stoker/%03d-%d.conf", i, f)
			if f == 0 && i%3 == 0 {
				path = "/etc/shared.conf" // overridden pool by pool
			}
			size := 1024 + (i*37+f*1013)%3072
			var body strings.Builder
			for n := 0; body.Len() < size; n++ {
				fmt.Fprintf(&body, "setting_%d_%d = value %d of machine config %s\n", f, n, n*i, name)
			}
			data := []byte(body.String()[:size])
			if f > 0 {
				// Butane gzips contents when that makes them smaller.
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(data)
				zw.Close()
				fmt.Fprintf(&b, "      - path: %s\n        mode: 0644\n        overwrite: true\n        contents:\n          compression: gzip\n          source: data:;base64,%s\n",
					path, base64.StdEncoding.EncodeToString(z.Bytes()))
				continue
			}
			fmt.Fprintf(&b, "      - path: %s\n        mode: 0644\n        overwrite: true\n        contents:\n          source: data:text/plain;charset=utf-8;base64,%s\n",
				path, base64.StdEncoding.EncodeToString(data))
		}
		fmt.Fprintf(&b, "    systemd:\n      units:\n      - name: stoker-%03d.service\n        enabled: true\n        contents: |\n"+
			"          [Unit]\n          Description=Unit %d\n          After=network-online.target\n          [Service]\n          Type=oneshot\n          ExecStart=/usr/bin/true %d\n          [Install]\n          WantedBy=multi-user.target\n", i, i, i)
		if i%4 == 0 {
			b.WriteString("        dropins:\n        - name: 10-env.conf\n          contents: |\n            [Service]\n            Environment=A=1\n")
		}
		put("machineconfigs/"+name+".yaml", mc(name, role, b.String()))
	}
	return fsys, total
}

func yamlParseAll(b *testing.B, fsys fstest.MapFS) {
	for name, f := range fsys {
		var m map[string]any
		if err := yaml.Unmarshal(f.Data, &m); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
}

func renderAll(b *testing.B, fsys fs.FS) {
	renderKept(b, fsys)
}

// renderKept is renderAll returning what a caller holds afterwards.
func renderKept(b *testing.B, fsys fs.FS) (*Repo, *RenderResult) {
	repo, ps := Load(fsys, ".", LoadOptions{})
	if ps.Err() != nil {
		b.Fatal(ps.Err())
	}
	res, ps := RenderAll(repo, RenderOptions{})
	if ps.Err() != nil || len(res.Pools) != 10 {
		b.Fatal(ps.Err())
	}
	return repo, res
}

// BenchmarkYAMLParse is the yardstick: parsing the realistic repo's YAML
// with sigs.k8s.io/yaml into map[string]any, nothing else.
func BenchmarkYAMLParse(b *testing.B) {
	fsys, total := realisticRepo()
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		yamlParseAll(b, fsys)
	}
}

// BenchmarkRender loads, validates and renders every pool of the same
// repo. It reports its CPU time as a multiple of the YAML parse's
// (x-yaml, both measured here on the same bytes, run by run; goal <= 2) and
// the peak heap in use during one render over the input size (heap/input;
// goal <= 3), for the repo read from files on disk (os.DirFS): the hub
// reads a commit's tree through go-git's object store (gitsource treeFS),
// not from a map in the heap (go-git's object cache may still hold some
// blobs: loose objects and delta bases).
//
// The peak counts what the GC lets garbage grow to: with GOGC=100 about
// what is live plus as much again, so the peak is near the process's own
// live heap (base, ~0.25x here) plus twice what the render keeps
// (kept/input). mapfs-heap/input is the same render from the fstest.MapFS
// the timing uses: that input (1.06x) is live in the heap, the GC lets
// the render allocate about that much more before collecting, and the
// figure is about one input higher. Measured on c12d02a, 3 runs at load
// average 5-12: heap/input 2.33-2.53, mapfs-heap/input 3.07-3.62,
// kept/input 1.31; with another job holding the 2 cores at load average
// 30-120, 36 renders from disk gave 2.49-3.13 (2 above 3) and from the
// MapFS 3.21-4.16: the GC's mark workers get less CPU, and the heap
// overshoots the goal.
// For context, measured the same way and not part of the goals: the peak
// heap of the YAML parse alone (yaml-heap/input, from the MapFS), and what
// the Repo and the RenderResult hold once done (kept/input: the heap after
// two collections with both alive, above what was in use before; the
// data-URL source strings alone are 0.82x the input).
//
// Peaks are measured in a warm process, after one render: the type caches
// encoding/json builds on first use (~0.035x) belong to the process, as in
// a hub that has rendered once, not to a render.
func BenchmarkRender(b *testing.B) {
	disk, total := onDisk(b)
	renderAll(b, disk)
	peak, kept := renderPeak(b, disk)
	// The MapFS comes to life only now: it is no part of the base above.
	fsys, _ := realisticRepo()
	yamlPeak := peakHeap(func() { yamlParseAll(b, fsys) })
	memPeak, _ := renderPeak(b, fsys)
	b.SetBytes(int64(total))
	b.ResetTimer()
	// The YAML parse is timed beside each render (outside the benchmark's
	// clock), so the ratio holds on a loaded machine; each starts on a
	// collected heap, so neither pays for the other's garbage.
	// The ratio is of CPU time (user+system, all threads, GC included),
	// which other processes on the machine do not inflate.
	var yamlNs, renderNs time.Duration
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		c0 := cpuTime()
		yamlParseAll(b, fsys)
		yamlNs += cpuTime() - c0
		runtime.GC()
		b.StartTimer()
		c1 := cpuTime()
		renderAll(b, fsys)
		renderNs += cpuTime() - c1
	}
	b.ReportMetric(float64(renderNs)/float64(yamlNs), "x-yaml")
	b.ReportMetric(float64(peak)/float64(total), "heap/input")
	b.ReportMetric(float64(memPeak)/float64(total), "mapfs-heap/input")
	b.ReportMetric(float64(yamlPeak)/float64(total), "yaml-heap/input")
	b.ReportMetric(float64(kept)/float64(total), "kept/input")
}

// onDisk writes realisticRepo's files under a temporary directory and
// returns it as an fs.FS, with the input's size; the files' contents are
// not kept in the heap.
func onDisk(b *testing.B) (fs.FS, int) {
	fsys, total := realisticRepo()
	dir := b.TempDir()
	for name, f := range fsys {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return os.DirFS(dir), total
}

// renderPeak renders fsys once and returns the peak heap above the base
// (peakHeap) and what the Repo and the RenderResult hold when done.
func renderPeak(b *testing.B, fsys fs.FS) (peak, kept uint64) {
	peak = peakHeap(func() {
		repo, res := renderKept(b, fsys)
		kept = heapAfterGC()
		runtime.KeepAlive(repo)
		runtime.KeepAlive(res)
	})
	return peak, kept
}

const heapObjects = "/memory/classes/heap/objects:bytes"

// heapAfterGC is the heap in use after two collections (the second frees
// what the first found dead, sync.Pool victims included), above the base
// of the peakHeap running; only valid inside peakHeap's f.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64() - peakBase
}

// peakBase is the base of the peakHeap running.
var peakBase uint64

// peakHeap runs f once and returns the most heap in use (live and not yet
// collected objects, runtime/metrics) above what was in use before,
// sampled every 200µs.
func peakHeap(f func()) uint64 {
	const name = heapObjects
	sample := []metrics.Sample{{Name: name}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	peakBase = base
	var mu sync.Mutex
	peak := base
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: name}}
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				metrics.Read(s)
				mu.Lock()
				if v := s[0].Value.Uint64(); v > peak {
					peak = v
				}
				mu.Unlock()
			}
		}
	}()
	f()
	if v := read(); v > peak {
		peak = v
	}
	close(done)
	wg.Wait()
	return peak - base
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
