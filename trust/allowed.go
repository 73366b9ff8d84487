package trust

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxFileSize bounds every trust file (allowed_signers, public key,
// keyring) read from disk or from Git.
const MaxFileSize = 1 << 20

// Entry is one line of an allowed_signers file: who may sign (a pattern
// list of principals), in which namespaces, when, with which key.
type Entry struct {
	// Principals is the pattern-list as written ("alice@example.com",
	// "*@example.com,!bob@example.com", "node-1").
	Principals string
	// Namespaces is the namespaces= pattern-list; "" allows every
	// namespace.
	Namespaces string
	// ValidAfter and ValidBefore bound the signature time; zero is
	// unbounded.
	ValidAfter, ValidBefore time.Time
	Key                     ssh.PublicKey
	// Source is "file:line", for messages.
	Source string
}

// AllowedSigners is a parsed allowed_signers file (or several merged).
type AllowedSigners struct {
	Entries []Entry

	mu      sync.Mutex
	byKey   map[string][]int // wire-format key → entry indexes
	indexed int              // len(Entries) when byKey was built
}

// ParseAllowedSigners parses data in ssh-keygen's allowed_signers format
// (see ssh-keygen(1) "ALLOWED SIGNERS"): principals, optional options
// (namespaces=, valid-after=, valid-before=), key type, base64 key,
// optional comment. Empty lines and lines starting with '#' are skipped.
// Every bad line is reported with name and line number; a file with any
// bad line is refused whole. cert-authority lines are refused: Stoker does
// not verify certificate signatures.
func ParseAllowedSigners(name string, data []byte) (*AllowedSigners, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("parse allowed signers %s: %d bytes, over the %d byte limit", name, len(data), MaxFileSize)
	}
	var errs []error
	out := &AllowedSigners{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		src := fmt.Sprintf("%s:%d", name, i+1)
		s := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		e, err := parseEntry(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		e.Source = src
		out.Entries = append(out.Entries, e)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("parse allowed signers %s: %w", name, errors.Join(errs...))
	}
	return out, nil
}

func parseEntry(s string) (Entry, error) {
	var e Entry
	principals, rest, err := nextField(s)
	if err != nil {
		return e, fmt.Errorf("principals: %w", err)
	}
	if principals == "" || rest == "" {
		return e, errors.New("want: principals [options] keytype base64-key [comment]")
	}
	e.Principals = principals
	if key, ok := parseKey(rest); ok {
		e.Key = key
		return e, nil
	}
	opts, rest, err := nextField(rest)
	if err != nil {
		return e, fmt.Errorf("options: %w", err)
	}
	if err := parseOptions(opts, &e); err != nil {
		return e, err
	}
	key, ok := parseKey(rest)
	if !ok {
		return e, fmt.Errorf("key: %q is not a keytype and base64 public key", firstWords(rest, 2))
	}
	e.Key = key
	return e, nil
}

// nextField splits off the first space-separated field; double quotes
// protect spaces and are removed from a field that is wholly quoted.
func nextField(s string) (field, rest string, err error) {
	s = strings.TrimLeft(s, " \t")
	inQuote := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if !inQuote && (c == ' ' || c == '\t') {
			break
		}
	}
	if inQuote {
		return "", "", errors.New("unterminated quote")
	}
	field = s[:i]
	if len(field) >= 2 && field[0] == '"' && field[len(field)-1] == '"' && !strings.Contains(field[1:len(field)-1], `"`) {
		field = field[1 : len(field)-1]
	}
	return field, strings.TrimLeft(s[i:], " \t"), nil
}

