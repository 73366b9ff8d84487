package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/test/testutil"
)

// TestValidateJSONLines: -o json gives every problem's file, line and
// field (for CI annotations); a directory that does not exist is named.
func TestValidateJSONLines(t *testing.T) {
	dir := t.TempDir()
	bad := "# a comment\n" + testutil.FileMC("70-bad", "worker", "/usr/bin/evil", "x")
	if err := os.MkdirAll(filepath.Join(dir, "mc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mc", "70-bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := RunValidate(context.Background(), ValidateOptions{Dir: dir, Output: "json", Stdout: &out})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	var rep ValidateReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "path: /usr/bin/evil") {
			want = i + 1
		}
	}
	found := false
	for _, p := range rep.Problems {
		if p.File == "mc/70-bad.yaml" && p.Field == "spec.config.storage.files[0].path" {
			found = p.Line == want
			if !found {
				t.Fatalf("line %d, want %d: %+v", p.Line, want, p)
			}
		}
	}
	if !found || rep.Valid || rep.Errors == 0 {
		t.Fatalf("report %+v", rep)
	}

	err = RunValidate(context.Background(), ValidateOptions{Dir: "/nonexistent", Stdout: &out})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Fatalf("validate /nonexistent: %v", err)
	}
}
