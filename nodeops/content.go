package nodeops

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
)

// content is what a managed file holds, never expanded in memory: the
// decoded bytes of a data: URL (bounded by the rendered config's size),
// gunzipped on demand as a stream. Size and Digest are measured once,
// streaming, when the desired state is built.
type content struct {
	raw    []byte
	gzip   bool
	max    int64
	Size   int64
	Digest string
}

// inline is content held as is (units, dropins, ssh keys).
func inline(data []byte) content {
	return content{raw: data, Size: int64(len(data)), Digest: Digest(data), max: int64(len(data))}
}

// ErrTooLarge is matched (errors.Is) when a file's contents expand past
// the per-file limit or a config's past the per-config limit.
var ErrTooLarge = errors.New("contents too large")

// decodeContents measures the contents of an inline Ignition resource: a
// data: URL, optionally gzip-compressed, expanded at most to max bytes.
// Remote sources are refused (the hub's validation rejects them; this is
// the node's own guard).
func decodeContents(res ign3types.Resource, max int64) (content, error) {
	if res.Source == nil || *res.Source == "" {
		return inline(nil), nil
	}
	src := *res.Source
	if !strings.HasPrefix(src, "data:") {
		scheme, _, _ := strings.Cut(src, ":")
		return content{}, fmt.Errorf("source scheme %q: only inline data: sources are applied on a node", scheme)
	}
	u, err := dataurl.DecodeString(src)
	if err != nil {
		return content{}, fmt.Errorf("decode data URL: %w", err)
	}
	c := content{raw: u.Data, max: max}
	if res.Compression != nil && *res.Compression != "" {
		if *res.Compression != "gzip" {
			return content{}, fmt.Errorf("compression %q: only gzip is supported", *res.Compression)
		}
		c.gzip = true
	}
	r, err := c.open()
	if err != nil {
		return content{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return content{}, err
	}
	c.Size, c.Digest = n, driftDigestLabel+hex.EncodeToString(h.Sum(nil))
	return c, nil
}

// open streams the contents; reading past the limit is an error, not a
// silent cut.
func (c content) open() (io.Reader, error) {
	if !c.gzip {
		if int64(len(c.raw)) > c.max {
			return nil, fmt.Errorf("more than %d bytes, the per-file limit: %w", c.max, ErrTooLarge)
		}
		return bytes.NewReader(c.raw), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(c.raw))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return &limitedReader{r: zr, left: c.max, max: c.max}, nil
}

// limitedReader fails once more than left bytes come out of r.
type limitedReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.tooLarge()
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.tooLarge()
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gunzip: %w", err)
	}
	return n, err
}

func (l *limitedReader) tooLarge() error {
	return fmt.Errorf("expand to more than %d bytes, the per-file limit: %w", l.max, ErrTooLarge)
}

// onDisk is a regular file's state as drift checks and the journal see
// it; the content only as size and digest (streamed, never held).
type onDisk struct {
	Mode     os.FileMode
	UID, GID int
	Size     int64
	Digest   string
}

// statFile reads the mode, owner, size and digest of the regular file at
// target. A missing file is (zero, false, nil).
func statFile(target string) (onDisk, bool, error) {
	f, fi, err := openRegular(target)
	if errors.Is(err, fs.ErrNotExist) {
		return onDisk{}, false, nil
	}
	if err != nil {
		return onDisk{}, true, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return onDisk{}, true, fmt.Errorf("read %s: %w", target, err)
	}
	st := onDisk{Mode: fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky),
		Size: n, Digest: driftDigestLabel + hex.EncodeToString(h.Sum(nil))}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = int(s.Uid), int(s.Gid)
	}
	return st, true, nil
}

// openRegular opens target without following a symlink there and checks
// that what it opened is a regular file.
func openRegular(target string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(target, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s: %w: is a symlink", target, ErrUnsafePath)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: not a regular file", target, ErrUnsafePath)
	}
	return f, fi, nil
}
