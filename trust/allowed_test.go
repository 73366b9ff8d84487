package trust_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/trust"
)

// sshKeygen generates an ed25519 key pair named name in dir and returns the
// private key path and the public key line.
func sshKeygen(t *testing.T, dir, name string) (string, string) { return sshKeygenB(t, dir, name) }

func sshKeygenB(t testing.TB, dir, name string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (openssh-client)")
	}
	key := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(pub))
}

func sshSignB(t testing.TB, key string, msg []byte) string { return sshSignNS(t, key, "git", msg) }

// sshSign signs msg with ssh-keygen -Y sign in namespace ns.
func sshSign(t *testing.T, key, ns string, msg []byte) string { return sshSignNS(t, key, ns, msg) }

func sshSignNS(t testing.TB, key, ns string, msg []byte) string {
	t.Helper()
	cmd := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", key)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v", err)
	}
	return string(out)
}

// keygenVerify asks ssh-keygen whether sig verifies for principal.
func keygenVerify(t *testing.T, dir, allowed, principal, sig string, msg []byte, at time.Time) bool {
	t.Helper()
	af := filepath.Join(dir, "allowed")
	sf := filepath.Join(dir, "sig")
	if err := os.WriteFile(af, []byte(allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sf, []byte(sig), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-n", "git", "-f", af, "-I", principal, "-s", sf,
		"-Overify-time="+at.UTC().Format("20060102150405")+"Z")
	cmd.Stdin = bytes.NewReader(msg)
	return cmd.Run() == nil
}

// TestAllowedSignersAgreesWithSSHKeygen checks the parser and the
// principal, namespace and validity matching against `ssh-keygen -Y
// verify` on the same files and signatures.
func TestAllowedSignersAgreesWithSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	alice, alicePub := sshKeygen(t, dir, "alice")
	_, bobPub := sshKeygen(t, dir, "bob")
	msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@x> 1 +0000\n\nmsg\n")
	sig := sshSign(t, alice, "git", msg)
	fileSig := sshSign(t, alice, "file", msg)
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	key := func(pub string) string { f := strings.Fields(pub); return f[0] + " " + f[1] }

	cases := []struct {
		name, allowed, principal string
		sig                      string
		want                     bool
	}{
		{"exact principal", "alice@example.com " + alicePub, "alice@example.com", sig, true},
		{"wrong principal", "alice@example.com " + alicePub, "bob@example.com", sig, false},
		{"other key", "alice@example.com " + bobPub, "alice@example.com", sig, false},
		{"second line matches", "bob@example.com " + bobPub + "\n# comment\n\nalice@example.com " + key(alicePub), "alice@example.com", sig, true},
		{"wildcard", "*@example.com " + alicePub, "alice@example.com", sig, true},
		{"question mark", "alic?@example.com " + alicePub, "alice@example.com", sig, true},
		{"negated", "*@example.com,!alice@example.com " + alicePub, "alice@example.com", sig, false},
		{"principal list", "bob@x,alice@example.com " + alicePub, "alice@example.com", sig, true},
		{"namespace git", `alice@example.com namespaces="git" ` + alicePub, "alice@example.com", sig, true},
		{"namespace list", `alice@example.com namespaces="file,git" ` + alicePub, "alice@example.com", sig, true},
		{"namespace file only", `alice@example.com namespaces="file" ` + alicePub, "alice@example.com", sig, false},
		{"signed in file namespace", "alice@example.com " + alicePub, "alice@example.com", fileSig, false},
		{"valid-before past", `alice@example.com valid-before="20260101Z" ` + alicePub, "alice@example.com", sig, false},
		{"valid-before future", `alice@example.com valid-before="20270101Z" ` + alicePub, "alice@example.com", sig, true},
		{"valid-after future", `alice@example.com valid-after="202607011200Z" ` + alicePub, "alice@example.com", sig, false},
		{"valid-after past", `alice@example.com valid-after="20260501000000Z" ` + alicePub, "alice@example.com", sig, true},
		{"option keyword case", `alice@example.com NAMESPACES="git",Valid-Before="20270101Z" ` + alicePub, "alice@example.com", sig, true},
		{"quoted principals", `"alice@example.com" ` + alicePub, "alice@example.com", sig, true},
		{"tabs", "alice@example.com\t" + key(alicePub) + "\tcomment words", "alice@example.com", sig, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keygen := keygenVerify(t, dir, tc.allowed+"\n", tc.principal, tc.sig, msg, at)
			if keygen != tc.want {
				t.Fatalf("ssh-keygen -Y verify says %v, the case expects %v: fix the case", keygen, tc.want)
			}
			set, err := trust.Parse("allowed", []byte(tc.allowed+"\n"))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = set.Verify(trust.Signed{Signature: tc.sig, Payload: msg, When: at}, tc.principal)
			if got := err == nil; got != keygen {
				t.Fatalf("trust.Verify = %v (err %v); ssh-keygen -Y verify = %v", got, err, keygen)
			}
		})
	}
}

