package demo

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"stoker.dev/stoker/reconciler"
)

// Keys are a signed fleet's keys, generated under <Dir>/keys: the
// reviewer who signs config commits (the hub's trust root), the hub's
// signing key, and one report key per node.
type Keys struct {
	Dir string
	// Reviewer is the private key config commits are signed with;
	// TrustRoot the allowed_signers file the hub trusts it from.
	Reviewer, TrustRoot string
	// Hub is the hub's private key; HubPub its public key for the agents.
	Hub, HubPub string
	// nodes: node name → private key file; pubs its public key line.
	nodes map[string]string
	pubs  map[string]string
}

// EnableSigning generates the fleet's keys (reviewer, hub, one per node)
// and turns on the signed chain: Commit signs with the reviewer's key
// (the git CLI, gpg.format=ssh), the hub gets --trust-root, --sign-key and
// --require-signed-reports, agents --trust-hub-key and --sign-key. Call it
// before seeding and before starting processes; the node keys go to the
// config repo's node signers file with the first signed commit.
func (f *Fleet) EnableSigning(nodes ...string) (*Keys, error) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return nil, fmt.Errorf("enable signing: the git CLI signs commits with ssh-keygen (install openssh-client): %w", err)
	}
	k := &Keys{Dir: filepath.Join(f.Dir, "keys"), nodes: map[string]string{}, pubs: map[string]string{}}
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("enable signing: %w", err)
	}
	var err error
	var reviewerPub string
	if k.Reviewer, reviewerPub, err = genKey(k.Dir, "reviewer"); err != nil {
		return nil, err
	}
	k.TrustRoot = filepath.Join(k.Dir, "trust-root.allowed_signers")
	if err := os.WriteFile(k.TrustRoot, []byte("reviewer@demo.stoker "+reviewerPub+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("enable signing: %w", err)
	}
	if k.Hub, _, err = genKey(k.Dir, "hub"); err != nil {
		return nil, err
	}
	k.HubPub = k.Hub + ".pub"
	for _, n := range nodes {
		priv, pub, err := genKey(k.Dir, "node-"+n)
		if err != nil {
			return nil, err
		}
		k.nodes[n], k.pubs[n] = priv, pub
	}
	f.mu.Lock()
	f.keys = k
	f.mu.Unlock()
	return k, nil
}

// NodeSigners is the node signers file (principal = node name).
func (k *Keys) NodeSigners() string {
	names := make([]string, 0, len(k.pubs))
	for n := range k.pubs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# Report keys of the demo's nodes (principal = node name).\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, k.pubs[n])
	}
	return b.String()
}

// hubFlags are the hub's signing flags.
func (k *Keys) hubFlags() []string {
	if k == nil {
		return nil
	}
	return []string{"--trust-root", k.TrustRoot, "--sign-key", k.Hub, "--require-signed-reports"}
}

// agentFlags are node's signing flags.
func (k *Keys) agentFlags(node string) []string {
	if k == nil {
		return nil
	}
	out := []string{"--trust-hub-key", k.HubPub}
	if key, ok := k.nodes[node]; ok {
		out = append(out, "--sign-key", key)
	}
	return out
}

// signFiles adds the node signers file to a commit's files.
func (k *Keys) signFiles(files map[string]string) map[string]string {
	if k == nil {
		return files
	}
	out := map[string]string{reconciler.DefaultNodeSignersPath: k.NodeSigners()}
	for p, c := range files {
		out[p] = c
	}
	return out
}

// genKey writes an ed25519 key pair (OpenSSH format) as dir/name and
// dir/name.pub and returns the private key file and the public key line.
func genKey(dir, name string) (string, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate %s key: %w", name, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return "", "", fmt.Errorf("generate %s key: %w", name, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("generate %s key: %w", name, err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + name
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s key: %w", name, err)
	}
	if err := os.WriteFile(path+".pub", []byte(line+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("write %s key: %w", name, err)
	}
	return path, line, nil
}
