package fleetview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// ErrWaitTimeout: --wait-for's condition was not met within --timeout.
var ErrWaitTimeout = errors.New("timed out")

// Select keeps only the named pools and their nodes; nil keeps all. A
// name that is no pool is an error naming it.
func (v *FleetView) Select(pools []string) error {
	if len(pools) == 0 {
		return nil
	}
	var kept []api.PoolFleet
	for _, name := range pools {
		i := slices.IndexFunc(v.Pools, func(p api.PoolFleet) bool { return p.Name == name })
		if i < 0 {
			var names []string
			for _, p := range v.Pools {
				names = append(names, p.Name)
			}
			return fmt.Errorf("no pool %q on %s (pools: %s)", name, api.FleetBranch, strings.Join(names, ", "))
		}
		kept = append(kept, v.Pools[i])
	}
	var nodes []api.NodeFleet
	for _, n := range v.Nodes {
		if slices.Contains(pools, n.Pool) {
			nodes = append(nodes, n)
		}
	}
	v.Pools, v.Nodes = kept, nodes
	return nil
}

// parseWaitFor reads "Type" or "Type=True|False" (kubectl wait's
// --for=condition=Type[=value]); the type is one of the pool conditions.
func parseWaitFor(s string) (string, metav1.ConditionStatus, error) {
	if s == "" {
		return "", "", nil
	}
	s = strings.TrimPrefix(s, "condition=")
	t, v, hasValue := strings.Cut(s, "=")
	status := metav1.ConditionTrue
	if hasValue {
		switch strings.ToLower(v) {
		case "true":
		case "false":
			status = metav1.ConditionFalse
		default:
			return "", "", fmt.Errorf("--wait-for %q: the value must be True or False", s)
		}
	}
	for _, known := range api.PoolConditionTypes {
		if strings.EqualFold(t, known) {
			return known, status, nil
		}
	}
	return "", "", fmt.Errorf("--wait-for %q: want one of %s (optionally =True or =False)", s, strings.Join(api.PoolConditionTypes, ", "))
}

// Met reports whether every pool of v has condition t at status.
func (v *FleetView) Met(t string, status metav1.ConditionStatus) bool {
	if len(v.Pools) == 0 {
		return false
	}
	for _, p := range v.Pools {
		c := p.PoolCondition(t)
		if c == nil || c.Status != status {
			return false
		}
	}
	return true
}

// waitFor polls stoker/fleet until the selected pools meet the condition,
// then prints the fleet; at the deadline it prints the last view and fails.
func waitFor(ctx context.Context, o StatusOptions, repo gitsource.Repo, t string, status metav1.ConditionStatus) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var last *FleetView
	for {
		v, err := ReadFleet(ctx, repo)
		if err == nil {
			err = v.Select(o.Pools)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			last = v
			if v.Met(t, status) {
				return WriteFleet(o.Out, v, o.Output, o.Now())
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				_ = WriteFleet(o.Out, last, o.Output, o.Now())
			}
			return fmt.Errorf("status: %w after %s waiting for %s=%s on %s", ErrWaitTimeout, o.Timeout, t, status, poolsOr(o.Pools))
		case <-time.After(o.Interval):
		}
	}
}

func poolsOr(pools []string) string {
	if len(pools) == 0 {
		return "every pool"
	}
	return "pool(s) " + strings.Join(pools, ", ")
}
