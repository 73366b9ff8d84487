package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

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
// streamed into the hash (as json.Marshal encodes it), and its length is
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
	w := &heldBackWriter{w: h}
	// An Encoder writes what json.Marshal returns and a newline, which
	// heldBackWriter keeps out of the hash.
	if err := json.NewEncoder(w).Encode(r.Config); err != nil {
		return "", 0, fmt.Errorf("encode rendered config for pool %s: %w", pool, err)
	}
	if !w.held || w.last != '\n' {
		return "", 0, fmt.Errorf("encode rendered config for pool %s: unexpected encoding", pool)
	}
	h.Write(rest[len(head):])
	return "rendered-" + pool + "-" + hex.EncodeToString(h.Sum(nil))[:hashLen], w.n, nil
}

// heldBackWriter writes everything but the last byte written so far to w
// and counts what it wrote.
type heldBackWriter struct {
	w    io.Writer
	n    int
	last byte
	held bool
}

func (hw *heldBackWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if hw.held {
		if _, err := hw.w.Write([]byte{hw.last}); err != nil {
			return 0, err
		}
		hw.n++
	}
	if _, err := hw.w.Write(p[:len(p)-1]); err != nil {
		return 0, err
	}
	hw.n += len(p) - 1
	hw.last, hw.held = p[len(p)-1], true
	return len(p), nil
}
