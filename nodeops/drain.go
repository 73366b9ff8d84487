package nodeops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

var (
	_ Drainer = NoneDrainer{}
	_ Drainer = (*ExecDrainer)(nil)
)

// NewDrainer returns the drainer named by spec: "none" or "exec:CMD".
// "kube" is built by nodeops/kubedrain, which needs a Kubernetes client;
// asking for it here is an error that says so.
func NewDrainer(spec string) (Drainer, error) {
	switch {
	case spec == "" || spec == "none":
		return NoneDrainer{}, nil
	case spec == "kube":
		return nil, errors.New("drainer kube: build it with nodeops/kubedrain")
	case strings.HasPrefix(spec, "exec:"):
		cmd := strings.TrimPrefix(spec, "exec:")
		if strings.TrimSpace(cmd) == "" {
			return nil, errors.New("drainer exec: command is empty")
		}
		return &ExecDrainer{Command: cmd}, nil
	}
	return nil, fmt.Errorf("drainer %q: unknown (want none, kube or exec:CMD)", spec)
}

// NoneDrainer does nothing: hosts without workloads to move.
type NoneDrainer struct{}

// Drain implements Drainer; it never cordons.
func (NoneDrainer) Drain(context.Context, string) (bool, error) { return false, nil }

// Uncordon implements Drainer.
func (NoneDrainer) Uncordon(context.Context, string) error { return nil }

// ExecDrainer runs Command with sh -c, NODE set to the node name and
// STOKER_DRAIN set to "drain" or "uncordon"; a non-zero exit is an error.
type ExecDrainer struct {
	Command string
}

// Drain implements Drainer. It reports cordoned=true: the hook is
// trusted to have emptied the node, and Uncordon undoes it.
func (d *ExecDrainer) Drain(ctx context.Context, node string) (bool, error) {
	if err := d.run(ctx, node, "drain"); err != nil {
		return false, err
	}
	return true, nil
}

// Uncordon implements Drainer.
func (d *ExecDrainer) Uncordon(ctx context.Context, node string) error {
	return d.run(ctx, node, "uncordon")
}

func (d *ExecDrainer) run(ctx context.Context, node, op string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", d.Command)
	cmd.Env = append(os.Environ(), "NODE="+node, "STOKER_DRAIN="+op)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s node %s with %q: %w: %s", op, node, d.Command, err, strings.TrimSpace(string(out)))
	}
	return nil
}
