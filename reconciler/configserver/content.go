package configserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	ign35 "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// Snapshot is what the config server reads of the hub: stoker/status as
// the hub last wrote or read it.
type Snapshot struct {
	// Commit is the stoker/status commit the snapshot was read from; the
	// seeded agent acts only on status heads that descend from it.
	Commit string
	Pools  map[string]api.PoolTarget
	// Labels are, per pool, the labels a node needs to be selected by the
	// pool's nodeSelector (its matchLabels and single-valued In/Exists
	// expressions).
	Labels map[string]map[string]string
	// Rendered holds rendered/<name>.json's bytes by name.
	Rendered map[string][]byte
}

// Credential is a read-only Git credential the agent gets: the agent flag
// it is passed with (git-token-file, git-password-file, git-ssh-key-file or
// git-known-hosts-file) and the file on the hub's disk holding it, read on
// every request. It lands on the node at /etc/stoker/<flag minus -file>.
type Credential struct {
	Flag    string
	HubFile string
}

// credentialFlags are the agent's credential flags a Credential may name.
var credentialFlags = map[string]bool{"git-token-file": true, "git-password-file": true, "git-ssh-key-file": true, "git-known-hosts-file": true}

// Join is what a new machine needs to join the fleet, besides its pool's
// rendered config: how its agent runs.
type Join struct {
	// RepoURL, StatusRepoURL and ReportsRepoURL are the agent's --repo,
	// --status-repo and --reports-repo, as the node reaches them.
	RepoURL, StatusRepoURL, ReportsRepoURL string
	// GitUsername is the agent's --git-username.
	GitUsername string
	Credentials []Credential
	// TrustHubKeys are files on the hub's disk with the hub public keys
	// the agent trusts (its --trust-hub-key), read on every request.
	TrustHubKeys []string
	// Binary is the stoker binary on the node (default /usr/local/bin/stoker);
	// the image provides it, the config does not carry it.
	Binary string
	// StateDir is the agent's --state-dir (default api.DefaultAgentStateDir).
	StateDir string
	// ExtraArgs are more agent flags, e.g. --drain kube.
	ExtraArgs []string
}

// Paths the joining config writes besides the rendered config's.
const (
	AgentUnit = "stoker-agent.service"
	etcDir    = "/etc/stoker"
	// maxHubFileBytes bounds a credential or key file read from the hub's disk.
	maxHubFileBytes = 64 << 10
	defaultBinary   = "/usr/local/bin/stoker"
)

