package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// Name returns rendered-<pool>-<hash>, the hash over the canonical JSON of
// the merged config (Go's encoding of these types has a fixed field order
// and no maps), so the same inputs name the same config everywhere.
func Name(pool string, r *api.Rendered) (string, error) {
	cfg, err := json.Marshal(r.Config)
	if err != nil {
		return "", fmt.Errorf("encode rendered config for pool %s: %w", pool, err)
	}
	return nameFrom(pool, r, cfg)
}

// canonRendered is api.Rendered with its config already encoded: it
// encodes to the same bytes as the Rendered (json.RawMessage is copied
// compacted and HTML-escaped, as the config's own encoding is), so the
// config is encoded once for the name and the size check.
type canonRendered struct {
	Name            string
	Config          json.RawMessage
	KernelArguments []string
	KernelType      string
	Extensions      []string
	FIPS            bool
	OSImageURL      string
}

func nameFrom(pool string, r *api.Rendered, cfg []byte) (string, error) {
	// The canonical bytes are {"Name":"","Config":<cfg>,<the rest>}:
	// hashed in pieces, the config is not copied or scanned again.
	rest, err := json.Marshal(canonRendered{Config: json.RawMessage("0"), KernelArguments: r.KernelArguments,
		KernelType: r.KernelType, Extensions: r.Extensions, FIPS: r.FIPS, OSImageURL: r.OSImageURL})
	if err != nil {
		return "", fmt.Errorf("encode rendered config for pool %s: %w", pool, err)
	}
	const head = `{"Name":"","Config":0`
	if !bytes.HasPrefix(rest, []byte(head)) {
		return "", fmt.Errorf("encode rendered config for pool %s: unexpected encoding", pool)
	}
	h := sha256.New()
	h.Write(rest[:len(head)-1])
	h.Write(cfg)
	h.Write(rest[len(head):])
	return "rendered-" + pool + "-" + hex.EncodeToString(h.Sum(nil))[:hashLen], nil
}

// streamName is Name without holding the config's encoding: it is
// streamed into the hash entry by entry (encodeConfig), and its length is
// returned.
func streamName(pool string, r *api.Rendered) (string, int, error) {
	rest, err := json.Marshal(canonRendered{Config: json.RawMessage("0"), KernelArguments: r.KernelArguments,
		KernelType: r.KernelType, Extensions: r.Extensions, FIPS: r.FIPS, OSImageURL: r.OSImageURL})
	if err != nil {
		return "", 0, fmt.Errorf("encode rendered config for pool %s: %w", pool, err)
	}
	const head = `{"Name":"","Config":0`
	if !bytes.HasPrefix(rest, []byte(head)) {
		return "", 0, fmt.Errorf("encode rendered config for pool %s: unexpected encoding", pool)
	}
	h := sha256.New()
	h.Write(rest[:len(head)-1])
	w := &countingWriter{w: h}
	if err := encodeConfig(w, &r.Config); err != nil {
		return "", 0, fmt.Errorf("encode rendered config for pool %s: %w", pool, err)
	}
	h.Write(rest[len(head):])
	return "rendered-" + pool + "-" + hex.EncodeToString(h.Sum(nil))[:hashLen], w.n, nil
}

// Stand-ins for the files and units of a config in its skeleton
// (encodeConfig): no valid config has a NUL in a path or unit name.
var (
	fileMarker = ign3types.File{Node: ign3types.Node{Path: "\x00stoker-files\x00"}}
	unitMarker = ign3types.Unit{Name: "\x00stoker-units\x00"}
)

// encodeConfig writes json.Marshal(cfg)'s bytes to w without building
// them whole (a pool's config is as large as its MachineConfigs): the
// config is encoded with one stand-in file and unit, and the stand-ins'
// encodings are replaced by the real entries, each encoded alone.
// json.Marshal encodes a list of structs as "[", the entries'
// encodings joined by ",", "]", so the bytes are the same
// (TestEncodeConfigMatchesMarshal).
func encodeConfig(w io.Writer, cfg *ign3types.Config) error {
	skel := *cfg
	if len(cfg.Storage.Files) > 0 {
		skel.Storage.Files = []ign3types.File{fileMarker}
	}
	if len(cfg.Systemd.Units) > 0 {
		skel.Systemd.Units = []ign3types.Unit{unitMarker}
	}
	b, err := json.Marshal(&skel)
	if err != nil {
		return err
	}
	type part struct {
		at, n int
		each  func(w io.Writer) error
	}
	var parts []part
	for _, m := range []struct {
		marker any
		n      int
		each   func(w io.Writer) error
	}{
		{fileMarker, len(cfg.Storage.Files), func(w io.Writer) error { return encodeEach(w, cfg.Storage.Files) }},
		{unitMarker, len(cfg.Systemd.Units), func(w io.Writer) error { return encodeEach(w, cfg.Systemd.Units) }},
	} {
		if m.n == 0 {
			continue
		}
		mb, err := json.Marshal(m.marker)
		if err != nil {
			return err
		}
		list := append(append([]byte{'['}, mb...), ']')
		if bytes.Count(b, list) != 1 {
			// Cannot happen with a valid config; encode it whole.
			return writeMarshal(w, cfg)
		}
		parts = append(parts, part{at: bytes.Index(b, list) + 1, n: len(mb), each: m.each})
	}
	if len(parts) == 2 && parts[1].at < parts[0].at {
		parts[0], parts[1] = parts[1], parts[0]
	}
	from := 0
	for _, p := range parts {
		if _, err := w.Write(b[from:p.at]); err != nil {
			return err
		}
		if err := p.each(w); err != nil {
			return err
		}
		from = p.at + p.n
	}
	_, err = w.Write(b[from:])
	return err
}

// encodeEach writes the encodings of items joined by ",". One Encoder
// and buffer serve every entry, so only the largest entry is held.
func encodeEach[T any](w io.Writer, items []T) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range items {
		buf.Reset()
		if i > 0 {
			buf.WriteByte(',')
		}
		// Encode writes what json.Marshal returns and a newline.
		if err := enc.Encode(&items[i]); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()[:buf.Len()-1]); err != nil {
			return err
		}
	}
	return nil
}

func writeMarshal(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// countingWriter writes to w and counts what it wrote.
type countingWriter struct {
	w io.Writer
	n int
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += n
	return n, err
}
