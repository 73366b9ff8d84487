package nodeops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// OSBackend changes what the node boots next: kernel arguments and the OS
// image. Changes take effect at the next boot.
type OSBackend interface {
	// Name is the backend's name as given to NewOSBackend.
	Name() string
	// KernelArgs returns the kernel arguments of the deployment or entry
	// that boots next.
	KernelArgs(ctx context.Context) ([]string, error)
	// UpdateKernelArgs appends add and deletes remove.
	UpdateKernelArgs(ctx context.Context, add, remove []string) error
	// SwitchImage makes the node boot image next.
	SwitchImage(ctx context.Context, image string) error
}

// ErrUnsupported is matched by operations a backend cannot do, e.g. an OS
// image switch with grubby or none.
var ErrUnsupported = errors.New("not supported by this OS backend")

// Backend names accepted by NewOSBackend.
const (
	BackendRpmOstree = "rpm-ostree"
	BackendBootc     = "bootc"
	BackendGrubby    = "grubby"
	BackendNone      = "none"
)

// NewOSBackend returns the backend called name ("auto" or "" detects one)
// for the tree at root, with its tools taken from PATH (an offline tree,
// or the host itself). A live host reached through another root uses
// NewHostOSBackend.
func NewOSBackend(name, root string) (OSBackend, error) {
	return newOSBackend(name, root, Tools{})
}

// NewHostOSBackend returns the backend called name for host h: on a live
// host under a root other than "/" its tools run chrooted into the root.
func NewHostOSBackend(name string, h Host) (OSBackend, error) {
	return newOSBackend(name, h.Root, toolsFor(h))
}

func newOSBackend(name, root string, tools Tools) (OSBackend, error) {
	switch name {
	case "", "auto":
		return newOSBackend(detect(root, tools), root, tools)
	case BackendRpmOstree:
		return &cmdBackend{name: name, bin: RpmOstreeBin, tools: tools}, nil
	case BackendBootc:
		return &cmdBackend{name: name, bin: BootcBin, tools: tools}, nil
	case BackendGrubby:
		return &cmdBackend{name: name, bin: GrubbyBin, tools: tools}, nil
	case BackendNone:
		return noneBackend{}, nil
	}
	return nil, fmt.Errorf("os backend %q: unknown (want rpm-ostree, bootc, grubby or none)", name)
}

// Detect picks a backend for the host at root: an ostree-booted host uses
// rpm-ostree (bootc when only bootc is installed), a host with grubby uses
// grubby, anything else none. Binaries are looked up on PATH.
func Detect(root string) string { return detect(root, Tools{}) }

func detect(root string, tools Tools) string {
	has := tools.Has
	if p, err := Resolve(root, OSTreeBooted); err == nil {
		if _, err := os.Stat(p); err == nil {
			switch {
			case has(RpmOstreeBin):
				return BackendRpmOstree
			case has(BootcBin):
				return BackendBootc
			}
		}
	}
	if has(GrubbyBin) {
		return BackendGrubby
	}
	return BackendNone
}

type noneBackend struct{}

func (noneBackend) Name() string                                 { return BackendNone }
func (noneBackend) KernelArgs(context.Context) ([]string, error) { return nil, ErrUnsupported }
func (noneBackend) UpdateKernelArgs(_ context.Context, add, remove []string) error {
	if len(add)+len(remove) == 0 {
		return nil
	}
	return fmt.Errorf("update kernel arguments with backend none: %w", ErrUnsupported)
}
func (noneBackend) SwitchImage(_ context.Context, image string) error {
	return fmt.Errorf("switch to %s with backend none: %w", image, ErrUnsupported)
}

// cmdBackend runs rpm-ostree, bootc or grubby.
type cmdBackend struct {
	name  string
	bin   string
	tools Tools
}

func (b *cmdBackend) Name() string { return b.name }

func (b *cmdBackend) run(ctx context.Context, args ...string) (string, error) {
	cmd, err := b.tools.Command(ctx, b.bin, args...)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", b.bin, strings.Join(args, " "), err)
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s (%s): %w: %s", b.bin, strings.Join(args, " "), b.tools, err, trimOut(stderr.Bytes()))
	}
	return out.String(), nil
}

func (b *cmdBackend) KernelArgs(ctx context.Context) ([]string, error) {
	switch b.name {
	case BackendRpmOstree:
		out, err := b.run(ctx, "kargs")
		if err != nil {
			return nil, err
		}
		return strings.Fields(out), nil
	case BackendGrubby:
		out, err := b.run(ctx, "--info=DEFAULT")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "args="); ok {
				return strings.Fields(strings.Trim(v, `"`)), nil
			}
		}
		return nil, fmt.Errorf("%s --info=DEFAULT: no args= line", b.bin)
	}
	return nil, fmt.Errorf("read kernel arguments with %s: %w", b.name, ErrUnsupported)
}

func (b *cmdBackend) UpdateKernelArgs(ctx context.Context, add, remove []string) error {
	if len(add)+len(remove) == 0 {
		return nil
	}
	var args []string
	switch b.name {
	case BackendRpmOstree:
		args = []string{"kargs"}
		for _, a := range remove {
			args = append(args, "--delete="+a)
		}
		for _, a := range add {
			args = append(args, "--append="+a)
		}
	case BackendGrubby:
		args = []string{"--update-kernel=ALL"}
		if len(add) > 0 {
			args = append(args, "--args="+strings.Join(add, " "))
		}
		if len(remove) > 0 {
			args = append(args, "--remove-args="+strings.Join(remove, " "))
		}
	default:
		// bootc takes kernel arguments from the image (kargs.d).
		return fmt.Errorf("update kernel arguments with %s: %w", b.name, ErrUnsupported)
	}
	_, err := b.run(ctx, args...)
	return err
}

func (b *cmdBackend) SwitchImage(ctx context.Context, image string) error {
	switch b.name {
	case BackendRpmOstree:
		_, err := b.run(ctx, "rebase", "--experimental", "ostree-unverified-registry:"+image)
		return err
	case BackendBootc:
		_, err := b.run(ctx, "switch", image)
		return err
	}
	return fmt.Errorf("switch to %s with %s: %w", image, b.name, ErrUnsupported)
}
