package trust

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// SSHSigner signs Git objects with an SSH private key (sshsig, namespace
// "git", SHA-512), as `git -c gpg.format=ssh commit -S` does. It
// satisfies go-git's Signer interface.
type SSHSigner struct {
	signer ssh.Signer
}

// LoadSSHSigner reads an unencrypted OpenSSH or PEM private key.
func LoadSSHSigner(path string) (*SSHSigner, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", path, err)
	}
	return &SSHSigner{signer: s}, nil
}

// NewSSHSigner wraps an ssh.Signer.
func NewSSHSigner(s ssh.Signer) *SSHSigner { return &SSHSigner{signer: s} }

// Sign returns the armored signature of message.
func (s *SSHSigner) Sign(message io.Reader) ([]byte, error) {
	sig, err := sshsig.SignWithRand(message, rand.Reader, s.signer, sshsig.HashSHA512, Namespace)
	if err != nil {
		return nil, fmt.Errorf("ssh sign: %w", err)
	}
	return sshsig.Armor(sig), nil
}

// PublicKey returns the signing key's public half.
func (s *SSHSigner) PublicKey() ssh.PublicKey { return s.signer.PublicKey() }

// Fingerprint returns the key's SHA256 fingerprint.
func (s *SSHSigner) Fingerprint() string { return ssh.FingerprintSHA256(s.signer.PublicKey()) }
