package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// GzipBomb returns a gzip stream of n MiB of zeros, built as n copies of
// one gzip member of 1 MiB (gzip readers read concatenated members), so
// a 1 GiB bomb costs a millisecond to build and is about 1 MB.
func gzipBomb(t testing.TB, mib int) []byte {
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

func gzipFile(path string, gz []byte) ign3types.File {
	src := "data:;base64," + base64.StdEncoding.EncodeToString(gz)
	gzip := "gzip"
	return ign3types.File{Node: ign3types.Node{Path: path}, FileEmbedded1: ign3types.FileEmbedded1{
		Contents: ign3types.Resource{Source: &src, Compression: &gzip}}}
}

// TestValidateBoundsDecompressedSize: a 1.36 MB data URL that expands to
// 1 GiB is refused at its field without being expanded whole, as is a
// config whose files together expand past the per-config limit.
func TestValidateBoundsDecompressedSize(t *testing.T) {
	bomb := gzipBomb(t, 1024)
	var cfg ign3types.Config
	cfg.Storage.Files = []ign3types.File{gzipFile("/etc/ok.conf", gzipBomb(t, 1)), gzipFile("/etc/bomb.conf", bomb)}
	if n := len(*cfg.Storage.Files[1].Contents.Source); n > 1500<<10 {
		t.Fatalf("bomb data URL is %d bytes, want it under MCO's rendered limit", n)
	}
	ps := ValidateIgnition(cfg, "spec.config", DefaultValidationOptions()).Errors()
	if len(ps) != 1 || ps[0].Field != "spec.config.storage.files[1].contents.source" || !strings.Contains(ps[0].Message, "per-file limit") {
		t.Fatalf("problems = %+v, want one at spec.config.storage.files[1].contents.source", ps)
	}

	opts := DefaultValidationOptions()
	opts.MaxFileBytes, opts.MaxConfigBytes = 2<<20, 5<<20
	cfg.Storage.Files = nil
	for _, p := range []string{"/etc/a", "/etc/b", "/etc/c"} {
		cfg.Storage.Files = append(cfg.Storage.Files, gzipFile(p, gzipBomb(t, 2)))
	}
	ps = ValidateIgnition(cfg, "spec.config", opts).Errors()
	if len(ps) != 1 || ps[0].Field != "spec.config.storage.files" || !strings.Contains(ps[0].Message, "per-config limit") {
		t.Fatalf("problems = %+v, want one at spec.config.storage.files", ps)
	}
}
