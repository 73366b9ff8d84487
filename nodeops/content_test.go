package nodeops

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// gzipBomb is n MiB of zeros as n concatenated 1 MiB gzip members.
func gzipBomb(t *testing.T, mib int) []byte {
	t.Helper()
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	_, err := zw.Write(make([]byte, 1<<20))
	must(t, err)
	must(t, zw.Close())
	return bytes.Repeat(one.Bytes(), mib)
}

func bombConfig(t *testing.T, mib int) *api.Rendered {
	src := "data:;base64," + base64.StdEncoding.EncodeToString(gzipBomb(t, mib))
	gz := "gzip"
	r := &api.Rendered{Name: "rendered-worker-bomb"}
	r.Config.Storage.Files = []ign3types.File{{Node: ign3types.Node{Path: "/etc/bomb.bin"},
		FileEmbedded1: ign3types.FileEmbedded1{Contents: ign3types.Resource{Source: &src, Compression: &gz}}}}
	return r
}

// TestApplyStreamsContents runs the applier in a child process and reads
// the child's peak RSS from the kernel: a 256 MiB gzip file (allowed by
// raised limits) is written streaming, without the contents ever being
// in memory, and a 1 GiB one is refused at the default per-file limit
// without being expanded.
func TestApplyStreamsContents(t *testing.T) {
	if dir := os.Getenv("STOKER_TEST_STREAM_ROOT"); dir != "" {
		streamChild(t, dir, os.Getenv("STOKER_TEST_STREAM_CASE"))
		return
	}
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{{"write-256MiB", false}, {"refuse-1GiB", true}} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			out := filepath.Join(t.TempDir(), "result")
			cmd := exec.Command(os.Args[0], "-test.run=^TestApplyStreamsContents$", "-test.count=1")
			cmd.Env = append(os.Environ(), "STOKER_TEST_STREAM_ROOT="+root, "STOKER_TEST_STREAM_CASE="+tc.name+":"+out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, b)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			peak := ru.Maxrss << 10 // KiB on Linux
			result, err := os.ReadFile(out)
			must(t, err)
			t.Logf("%s: peak RSS %d MiB; %s", tc.name, peak>>20, result)
			if peak > 96<<20 {
				t.Errorf("peak RSS %d MiB: contents were held in memory", peak>>20)
			}
			fi, err := os.Stat(filepath.Join(root, "etc/bomb.bin"))
			switch {
			case tc.wantErr && !strings.Contains(string(result), "per-file limit"):
				t.Errorf("want a refusal at the per-file limit, got %s", result)
			case tc.wantErr && !errors.Is(err, os.ErrNotExist):
				t.Errorf("refused file was written: %v", err)
			case !tc.wantErr && (err != nil || fi.Size() != 256<<20):
				t.Errorf("written file: %v %v (result %s)", fi, err, result)
			}
		})
	}
}

func streamChild(t *testing.T, root, spec string) {
	name, out, _ := strings.Cut(spec, ":")
	opts := ApplierOptions{Root: root, StateDir: filepath.Join(root, "..", "state-"+name), Systemd: &RootSystemd{Root: root}}
	cfg := bombConfig(t, 1024)
	if name == "write-256MiB" {
		opts.MaxFileBytes, opts.MaxConfigBytes = 512<<20, 1<<30
		cfg = bombConfig(t, 256)
	}
	a, err := NewApplier(opts)
	must(t, err)
	res := "applied"
	if err := a.Apply(context.Background(), nil, cfg); err != nil {
		res = err.Error()
	}
	must(t, os.WriteFile(out, []byte(res), 0o644))
}
