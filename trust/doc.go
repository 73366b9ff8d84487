// Package trust owns Stoker's signature checks: parsing ssh-keygen's
// allowed_signers format, loading trust roots (allowed_signers files, SSH
// public keys, OpenPGP keyrings), verifying the SSH (sshsig, namespace
// "git") and OpenPGP signatures Git puts on commits, signing with an SSH
// key, and walking a branch's first-parent history so that an in-repo
// allowed-signers file only counts when every change to it was signed by a
// key trusted at its parent commit.
//
// The cryptography is the libraries' (golang.org/x/crypto/ssh,
// github.com/hiddeco/sshsig, github.com/ProtonMail/go-crypto); only the
// allowed_signers parser is ours, checked against `ssh-keygen -Y verify`.
// It knows nothing of Git transport or of what the files mean: callers hand
// it commits through the History interface. It must not import any other
// package of ours.
package trust
