package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespace is the sshsig namespace Git signs commits in.
const Namespace = "git"

// Errors callers branch on; every verification error wraps one of them.
var (
	// ErrUnsigned: the commit carries no signature.
	ErrUnsigned = errors.New("unsigned")
	// ErrUntrusted: the signature is well formed but its key is not trusted
	// (for that principal, namespace and time).
	ErrUntrusted = errors.New("signed by an untrusted key")
	// ErrBadSignature: the signature does not verify, or cannot be parsed.
	ErrBadSignature = errors.New("bad signature")
)

// Set is a trust root: SSH signers in allowed_signers form and OpenPGP
// public keys.
type Set struct {
	SSH *AllowedSigners
	PGP openpgp.EntityList
}

// Empty reports whether the set trusts no key at all.
func (s *Set) Empty() bool {
	return s == nil || ((s.SSH == nil || len(s.SSH.Entries) == 0) && len(s.PGP) == 0)
}

// Merge returns a set trusting what s and o trust.
func (s *Set) Merge(o *Set) *Set {
	out := &Set{}
	for _, x := range []*Set{s, o} {
		if x == nil {
			continue
		}
		out.SSH = out.SSH.Merge(x.SSH)
		out.PGP = append(append(openpgp.EntityList{}, out.PGP...), x.PGP...)
	}
	return out
}

// LoadFiles reads trust files into one Set. Each file is, by its content:
// an armored OpenPGP public keyring ("-----BEGIN PGP PUBLIC KEY BLOCK"),
// an allowed_signers file, or SSH public keys one a line ("ssh-ed25519
// AAAA... comment", as in a .pub file; such keys are trusted for any
// principal, principal "*").
func LoadFiles(paths ...string) (*Set, error) {
	out := &Set{}
	for _, p := range paths {
		data, err := readBounded(p)
		if err != nil {
			return nil, err
		}
		s, err := Parse(p, data)
		if err != nil {
			return nil, err
		}
		out = out.Merge(s)
	}
	return out, nil
}

// Parse reads one trust file's content (see LoadFiles); name is used in
// errors.
func Parse(name string, data []byte) (*Set, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("parse trust file %s: %d bytes, over the %d byte limit", name, len(data), MaxFileSize)
	}
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		kr, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse OpenPGP keyring %s: %w", name, err)
		}
		return &Set{PGP: kr}, nil
	}
	if isPublicKeyList(data) {
		var as AllowedSigners
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("parse ssh public key %s:%d: %w", name, i+1, err)
			}
			as.Entries = append(as.Entries, Entry{Principals: "*", Key: key, Source: fmt.Sprintf("%s:%d", name, i+1)})
		}
		return &Set{SSH: &as}, nil
	}
	as, err := ParseAllowedSigners(name, data)
	if err != nil {
		return nil, err
	}
	return &Set{SSH: as}, nil
}

// isPublicKeyList reports whether every non-comment line starts with a key
// type, as in a .pub or authorized_keys file without options.
func isPublicKeyList(data []byte) bool {
	seen := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, ok := parseKey(line); !ok {
			return false
		}
		seen = true
	}
	return seen
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read trust file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("read trust file %s: over the %d byte limit", path, MaxFileSize)
	}
	return data, nil
}

// Signed is what a Git object's signature covers: the armored signature
// (the gpgsig header) and the object encoded without it.
type Signed struct {
	Signature string
	Payload   []byte
	// When is the committer time; allowed_signers valid-after/valid-before
	// are checked against it, as `git verify-commit` does.
	When time.Time
}

// Verified says who signed.
type Verified struct {
	// Kind is "ssh" or "openpgp".
	Kind string
	// Key is the SSH key's SHA256 fingerprint or the OpenPGP primary key
	// fingerprint (hex).
	Key string
	// Signer names the signer: the matching allowed_signers principals and
	// source line, or the OpenPGP identity.
	Signer string
}

// String renders "ssh key SHA256:... (alice@example.com, trust.txt:3)".
func (v Verified) String() string {
	return fmt.Sprintf("%s key %s (%s)", v.Kind, v.Key, v.Signer)
}

// Verify checks sig against the set. principal, when not empty, must match
// the allowed_signers entry (node reports: principal = node name); OpenPGP
// keys have no principals and are refused when one is asked for.
func (s *Set) Verify(sig Signed, principal string) (Verified, error) {
	armored := strings.TrimSpace(sig.Signature)
	switch {
	case armored == "":
		return Verified{}, ErrUnsigned
	case strings.HasPrefix(armored, "-----BEGIN SSH SIGNATURE-----"):
		return s.verifySSH(armored, sig, principal)
	case strings.HasPrefix(armored, "-----BEGIN PGP SIGNATURE-----"):
		return s.verifyPGP(armored, sig, principal)
	}
	return Verified{}, fmt.Errorf("%w: unsupported signature format (want SSH or OpenPGP)", ErrBadSignature)
}

func (s *Set) verifySSH(armored string, sig Signed, principal string) (Verified, error) {
	parsed, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return Verified{}, fmt.Errorf("%w: parse ssh signature: %w", ErrBadSignature, err)
	}
	fp := ssh.FingerprintSHA256(parsed.PublicKey)
	if _, isCert := parsed.PublicKey.(*ssh.Certificate); isCert {
		return Verified{}, fmt.Errorf("%w: ssh certificate %s: certificate signers are not supported", ErrUntrusted, fp)
	}
	if parsed.Namespace != Namespace {
		return Verified{}, fmt.Errorf("%w: ssh signature namespace %q, want %q", ErrBadSignature, parsed.Namespace, Namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(sig.Payload), parsed, parsed.PublicKey, parsed.HashAlgorithm, Namespace); err != nil {
		return Verified{}, fmt.Errorf("%w: ssh key %s: %w", ErrBadSignature, fp, err)
	}
	var matches []Entry
	if s != nil {
		matches = s.SSH.Find(parsed.PublicKey, principal, Namespace, sig.When)
	}
	if len(matches) == 0 {
		who := ""
		if principal != "" {
			who = " for principal " + principal
		}
		return Verified{}, fmt.Errorf("%w: ssh key %s%s", ErrUntrusted, fp, who)
	}
	return Verified{Kind: "ssh", Key: fp, Signer: matches[0].Principals + ", " + matches[0].Source}, nil
}

func (s *Set) verifyPGP(armored string, sig Signed, principal string) (Verified, error) {
	var kr openpgp.EntityList
	if s != nil {
		kr = s.PGP
	}
	if principal != "" {
		return Verified{}, fmt.Errorf("%w: OpenPGP signature where an ssh key for principal %s is required", ErrUntrusted, principal)
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(kr, bytes.NewReader(sig.Payload), strings.NewReader(armored), nil)
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return Verified{}, fmt.Errorf("%w: OpenPGP key not in the trust root", ErrUntrusted)
		}
		return Verified{}, fmt.Errorf("%w: OpenPGP: %w", ErrBadSignature, err)
	}
	who := ""
	for name := range signer.Identities {
		if who == "" || name < who {
			who = name
		}
	}
	return Verified{Kind: "openpgp", Key: fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint), Signer: who}, nil
}
