//go:build fleetbench

package fleetbench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// events is a logrus hook on every agent's logger: it counts the agents'
// warnings by cause (push failures and their retries, failed steps) and
// keeps, per node, when it planned an update and when each of its
// reports was pushed, so a slow rollout shows where each node's time went
// (waiting for its poll, its pushes, or the hub).
type events struct {
	mu     sync.Mutex
	warns  map[string]int
	byNode map[string]*nodeEvents
}

type nodeEvents struct {
	planned []time.Time
	pushed  []pushEvent
}

type pushEvent struct {
	at    time.Time
	state string
}

func newEvents() *events {
	return &events{warns: map[string]int{}, byNode: map[string]*nodeEvents{}}
}

func (e *events) Levels() []logrus.Level { return logrus.AllLevels }

// digits hides node names, ports, commits and durations, so warnings
// group by cause.
var digits = regexp.MustCompile(`[0-9a-f]{7,40}|[0-9]+(\.[0-9]+)?`)

func (e *events) Fire(en *logrus.Entry) error {
	node, _ := en.Data["node"].(string)
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.byNode[node]
	if n == nil {
		n = &nodeEvents{}
		e.byNode[node] = n
	}
	switch {
	case en.Level <= logrus.WarnLevel:
		cause := en.Message
		if err, ok := en.Data[logrus.ErrorKey].(error); ok {
			cause += ": " + err.Error()
		}
		e.warns[digits.ReplaceAllString(cause, "N")]++
	case strings.HasPrefix(en.Message, "planned update"):
		n.planned = append(n.planned, en.Time)
	case en.Message == "pushed report":
		n.pushed = append(n.pushed, pushEvent{at: en.Time, state: fmt.Sprint(en.Data["state"])})
	}
	return nil
}

// reset forgets what was counted so far (the next window starts).
func (e *events) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.warns = map[string]int{}
	e.byNode = map[string]*nodeEvents{}
}

// logger is an agent's logger: the hook always, the text to w (a file
// with -keep, else discarded).
func (e *events) logger(w io.Writer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(e)
	return l
}

// report logs the warnings by cause and, for the nodes that planned an
// update after since, quantiles of: since → planned (waiting for the
// poll that saw the node's target), planned → Done pushed, and the
// pushes each node made.
func (e *events) report(t interface{ Logf(string, ...any) }, what string, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	causes := make([]string, 0, len(e.warns))
	for c := range e.warns {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool { return e.warns[causes[i]] > e.warns[causes[j]] })
	if len(causes) == 0 {
		t.Logf("%s agent warnings: none", what)
	}
	for i, c := range causes {
		if i == 15 {
			t.Logf("%s agent warnings: (+%d more causes)", what, len(causes)-i)
			break
		}
		t.Logf("%s agent warnings: %d × %s", what, e.warns[c], c)
	}
	var toPlan, toDone, planned []time.Duration
	pushes := map[string]int{}
	for _, n := range e.byNode {
		if len(n.planned) == 0 {
			continue
		}
		p := n.planned[0]
		toPlan = append(toPlan, p.Sub(since))
		planned = append(planned, p.Sub(since))
		for _, ev := range n.pushed {
			pushes[ev.state]++
			if ev.state == "Done" && !ev.at.Before(p) {
				toDone = append(toDone, ev.at.Sub(p))
				break
			}
		}
	}
	t.Logf("%s: %d nodes planned an update; push → planned %s; planned → Done pushed %s; reports pushed by state %v", what,
		len(toPlan), quantiles(toPlan), quantiles(toDone), pushes)
	sort.Slice(planned, func(i, j int) bool { return planned[i] < planned[j] })
	// Planned per 10 s after since: when the nodes saw their targets.
	var hist []string
	for i := 0; len(planned) > 0; i++ {
		hi := time.Duration(i+1) * 10 * time.Second
		k := sort.Search(len(planned), func(j int) bool { return planned[j] >= hi })
		if k > 0 {
			hist = append(hist, fmt.Sprintf("%ds:%d", i*10, k))
		}
		planned = planned[k:]
	}
	t.Logf("%s: nodes planning their update per 10 s after the push: %s", what, strings.Join(hist, " "))
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))].Round(100 * time.Millisecond) }
	return fmt.Sprintf("p50 %s p90 %s max %s", q(0.5), q(0.9), q(1))
}

// hubPhases logs the hub's loops after since that took longer than
// slow, from its debug log's "reconcile phases" lines.
func hubPhases(t interface{ Logf(string, ...any) }, log string, since time.Time, slow time.Duration) {
	data, err := os.ReadFile(log)
	if err != nil {
		t.Logf("hub log: %v", err)
		return
	}
	n, shown := 0, 0
	var worst time.Duration
	var all []string
	field := func(l, k string) string {
		i := strings.Index(l, " "+k+"=")
		if i < 0 {
			return "?"
		}
		return strings.Fields(l[i+len(k)+2:])[0]
	}
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.Contains(l, `msg="reconcile phases"`) || !strings.HasPrefix(l, `time="`) {
			continue
		}
		at, err := time.Parse(time.RFC3339, l[6:strings.IndexByte(l[6:], '"')+6])
		if err != nil || at.Before(since.Truncate(time.Second)) {
			continue
		}
		n++
		i := strings.Index(l, "total=")
		if i < 0 {
			continue
		}
		d, err := time.ParseDuration(strings.Fields(l[i+6:])[0])
		if err != nil {
			continue
		}
		worst = max(worst, d)
		all = append(all, fmt.Sprintf("+%s %s/%s/%s", at.Sub(since).Round(time.Second), d.Round(100*time.Millisecond),
			field(l, "reports_fetched"), field(l, "steps")))
		if d >= slow && shown < 20 {
			shown++
			t.Logf("hub loop at +%s: %s", at.Sub(since).Round(time.Second), l[strings.Index(l, `msg=`):])
		}
	}
	t.Logf("hub: %d loops that did something after the push, slowest %s", n, worst)
	t.Logf("hub loops after the push (end time, took/reports fetched/nodes advanced): %s", strings.Join(all, ", "))
}

// keepFile is where a log goes: under -keep when set, else under dir.
func keepFile(dir, name string) string {
	if *keep != "" {
		os.MkdirAll(*keep, 0o755)
		return filepath.Join(*keep, name)
	}
	return filepath.Join(dir, name)
}
