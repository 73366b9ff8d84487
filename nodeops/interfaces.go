package nodeops

import (
	"context"
	"errors"
	"fmt"
)

// Drainer empties a node before a disruptive change and undoes that after.
type Drainer interface {
	// Drain cordons node and evicts its pods. cordoned reports whether this
	// call made the node unschedulable (it was schedulable before), so the
	// caller uncordons only what Stoker cordoned.
	Drain(ctx context.Context, node string) (cordoned bool, err error)
	// Uncordon makes node schedulable again.
	Uncordon(ctx context.Context, node string) error
}

// CordonChecker is implemented by drainers that can tell whether the node
// carries their own cordon (kubedrain marks it on the Node), so a cordon
// made just before a crash is still undone when the update is abandoned.
type CordonChecker interface {
	CordonedByUs(ctx context.Context, node string) (bool, error)
}

// ErrDrainBlocked is matched (errors.Is) by a drain that cannot proceed
// yet, e.g. because a PodDisruptionBudget allows no eviction now. The
// caller retries and must not reboot.
var ErrDrainBlocked = errors.New("drain blocked")

// DrainBlockedError says what blocks a drain.
type DrainBlockedError struct {
	// Blocker names what blocks, e.g. "PodDisruptionBudget default/web".
	Blocker string
	Err     error
}

func (e *DrainBlockedError) Error() string {
	return fmt.Sprintf("drain blocked by %s: %v", e.Blocker, e.Err)
}

// Is makes errors.Is(err, ErrDrainBlocked) true.
func (e *DrainBlockedError) Is(target error) bool { return target == ErrDrainBlocked }

// Unwrap returns the underlying error.
func (e *DrainBlockedError) Unwrap() error { return e.Err }

// Rebooter restarts the machine (or, with simulate, the agent as if the
// machine had restarted). It returns once the reboot is requested; the
// caller must have persisted everything it needs after boot.
type Rebooter interface {
	Reboot(ctx context.Context, reason string) error
}

// NodeAnnotator mirrors the agent's state onto its Kubernetes Node, so
// `kubectl get nodes` and `kubectl describe node` show it.
type NodeAnnotator interface {
	Annotate(ctx context.Context, node string, annotations map[string]string) error
}