// TestParseAllowedSignersErrors: a bad line names file and line, and the
// whole file is refused.
func TestParseAllowedSignersErrors(t *testing.T) {
	dir := t.TempDir()
	_, pub := sshKeygen(t, dir, "k")
	cases := map[string]string{
		"unknown option":  "a@x no-touch-required " + pub,
		"cert-authority":  "*@x cert-authority " + pub,
		"no key":          "a@x",
		"garbage key":     "a@x ssh-ed25519 AAAAnotbase64!!",
		"bad time":        `a@x valid-after="2026" ` + pub,
		"open quote":      `a@x namespaces="git ` + pub,
		"empty namespace": `a@x namespaces="" ` + pub,
		"unquoted value":  `a@x valid-after=20260101Z ` + pub, // ssh-keygen: missing start quote
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := trust.ParseAllowedSigners("signers.txt", []byte("# ok\nok@x "+pub+"\n"+line+"\n"))
			if err == nil || !strings.Contains(err.Error(), "signers.txt:3") {
				t.Fatalf("want an error naming signers.txt:3, got %v", err)
			}
		})
	}
	big := bytes.Repeat([]byte("#"), trust.MaxFileSize+1)
	if _, err := trust.ParseAllowedSigners("big", big); err == nil {
		t.Fatal("a file over the limit parsed")
	}
}

// TestVerifyErrors: unsigned, bad and untrusted signatures wrap the
// sentinel callers branch on.
func TestVerifyErrors(t *testing.T) {
	dir := t.TempDir()
	alice, alicePub := sshKeygen(t, dir, "alice")
	_, bobPub := sshKeygen(t, dir, "bob")
	msg := []byte("payload\n")
	sig := sshSign(t, alice, "git", msg)
	aliceSet, err := trust.Parse("alice.pub", []byte(alicePub+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	bobSet, err := trust.Parse("bob.pub", []byte(bobPub+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if v, err := aliceSet.Verify(trust.Signed{Signature: sig, Payload: msg, When: now}, ""); err != nil || v.Kind != "ssh" {
		t.Fatalf("alice's own key: %v %v", v, err)
	}
	for name, tc := range map[string]struct {
		set  *trust.Set
		sig  trust.Signed
		want error
	}{
		"unsigned":  {aliceSet, trust.Signed{Payload: msg}, trust.ErrUnsigned},
		"tampered":  {aliceSet, trust.Signed{Signature: sig, Payload: []byte("payload!\n"), When: now}, trust.ErrBadSignature},
		"untrusted": {bobSet, trust.Signed{Signature: sig, Payload: msg, When: now}, trust.ErrUntrusted},
		"garbage":   {aliceSet, trust.Signed{Signature: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", Payload: msg}, trust.ErrBadSignature},
		"x509":      {aliceSet, trust.Signed{Signature: "-----BEGIN SIGNED MESSAGE-----\n", Payload: msg}, trust.ErrBadSignature},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.set.Verify(tc.sig, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
