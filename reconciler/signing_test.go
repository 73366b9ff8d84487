package reconciler

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/trust"
)

// sigKey is an ed25519 key made by ssh-keygen.
type sigKey struct{ priv, pub string }

func newSigKey(t *testing.T, name string) sigKey {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (openssh-client)")
	}
	k := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", k).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(k + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return sigKey{priv: k, pub: strings.TrimSpace(string(pub))}
}

type signedEnv struct {
	t       *testing.T
	log     bytes.Buffer // the hub's log
	srv     *gitserver.Server
	reg     *prometheus.Registry
	refused *prometheus.CounterVec
	hub     *Hub
	client  *gitsource.GoGit
	now     time.Time
}

// newHubWith builds a hub signing with sign and accepting hubKeys on its
// own branches, with the source chain rooted at root.
func (e *signedEnv) newHubWith(root string, sign sigKey, hubKeys ...sigKey) *Hub {
	e.t.Helper()
	signer, err := trust.LoadSSHSigner(sign.priv)
	if err != nil {
		e.t.Fatal(err)
	}
	repo, err := gitsource.Open(gitsource.Options{URL: e.srv.URL("config"), WorkDir: e.t.TempDir(), Signer: signer, FullHistory: true})
	if err != nil {
		e.t.Fatal(err)
	}
	rootSet, err := trust.Parse("root", []byte(root))
	if err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, k := range hubKeys {
		lines = append(lines, k.pub)
	}
	keys, err := trust.Parse("hub keys", []byte(strings.Join(lines, "\n")))
	if err != nil {
		e.t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(&e.log)
	return NewHub(HubConfig{Config: repo, Status: repo, Reports: repo, Now: func() time.Time { return e.now }, Log: log,
		Trust: HubTrust{
			Source:  &trust.Chain{Root: rootSet, SignersPath: DefaultRepoSignersPath, Guarded: []string{DefaultNodeSignersPath}},
			HubKeys: keys, RequireSignedReports: true, NodeSignersPath: DefaultNodeSignersPath, Refused: e.refused,
		}})
}

func (e *signedEnv) reconcile() Result {
	e.t.Helper()
	e.now = e.now.Add(time.Minute)
	res, err := e.hub.Reconcile(context.Background())
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (e *signedEnv) commit(branch string, files map[string]string, key string, remove ...string) string {
	e.t.Helper()
	c, err := gitserver.CommitFilesSigned(e.srv.Path("config"), branch, files, remove, "change", key)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *signedEnv) show(branch, path string) string {
	e.t.Helper()
	out, err := gitserver.Git(e.srv.Path("config"), nil, "show", branch+":"+path)
	if err != nil {
		return ""
	}
	return out
}

func (e *signedEnv) poolTarget() api.PoolTarget {
	e.t.Helper()
	var p api.PoolTarget
	mustYAML(e.t, e.show(api.StatusBranch, api.PoolFile("worker")), &p)
	return p
}

// verifyCommit runs `git verify-commit` against an allowed_signers file
// of keys.
func (e *signedEnv) verifyCommit(rev string, keys ...sigKey) error {
	e.t.Helper()
	var lines []string
	for _, k := range keys {
		lines = append(lines, "hub "+k.pub)
	}
	f := filepath.Join(e.t.TempDir(), "allowed")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	_, err := gitserver.Git(e.srv.Path("config"), []string{"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=gpg.ssh.allowedSignersFile", "GIT_CONFIG_VALUE_0=" + f}, "verify-commit", rev)
	return err
}

func (e *signedEnv) refusals() TrustReport {
	e.t.Helper()
	var r TrustReport
	mustYAML(e.t, e.show(api.FleetBranch, TrustFile), &r)
	return r
}

func (e *signedEnv) mustRefusal(kind, name, commit, reason string) {
	e.t.Helper()
	for _, r := range e.refusals().Refused {
		if r.Kind == kind && r.Branch+r.Node == name && r.Commit == commit && strings.Contains(r.Reason, reason) {
			if !strings.Contains(e.show(api.FleetBranch, "README.md"), commit) {
				e.t.Fatalf("fleet README does not name %s", commit)
			}
			if !strings.Contains(e.log.String(), "refusing "+kind+" "+name) || !strings.Contains(e.log.String(), reason) {
				e.t.Fatalf("hub log does not say it refused %s %s (%q):\n%s", kind, name, reason, e.log.String())
			}
			return
		}
	}
	e.t.Fatalf("stoker/fleet %s does not name %s %s %s with %q:\n%s", TrustFile, kind, name, commit, reason, e.show(api.FleetBranch, TrustFile))
}

// signedReport pushes node's report, signed with key (nil = unsigned).
func (e *signedEnv) signedReport(node string, key *sigKey) string {
	e.t.Helper()
	opts := gitsource.Options{URL: e.srv.URL("config"), WorkDir: e.t.TempDir()}
	if key != nil {
		s, err := trust.LoadSSHSigner(key.priv)
		if err != nil {
			e.t.Fatal(err)
		}
		opts.Signer = s
	}
	g, err := gitsource.Open(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := yaml.Marshal(api.Report{Node: node, State: api.StateDone, Heartbeat: e.now,
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""}})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := g.Commit(context.Background(), gitsource.CommitRequest{Branch: api.ReportsBranch(node),
		Changes: map[string][]byte{api.ReportFile: data}, Message: "report"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestHubSignedChain drives a hub on a real git daemon with commits signed
// by the git CLI: only heads signed by the trust root (or by a key the
// repo's signed allowed_signers adds) render; unsigned heads, heads signed
// by unknown keys and an allowed_signers change by an untrusted commit are
// refused, named on stoker/fleet and counted; a forged stoker/status head
// is superseded by a signed commit restoring the hub's state; unsigned
// reports are ignored; the hub's key rotates with an overlap.
func TestHubSignedChain(t *testing.T) {
	alice, bob, mallory := newSigKey(t, "alice"), newSigKey(t, "bob"), newSigKey(t, "mallory")
	hub1, hub2, node1 := newSigKey(t, "hub1"), newSigKey(t, "hub2"), newSigKey(t, "node-1")
	root := "alice@example.com " + alice.pub + "\n"
	e := &signedEnv{t: t, srv: gitserver.New(t, gitserver.Daemon), reg: prometheus.NewRegistry(), now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	e.refused = NewRefusedCounter(e.reg)
	if err := e.srv.Create("config"); err != nil {
		t.Fatal(err)
	}
	e.commit("main", map[string]string{
		"pools/worker.yaml":    workerPool(false, 1),
		"mc/50-a.yaml":         fileMC("50-a", "worker", "/etc/a", "one"),
		DefaultNodeSignersPath: "node-1 " + node1.pub + "\n",
		DefaultRepoSignersPath: "bob@example.com " + bob.pub + "\n",
	}, alice.priv)
	e.hub = e.newHubWith(root, hub1, hub1)

	// Happy path: rendered, and what the hub wrote is signed by hub1.
	e.reconcile()
	good := e.poolTarget().Rendered
	if good == "" {
		t.Fatal("nothing rendered from a signed head")
	}
	for _, b := range []string{api.StatusBranch, api.FleetBranch} {
		if err := e.verifyCommit(b, hub1); err != nil {
			t.Fatalf("%s not signed by the hub: %v", b, err)
		}
	}
	// Bob, added by the signed in-repo file, may sign.
	e.commit("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "two")}, bob.priv)
	e.reconcile()
	if e.poolTarget().Rendered == good {
		t.Fatal("bob's signed change did not render")
	}
	good = e.poolTarget().Rendered

	kept := func(what string) {
		t.Helper()
		if got := e.poolTarget().Rendered; got != good {
			t.Fatalf("%s: status moved to %s, want the last good %s", what, got, good)
		}
	}
	unsigned := e.commit("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "evil")}, "")
	e.reconcile()
	kept("unsigned head")
	e.mustRefusal("source", "main", unsigned, "unsigned")
	var pf api.PoolFleet
	mustYAML(t, e.show(api.FleetBranch, api.PoolFile("worker")), &pf)
	if len(pf.Errors) == 0 || pf.Errors[0].Commit != unsigned {
		t.Fatalf("fleet pool errors %+v do not name %s", pf.Errors, unsigned)
	}

	untrusted := e.commit("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "evil2")}, mallory.priv)
	e.reconcile()
	kept("untrusted key")
	e.mustRefusal("source", "main", untrusted, "signed by an untrusted key")

	selfAdded := e.commit("main", map[string]string{DefaultRepoSignersPath: "mallory@example.com " + mallory.pub + "\n"}, mallory.priv)
	e.reconcile()
	kept("signers changed by an untrusted key")
	e.mustRefusal("source", "main", selfAdded, "signed by an untrusted key")
	covered := e.commit("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "evil3")}, alice.priv)
	e.reconcile()
	kept("root-signed head over an untrusted signers change")
	e.mustRefusal("source", "main", covered, DefaultRepoSignersPath+" differs from its last trusted version")
	// Alice reviews the signers file back into shape: renders again.
	e.commit("main", map[string]string{DefaultRepoSignersPath: "bob@example.com " + bob.pub + "\n",
		"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "three")}, alice.priv)
	e.reconcile()
	if e.poolTarget().Rendered == good {
		t.Fatal("a root-signed fix did not render")
	}
	if got := float64(4); testutil.ToFloat64(e.refused.WithLabelValues("source")) != got {
		t.Fatalf("stoker_hub_unverified_commits_total{kind=source} = %v, want %v", testutil.ToFloat64(e.refused.WithLabelValues("source")), got)
	}
	if len(e.refusals().Refused) != 0 {
		t.Fatalf("refusals still listed after the branch verified: %+v", e.refusals())
	}

	// A forged status commit (someone with push access, not the hub).
	forged := e.commit(api.StatusBranch, map[string]string{"nodes/evil.yaml": "name: evil\npool: worker\ndesiredConfig: " + good + "\n"}, "")
	e.reconcile()
	if e.show(api.StatusBranch, "nodes/evil.yaml") != "" {
		t.Fatal("the forged node target survived the hub's next commit")
	}
	if err := e.verifyCommit(api.StatusBranch, hub1); err != nil {
		t.Fatalf("status head after a forged commit is not hub-signed: %v", err)
	}
	parent, err := gitserver.Git(e.srv.Path("config"), nil, "rev-parse", api.StatusBranch+"^")
	if err != nil || strings.TrimSpace(parent) != forged {
		t.Fatalf("the hub rewound instead of committing over the forged head: parent %s, want %s (%v)", parent, forged, err)
	}
	msg, _ := gitserver.Git(e.srv.Path("config"), nil, "log", "-1", "--format=%s", api.StatusBranch)
	if !strings.Contains(msg, "supersede unverified") {
		t.Fatalf("status commit message %q does not say it superseded the forged head", msg)
	}
	e.mustRefusal("status", api.StatusBranch, forged, "not signed by the hub")

	// Reports: node-1 signs with its listed key; node-2 is not listed.
	e.signedReport("node-1", &node1)
	n2 := e.signedReport("node-2", nil)
	e.reconcile()
	// Used: its heartbeat is on stoker/fleet (its Done with no config
	// applied yet is not shown as Done: see notManaged).
	if !strings.Contains(e.show(api.FleetBranch, api.NodeFile("node-1")), "lastReport:") {
		t.Fatalf("node-1's signed report not used:\n%s", e.show(api.FleetBranch, api.NodeFile("node-1")))
	}
	if e.show(api.FleetBranch, api.NodeFile("node-2")) != "" {
		t.Fatal("node-2's unsigned report was used")
	}
	e.mustRefusal("report", "node-2", n2, "report ignored: unsigned")

	// Rotation: the hub now signs with hub2 and still accepts hub1's head.
	e.hub = e.newHubWith(root, hub2, hub2, hub1)
	e.commit("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "four")}, alice.priv)
	before := testutil.ToFloat64(e.refused.WithLabelValues("status"))
	e.reconcile()
	if testutil.ToFloat64(e.refused.WithLabelValues("status")) != before {
		t.Fatal("the hub1-signed status head was refused during the overlap")
	}
	if err := e.verifyCommit(api.StatusBranch, hub2); err != nil {
		t.Fatalf("status not signed with the new key: %v", err)
	}
	if err := e.verifyCommit(api.StatusBranch, hub1); err == nil {
		t.Fatal("the hub signed with the old key after rotating")
	}

	// Previews of unreviewed branches say "unverified"; agents never read
	// them.
	e.hub.cfg.Previews = []string{"pr-*"}
	e.commit("pr-1", map[string]string{"pools/worker.yaml": workerPool(false, 1),
		"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "proposal")}, "")
	e.reconcile()
	if readme := e.show(api.PreviewBranchPrefix+"pr-1", "README.md"); !strings.Contains(readme, "**unverified**: unsigned") {
		t.Fatalf("preview README does not say unverified:\n%s", readme)
	}

	// stoker status verifies stoker/fleet and says with which key, and
	// lists what the hub refused.
	status := func(key sigKey) (string, error) {
		var out bytes.Buffer
		err := fleetview.RunStatus(context.Background(), fleetview.StatusOptions{RepoURL: e.srv.URL("config"),
			WorkDir: t.TempDir(), TrustHubKeys: []string{key.priv + ".pub"}, Out: &out})
		return out.String(), err
	}
	out, err := status(hub2)
	if err != nil || !strings.Contains(out, "verified, signed by the hub's ssh key SHA256:") || !strings.Contains(out, "refused report node-2") {
		t.Fatalf("stoker status with the hub's key: %v\n%s", err, out)
	}
	out, err = status(mallory)
	if err == nil || !strings.Contains(out, "UNVERIFIED: signed by an untrusted key") {
		t.Fatalf("stoker status with another key: %v\n%s", err, out)
	}
}

// TestHubSigningAdoptionAndSourceBranches: a hub that starts signing on a
// status branch it never signed adopts the head once and signs over it
// (no refusal); a pool's own source branch is verified like the default
// branch, and only that pool keeps its last good render.
func TestHubSigningAdoptionAndSourceBranches(t *testing.T) {
	alice, hub1 := newSigKey(t, "alice"), newSigKey(t, "hub1")
	e := &signedEnv{t: t, srv: gitserver.New(t, gitserver.Daemon), reg: prometheus.NewRegistry(), now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	e.refused = NewRefusedCounter(e.reg)
	if err := e.srv.Create("config"); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"pools/worker.yaml":        workerPool(false, 1),
		"pools/worker-canary.yaml": canaryPool,
		"mc/50-a.yaml":             fileMC("50-a", "worker", "/etc/a", "one"),
	}
	e.commit("main", files, alice.priv)
	e.commit("canary", files, alice.priv)
	// An unsigned hub ran first.
	plain, err := gitsource.Open(gitsource.Options{URL: e.srv.URL("config"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e.hub = NewHub(HubConfig{Config: plain, Status: plain, Reports: plain, Now: func() time.Time { return e.now }})
	e.reconcile()
	unsignedHead := e.srv.Head(t, "config", api.StatusBranch)
	if e.verifyCommit(api.StatusBranch, hub1) == nil {
		t.Fatal("the unsigned hub's commit verifies")
	}
	// Signing turned on.
	e.hub = e.newHubWith("alice@example.com "+alice.pub+"\n", hub1, hub1)
	e.reconcile()
	if err := e.verifyCommit(api.StatusBranch, hub1); err != nil {
		t.Fatalf("the signing hub did not sign over the adopted head: %v", err)
	}
	if parent, _ := gitserver.Git(e.srv.Path("config"), nil, "rev-parse", api.StatusBranch+"^"); strings.TrimSpace(parent) != unsignedHead {
		t.Fatalf("status parent %s, want the adopted head %s", parent, unsignedHead)
	}
	if n := testutil.ToFloat64(e.refused.WithLabelValues("status")); n != 0 {
		t.Fatalf("adoption counted %v refusals", n)
	}
	canary := func() string {
		var p api.PoolTarget
		mustYAML(t, e.show(api.StatusBranch, api.PoolFile("worker-canary")), &p)
		return p.Rendered
	}
	good, worker := canary(), e.poolTarget().Rendered
	bad := e.commit("canary", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "canary-unsigned")}, "")
	e.reconcile()
	if canary() != good || e.poolTarget().Rendered != worker {
		t.Fatalf("an unsigned canary head moved a pool: canary %s (was %s), worker %s (was %s)", canary(), good, e.poolTarget().Rendered, worker)
	}
	e.mustRefusal("source", "canary", bad, "unsigned")
	var pf api.PoolFleet
	mustYAML(t, e.show(api.FleetBranch, api.PoolFile("worker-canary")), &pf)
	if len(pf.Errors) == 0 || pf.Errors[0].Commit != bad {
		t.Fatalf("canary pool errors %+v do not name %s", pf.Errors, bad)
	}
	e.commit("canary", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a", "canary-signed")}, alice.priv)
	e.reconcile()
	if canary() == good {
		t.Fatal("a signed canary head did not render")
	}
}