func parseKey(s string) (ssh.PublicKey, bool) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return nil, false
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[0] + " " + f[1]))
	if err != nil {
		return nil, false
	}
	if key.Type() != f[0] {
		return nil, false
	}
	return key, true
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// parseOptions reads comma-separated options; commas inside quotes do not
// split.
func parseOptions(s string, e *Entry) error {
	var opts []string
	start, inQuote := 0, false
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] == '"' {
			inQuote = !inQuote
		}
		if i == len(s) || (s[i] == ',' && !inQuote) {
			opts = append(opts, s[start:i])
			start = i + 1
		}
	}
	for _, o := range opts {
		name, val, hasVal := strings.Cut(o, "=")
		if hasVal {
			// ssh-keygen wants option values in double quotes.
			if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' || strings.Contains(val[1:len(val)-1], `"`) {
				return fmt.Errorf("option %s: value must be in double quotes", name)
			}
			val = val[1 : len(val)-1]
		}
		switch strings.ToLower(name) {
		case "cert-authority":
			return errors.New("option cert-authority: certificate signers are not supported")
		case "namespaces":
			if !hasVal || val == "" {
				return errors.New("option namespaces: empty")
			}
			e.Namespaces = val
		case "valid-after", "valid-before":
			t, err := parseSSHTime(val)
			if err != nil {
				return fmt.Errorf("option %s: %w", name, err)
			}
			if strings.EqualFold(name, "valid-after") {
				e.ValidAfter = t
			} else {
				e.ValidBefore = t
			}
		default:
			return fmt.Errorf("option %q: unknown (want namespaces=, valid-after=, valid-before=)", o)
		}
	}
	return nil
}

// parseSSHTime reads YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: local time unless
// suffixed with Z, as ssh-keygen does.
func parseSSHTime(s string) (time.Time, error) {
	loc := time.Local
	v := s
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, v = time.UTC, v[:len(v)-1]
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp %q: want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", s)
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}

// Match reports whether principal matches the entry's principals pattern
// list: a negated pattern that matches refuses, otherwise any positive
// match accepts (ssh_config(5) PATTERNS).
func (e Entry) Match(principal string) bool { return matchList(principal, e.Principals) }

// allows reports whether the entry accepts key for principal ("" = any
// principal) in namespace at time at.
func (e Entry) allows(key ssh.PublicKey, principal, namespace string, at time.Time) bool {
	if !bytes.Equal(e.Key.Marshal(), key.Marshal()) {
		return false
	}
	return e.allowsMatched(principal, namespace, at)
}

// allowsMatched is allows for an entry whose key is known to match.
func (e Entry) allowsMatched(principal, namespace string, at time.Time) bool {
	if principal != "" && !e.Match(principal) {
		return false
	}
	if e.Namespaces != "" && !matchList(namespace, e.Namespaces) {
		return false
	}
	if !e.ValidAfter.IsZero() && at.Before(e.ValidAfter) {
		return false
	}
	if !e.ValidBefore.IsZero() && at.After(e.ValidBefore) {
		return false
	}
	return true
}

// Find returns the entries that accept key for principal ("" = any) in
// namespace at time at.
func (a *AllowedSigners) Find(key ssh.PublicKey, principal, namespace string, at time.Time) []Entry {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if a.byKey == nil || a.indexed != len(a.Entries) {
		a.byKey = map[string][]int{}
		for i, e := range a.Entries {
			k := string(e.Key.Marshal())
			a.byKey[k] = append(a.byKey[k], i)
		}
		a.indexed = len(a.Entries)
	}
	idx := a.byKey[string(key.Marshal())]
	a.mu.Unlock()
	var out []Entry
	for _, i := range idx {
		if e := a.Entries[i]; e.allowsMatched(principal, namespace, at) {
			out = append(out, e)
		}
	}
	return out
}

// Merge returns a new set holding a's entries then b's.
func (a *AllowedSigners) Merge(b *AllowedSigners) *AllowedSigners {
	out := &AllowedSigners{}
	if a != nil {
		out.Entries = append(out.Entries, a.Entries...)
	}
	if b != nil {
		out.Entries = append(out.Entries, b.Entries...)
	}
	return out
}

func matchList(s, list string) bool {
	positive := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern matches s against a pattern where '*' is any run of
// characters and '?' any one character.
func matchPattern(s, p string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], p) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		s, p = s[1:], p[1:]
	}
	return s == ""
}