// Validate checks j, naming the field of each problem.
func (j Join) Validate() error {
	var problems []string
	if j.RepoURL == "" {
		problems = append(problems, "agent repo: required")
	}
	seen := map[string]bool{}
	for i, c := range j.Credentials {
		if !credentialFlags[c.Flag] {
			problems = append(problems, fmt.Sprintf("agent credential %d: flag %q is none of git-token-file, git-password-file, git-ssh-key-file, git-known-hosts-file", i+1, c.Flag))
		}
		if seen[c.Flag] {
			problems = append(problems, fmt.Sprintf("agent credential %d: flag %s given twice", i+1, c.Flag))
		}
		seen[c.Flag] = true
		if c.HubFile == "" {
			problems = append(problems, fmt.Sprintf("agent credential %d (%s): no file", i+1, c.Flag))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("config server: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Built is a served config before encoding.
type Built struct {
	Config   ign35.Config
	Rendered string
	// Seeded is false when the agent state could not be seeded (see
	// NotSeeded): the agent then applies the rendered config itself.
	Seeded    bool
	NotSeeded string
}

// Build returns pool's first-boot config: its target rendered config from
// snap plus the agent's unit, flags, credentials, trusted keys and seeded
// state. ok is false when the pool or its rendered config is not in snap.
func Build(pool string, snap *Snapshot, j Join) (b Built, ok bool, err error) {
	target, found := snap.Pools[pool]
	if !found || target.Rendered == "" {
		return Built{}, false, nil
	}
	raw, found := snap.Rendered[target.Rendered]
	if !found {
		return Built{}, false, nil
	}
	r, err := api.ParseRendered(raw)
	if err != nil {
		return Built{}, true, fmt.Errorf("pool %s: %w", pool, err)
	}
	b = Built{Config: r.Config, Rendered: r.Name, Seeded: true}
	cfg := &b.Config
	stateDir := orDefault(j.StateDir, api.DefaultAgentStateDir)

	args := []string{"agent", "--repo", j.RepoURL, "--node", "%H", "--state-dir", stateDir}
	if j.StatusRepoURL != "" {
		args = append(args, "--status-repo", j.StatusRepoURL)
	}
	if j.ReportsRepoURL != "" {
		args = append(args, "--reports-repo", j.ReportsRepoURL)
	}
	if labels := snap.Labels[pool]; len(labels) > 0 {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + labels[k]
		}
		args = append(args, "--labels", strings.Join(keys, ","))
	}
	if j.GitUsername != "" {
		args = append(args, "--git-username", j.GitUsername)
	}
	var files []ign35.File
	for _, c := range j.Credentials {
		data, err := readHubFile(c.HubFile)
		if err != nil {
			return Built{}, true, fmt.Errorf("agent credential %s: %w", c.Flag, err)
		}
		p := path.Join(etcDir, strings.TrimSuffix(c.Flag, "-file"))
		files = append(files, dataFile(p, 0o600, data))
		args = append(args, "--"+c.Flag, p)
	}
	for i, k := range j.TrustHubKeys {
		data, err := readHubFile(k)
		if err != nil {
			return Built{}, true, fmt.Errorf("agent trust hub key: %w", err)
		}
		p := path.Join(etcDir, fmt.Sprintf("trust-hub-key-%d", i))
		files = append(files, dataFile(p, 0o644, data))
		args = append(args, "--trust-hub-key", p)
	}
	args = append(args, j.ExtraArgs...)

	// Ignition cannot change the OS image, kernel type or extensions (MCO's
	// firstboot service does, from the config it encapsulates): then the
	// agent is not told they are done, and applies the config itself.
	switch {
	case r.OSImageURL != "":
		b.Seeded, b.NotSeeded = false, "osImageURL is set"
	case r.KernelType != "" && r.KernelType != "default":
		b.Seeded, b.NotSeeded = false, "kernelType is "+r.KernelType
	case len(r.Extensions) > 0:
		b.Seeded, b.NotSeeded = false, "extensions are set"
	}
	// Kernel arguments are Ignition's own (its kargs stage).
	for _, ka := range r.KernelArguments {
		cfg.KernelArguments.ShouldExist = append(cfg.KernelArguments.ShouldExist, ign35.KernelArgument(ka))
	}
	if b.Seeded {
		seed, err := json.MarshalIndent(api.SeedState{Current: r.Name, StatusCommit: snap.Commit}, "", "  ")
		if err != nil {
			return Built{}, true, fmt.Errorf("encode agent state: %w", err)
		}
		files = append(files,
			dataFile(path.Join(stateDir, api.AgentStateFile), 0o600, append(seed, '\n')),
			dataFile(path.Join(stateDir, api.AgentConfigsDir, r.Name+".json"), 0o600, raw))
		cfg.Storage.Directories = append(cfg.Storage.Directories,
			dir(stateDir, 0o700), dir(path.Join(stateDir, api.AgentConfigsDir), 0o700))
	}
	cfg.Storage.Directories = append(cfg.Storage.Directories, dir(etcDir, 0o755))
	for _, f := range files {
		for _, have := range r.Config.Storage.Files {
			if have.Path == f.Path {
				return Built{}, true, fmt.Errorf("pool %s: rendered config %s writes %s, which joining the fleet needs", pool, r.Name, f.Path)
			}
		}
	}
	cfg.Storage.Files = append(cfg.Storage.Files, files...)
	for _, u := range r.Config.Systemd.Units {
		if u.Name == AgentUnit {
			return Built{}, true, fmt.Errorf("pool %s: rendered config %s has a unit %s, which joining the fleet needs", pool, r.Name, AgentUnit)
		}
	}
	unit := agentUnit(orDefault(j.Binary, defaultBinary), args)
	cfg.Systemd.Units = append(cfg.Systemd.Units, ign35.Unit{Name: AgentUnit, Enabled: boolp(true), Contents: &unit})
	return b, true, nil
}

// agentUnit is the agent's systemd unit running binary with args.
func agentUnit(binary string, args []string) string {
	quoted := make([]string, 0, len(args)+1)
	quoted = append(quoted, execQuote(binary, false))
	for _, a := range args {
		quoted = append(quoted, execQuote(a, a == "%H"))
	}
	return "[Unit]\n" +
		"Description=Stoker agent: keeps this machine at its pool's rendered config\n" +
		"Wants=network-online.target\n" +
		"After=network-online.target\n\n" +
		"[Service]\n" +
		"ExecStart=" + strings.Join(quoted, " ") + "\n" +
		"Restart=always\n" +
		"RestartSec=10\n\n" +
		"[Install]\n" +
		"WantedBy=multi-user.target\n"
}

// execQuote quotes s as one ExecStart argument: % is doubled (systemd's
// specifiers) unless specifier is set, quotes and backslashes escaped.
func execQuote(s string, specifier bool) string {
	if !specifier {
		s = strings.ReplaceAll(s, "%", "%%")
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

func readHubFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHubFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxHubFileBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", p, maxHubFileBytes)
	}
	return data, nil
}

func dataFile(p string, mode int, data []byte) ign35.File {
	src := "data:;base64," + base64.StdEncoding.EncodeToString(data)
	return ign35.File{
		Node:          ign35.Node{Path: p, Overwrite: boolp(true)},
		FileEmbedded1: ign35.FileEmbedded1{Mode: &mode, Contents: ign35.Resource{Source: &src}},
	}
}

func dir(p string, mode int) ign35.Directory {
	return ign35.Directory{Node: ign35.Node{Path: p}, DirectoryEmbedded1: ign35.DirectoryEmbedded1{Mode: &mode}}
}

func boolp(b bool) *bool { return &b }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
