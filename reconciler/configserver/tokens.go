package configserver

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Token rules.
const (
	// MaxTokenFileBytes bounds a pool's token file.
	MaxTokenFileBytes = 16 << 10
	// MinTokenLength refuses guessable tokens: a shorter line is ignored
	// (and reported by Validate).
	MinTokenLength = 16
)

// Refusals, answered 401 and 403. Neither says whether the pool exists.
var (
	ErrNoToken  = errors.New("no bearer token")
	ErrBadToken = errors.New("token not valid for this pool")
)

// Tokens are the per-pool bearer tokens, read from Dir on every request
// (a mounted Secret rotates without a restart): the file Dir/<pool> holds
// one token per line; blank lines and lines starting with # are skipped.
// Several lines are several valid tokens — the overlap while one is rotated
// out: add the new token, move machines to it, then remove the old line.
type Tokens struct {
	Dir string
}

// Check returns nil when the Authorization header carries a bearer token
// listed for pool, ErrNoToken when it carries none, ErrBadToken otherwise
// (also when pool has no token file). Other errors are the hub's (an
// unreadable or oversized file) and name the file.
func (t Tokens) Check(pool, authorization string) error {
	scheme, given, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	given = strings.TrimSpace(given)
	if !ok || !strings.EqualFold(scheme, "Bearer") || given == "" {
		return ErrNoToken
	}
	valid, err := t.read(pool)
	if err != nil {
		return err
	}
	// Compare digests, so neither the length nor the content of a valid
	// token leaks through timing; look at every token.
	g := sha256.Sum256([]byte(given))
	match := 0
	for _, v := range valid {
		w := sha256.Sum256([]byte(v))
		match |= subtle.ConstantTimeCompare(g[:], w[:])
	}
	if match == 1 {
		return nil
	}
	return ErrBadToken
}

// read returns pool's valid tokens; no file is no token.
func (t Tokens) read(pool string) ([]string, error) {
	if t.Dir == "" {
		return nil, nil
	}
	path := filepath.Join(t.Dir, pool)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token file %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokenFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read token file %s: %w", path, err)
	}
	if len(data) > MaxTokenFileBytes {
		return nil, fmt.Errorf("read token file %s: larger than %d bytes", path, MaxTokenFileBytes)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || len(line) < MinTokenLength {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}

// Validate reports, per problem, a token file in Dir that is unusable: a
// token line shorter than MinTokenLength (the line number, never the
// token), or a file too large to read. The hub logs it at start.
func (t Tokens) Validate() []string {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return []string{fmt.Sprintf("read token dir %s: %v", t.Dir, err)}
	}
	var problems []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a Secret mount's ..data and friends
		}
		path := filepath.Join(t.Dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("read token file %s: %v", path, err))
			continue
		}
		if len(data) > MaxTokenFileBytes {
			problems = append(problems, fmt.Sprintf("token file %s: larger than %d bytes", path, MaxTokenFileBytes))
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") && len(line) < MinTokenLength {
				problems = append(problems, fmt.Sprintf("token file %s: line %d: token shorter than %d characters, ignored", path, i+1, MinTokenLength))
			}
		}
	}
	return problems
}
