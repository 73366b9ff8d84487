package nodeops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
)

// standIns puts recording scripts named like the real tools first on
// PATH; each appends its argv to a log and prints canned output.
func standIns(t *testing.T, outputs map[string]string) (logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "calls.log")
	for _, bin := range []string{RpmOstreeBin, BootcBin, GrubbyBin} {
		script := "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> " + logFile + "\n"
		if out, ok := outputs[bin]; ok {
			script += "printf '" + out + "\\n'\n"
		}
		must(t, os.WriteFile(filepath.Join(dir, bin), []byte(script), 0o755))
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return logFile
}

func calls(t *testing.T, logFile string) []string {
	b, err := os.ReadFile(logFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	must(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestOSBackends(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		backend   string
		wantCalls []string
		wantArgs  []string
		switchErr bool
	}{
		{BackendRpmOstree, []string{
			"rpm-ostree kargs --delete=quiet --append=nosmt --append=mitigations=off",
			"rpm-ostree rebase --experimental ostree-unverified-registry:quay.io/os:2",
			"rpm-ostree kargs",
		}, []string{"nosmt", "mitigations=off"}, false},
		{BackendGrubby, []string{
			"grubby --update-kernel=ALL --args=nosmt mitigations=off --remove-args=quiet",
			"grubby --info=DEFAULT",
		}, []string{"nosmt", "mitigations=off"}, true},
		{BackendBootc, []string{"bootc switch quay.io/os:2"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.backend, func(t *testing.T) {
			log := standIns(t, map[string]string{
				RpmOstreeBin: "nosmt mitigations=off",
				GrubbyBin:    `index=0\nargs="nosmt mitigations=off"`,
			})
			b, err := NewOSBackend(tc.backend, "/")
			must(t, err)
			err = b.UpdateKernelArgs(ctx, []string{"nosmt", "mitigations=off"}, []string{"quiet"})
			if tc.backend == BackendBootc {
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("bootc kargs: %v", err)
				}
			} else {
				must(t, err)
			}
			err = b.SwitchImage(ctx, "quay.io/os:2")
			if tc.switchErr != errors.Is(err, ErrUnsupported) {
				t.Errorf("switch: %v", err)
			}
			args, err := b.KernelArgs(ctx)
			if tc.wantArgs != nil {
				must(t, err)
			}
			if !reflect.DeepEqual(args, tc.wantArgs) {
				t.Errorf("kargs = %q, want %q", args, tc.wantArgs)
			}
			if got := calls(t, log); !reflect.DeepEqual(got, tc.wantCalls) {
				t.Errorf("calls =\n%q\nwant\n%q", got, tc.wantCalls)
			}
		})
	}
}

func TestApplyKernelArgsThroughBackendAndRollback(t *testing.T) {
	ctx := context.Background()
	// rpm-ostree kargs prints the arguments as they are after the apply:
	// the undo reads them and undoes only what is still to undo.
	log := standIns(t, map[string]string{RpmOstreeBin: "nosmt"})
	root := newRoot(t)
	osb, err := NewOSBackend(BackendRpmOstree, root)
	must(t, err)
	a, err := NewApplier(ApplierOptions{Root: root, StateDir: t.TempDir(), Systemd: &RootSystemd{Root: root}, OS: osb})
	must(t, err)
	from := &api.Rendered{Name: "a", KernelArguments: []string{"quiet"}, OSImageURL: "quay.io/os:1"}
	to := &api.Rendered{Name: "b", KernelArguments: []string{"nosmt"}, OSImageURL: "quay.io/os:2"}
	must(t, a.Apply(ctx, from, to))
	must(t, a.Rollback(ctx))
	want := []string{
		"rpm-ostree kargs --delete=quiet --append=nosmt",
		"rpm-ostree rebase --experimental ostree-unverified-registry:quay.io/os:2",
		// undo, newest first
		"rpm-ostree rebase --experimental ostree-unverified-registry:quay.io/os:1",
		"rpm-ostree kargs",
		"rpm-ostree kargs --delete=nosmt --append=quiet",
	}
	if got := calls(t, log); !reflect.DeepEqual(got, want) {
		t.Errorf("calls =\n%q\nwant\n%q", got, want)
	}

	// With no previous image the switch cannot be undone: Rollback says
	// so, still undoes the rest, and keeps the journal for a later retry.
	must(t, os.Remove(log))
	must(t, a.Apply(ctx, &api.Rendered{Name: "a"}, to))
	err = a.Rollback(ctx)
	if err == nil || !strings.Contains(err.Error(), "no previous image") {
		t.Fatalf("Rollback = %v", err)
	}
	if got := calls(t, log); got[len(got)-1] != "rpm-ostree kargs --delete=nosmt" {
		t.Errorf("kargs not undone: %q", got)
	}
	if j, _ := ReadJournal(a.opts.StateDir); j == nil {
		t.Errorf("journal dropped after a failed rollback")
	}
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	if got := Detect(root); got != BackendNone {
		t.Errorf("empty host: %s", got)
	}
	standIns(t, nil)
	if got := Detect(root); got != BackendGrubby {
		t.Errorf("grubby host: %s", got)
	}
	must(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, OSTreeBooted), nil, 0o644))
	if got := Detect(root); got != BackendRpmOstree {
		t.Errorf("ostree host: %s", got)
	}
}

// TestValidateKernelArgsSplitEntries: an entry holding several arguments
// ("audit_backlog_limit=8192 slub_debug=F", kept as written, as MCO's
// render keeps kernelArguments entries) matches the node's split arguments,
// as MCO's daemon splits entries before applying them
// (pkg/daemon/update.go parseKernelArguments / splitKernelArguments).
func TestValidateKernelArgsSplitEntries(t *testing.T) {
	ctx := context.Background()
	standIns(t, map[string]string{RpmOstreeBin: "audit=1 audit_backlog_limit=8192 slub_debug=F"})
	root := newRoot(t)
	osb, err := NewOSBackend(BackendRpmOstree, root)
	must(t, err)
	a, err := NewApplier(ApplierOptions{Root: root, StateDir: t.TempDir(), Systemd: &RootSystemd{Root: root}, OS: osb})
	must(t, err)
	for _, tc := range []struct {
		name    string
		entries []string
		drift   bool
	}{
		{"one entry, two args", []string{"audit=1", "audit_backlog_limit=8192 slub_debug=F"}, false},
		{"all split", []string{"audit=1", "audit_backlog_limit=8192", "slub_debug=F"}, false},
		{"missing arg inside an entry", []string{"audit=1 nosmt"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Validate(ctx, &api.Rendered{Name: "r", KernelArguments: tc.entries})
			must(t, err)
			if (len(got) > 0) != tc.drift {
				t.Errorf("Validate(%q) = %+v, want drift %v", tc.entries, got, tc.drift)
			}
		})
	}
}
