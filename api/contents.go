package api

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
)

// maxDecodedFileBytes bounds what DecodeFileContents expands a file to: a
// gzip bomb inside a 1.5 MiB rendered config stops here.
const maxDecodedFileBytes = 64 << 20

// DecodeFileContents returns the bytes a file's contents stand for: a
// data: URL decoded, then gunzipped when compression is gzip. A file with
// no source is empty. Remote sources are an error (a node never fetches).
func DecodeFileContents(r ign3types.Resource) ([]byte, error) {
	if r.Source == nil {
		return nil, nil
	}
	scheme, _, _ := strings.Cut(*r.Source, ":")
	if !strings.EqualFold(scheme, "data") {
		return nil, fmt.Errorf("source is not a data: URL")
	}
	du, err := dataurl.DecodeString(*r.Source)
	if err != nil {
		return nil, fmt.Errorf("bad data URL: %w", err)
	}
	if r.Compression == nil || *r.Compression == "" {
		return du.Data, nil
	}
	if *r.Compression != "gzip" {
		return nil, fmt.Errorf("unsupported compression %q", *r.Compression)
	}
	zr, err := gzip.NewReader(bytes.NewReader(du.Data))
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxDecodedFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bad gzip data: %w", err)
	}
	if len(data) > maxDecodedFileBytes {
		return nil, fmt.Errorf("decompressed contents exceed %d bytes", maxDecodedFileBytes)
	}
	return data, nil
}
