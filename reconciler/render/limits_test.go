package render

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gzipBomb is n MiB of zeros as n concatenated 1 MiB gzip members.
func gzipBomb(t *testing.T, mib int) []byte {
	t.Helper()
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(one.Bytes(), mib)
}

// TestValidateRefusesDecompressionBomb: `stoker validate` refuses a
// 1.36 MB MachineConfig whose gzip data URL expands to 1 GiB, naming the
// file and the field, and a manifest file over the size limit, naming
// the file, without reading it.
func TestValidateRefusesDecompressionBomb(t *testing.T) {
	src := "data:;base64," + base64.StdEncoding.EncodeToString(gzipBomb(t, 1024))
	bomb := file("/etc/bomb.conf", "x", "")
	bomb = strings.Replace(bomb, "{source: 'data:,x'}", "{source: '"+src+"', compression: gzip}", 1)
	dir := writeTree(t, map[string]string{
		"machineconfigs/50-bomb.yaml": filesMC("50-bomb", "worker", file("/etc/ok.conf", "x", ""), bomb),
		"machineconfigs/60-ok.yaml":   filesMC("60-ok", "worker", file("/etc/a", "x", "")),
	})
	fi, err := os.Stat(filepath.Join(dir, "machineconfigs/50-bomb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb MachineConfig: %d bytes, expands to 1 GiB", fi.Size())
	huge := filepath.Join(dir, "machineconfigs/70-huge.yaml")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 9<<20); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = RunValidate(context.Background(), ValidateOptions{Dir: dir, Stdout: &out})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid\n%s", err, out.String())
	}
	for _, want := range []string{
		"machineconfigs/50-bomb.yaml: spec.config.storage.files[1].contents.source: contents expand to more than 33554432 bytes, the per-file limit",
		"machineconfigs/70-huge.yaml: file is 9437184 bytes, over the limit",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

// TestPolicyRefusesOptionLikeUnitName: a disruption policy's unit and
// service names follow systemd's grammar and may not start with "-"
// (beyond the MachineConfiguration CRD's pattern, which allows it: the
// name would reach systemctl as an option).
func TestPolicyRefusesOptionLikeUnitName(t *testing.T) {
	doc := "apiVersion: operator.openshift.io/v1\nkind: MachineConfiguration\nmetadata: {name: cluster}\nspec:\n  nodeDisruptionPolicy:\n    files:\n    - path: /etc/a\n      actions: [{type: Restart, restart: {serviceName: -H.service}}]\n    units:\n    - name: --now.service\n      actions: [{type: None}]\n"
	_, ps := LoadBytes("policy.yaml", []byte(doc), LoadOptions{})
	var got []string
	for _, p := range ps.Errors() {
		got = append(got, p.String())
	}
	for _, want := range []string{"files[0].actions[0].restart.serviceName: unit name \"-H.service\" starts with", "units[0].name: unit name \"--now.service\" starts with"} {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, want)
		}
		if !found {
			t.Errorf("missing %q in %q", want, got)
		}
	}
}
