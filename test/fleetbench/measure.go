//go:build fleetbench

package fleetbench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cpu is a process's user+system CPU (children it waited for included:
// git daemon's upload-pack and receive-pack children count to it).
func cpu(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// memKiB returns a process's VmRSS and VmHWM in KiB.
func memKiB(pid int) (rss, hwm int64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// proxy is a loopback TCP proxy in front of the git daemon that counts
// the bytes and connections passing through it: the hub and a sample of
// the agents talk to the daemon through one, so bytes per poll and per
// hub loop are measured on the wire, not estimated.
type proxy struct {
	ln            net.Listener
	target        string
	conns         atomic.Int64
	up, down      atomic.Int64 // client → server, server → client
	wg            sync.WaitGroup
	closeOnce     sync.Once
	activeMu      sync.Mutex
	active        map[net.Conn]bool
	dialFailures  atomic.Int64
	acceptStopped chan struct{}
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for proxy to %s: %w", target, err)
	}
	p := &proxy{ln: ln, target: target, active: map[net.Conn]bool{}, acceptStopped: make(chan struct{})}
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer close(p.acceptStopped)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *proxy) track(c net.Conn, on bool) {
	p.activeMu.Lock()
	defer p.activeMu.Unlock()
	if on {
		p.active[c] = true
	} else {
		delete(p.active, c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", p.target, time.Minute)
	if err != nil {
		p.dialFailures.Add(1)
		return
	}
	defer s.Close()
	p.track(c, true)
	p.track(s, true)
	defer p.track(c, false)
	defer p.track(s, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, n *atomic.Int64) {
		k, _ := io.Copy(dst, src)
		n.Add(k)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(s, c, &p.up)
	go pipe(c, s, &p.down)
	<-done
	<-done
}

// counts is a snapshot of a proxy's counters.
type counts struct{ conns, up, down int64 }

func (p *proxy) snapshot() counts {
	return counts{p.conns.Load(), p.up.Load(), p.down.Load()}
}

func (c counts) sub(o counts) counts { return counts{c.conns - o.conns, c.up - o.up, c.down - o.down} }

// waitIdle waits (up to a minute) until no connection is open, so the
// server's processes have exited and their CPU is counted.
func (p *proxy) waitIdle() {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p.activeMu.Lock()
		n := len(p.active)
		p.activeMu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *proxy) close() {
	p.closeOnce.Do(func() {
		p.ln.Close()
		<-p.acceptStopped
		p.activeMu.Lock()
		for c := range p.active {
			c.Close()
		}
		p.activeMu.Unlock()
		p.wg.Wait()
	})
}

// scrape reads a Prometheus text exposition into name{labels} → value.
func scrape(url string) (map[string]float64, error) {
	c := http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		out[l[:i]] = v
	}
	return out, sc.Err()
}

// sample is what the harness reads of every process at one moment.
type sample struct {
	at                time.Time
	hub, agents, git  time.Duration
	hubProxy, agProxy counts
	metrics           map[string]float64
	load              string
}

// loops is the hub's reconcile count by result, from its /metrics.
func (s sample) loops(result string) float64 {
	return s.metrics[`stoker_hub_reconciles_total{result="`+result+`"}`]
}

func (s sample) allLoops() float64 {
	var n float64
	for _, r := range []string{"success", "skipped", "render_error", "error"} {
		n += s.loops(r)
	}
	return n
}
