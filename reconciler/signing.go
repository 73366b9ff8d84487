package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/trust"
)

// Default in-repo trust files on the config branches.
const (
	// DefaultRepoSignersPath extends the hub's trust root (allowed_signers
	// format); every change to it must be signed by a key trusted at the
	// parent commit.
	DefaultRepoSignersPath = ".stoker/allowed_signers"
	// DefaultNodeSignersPath lists the nodes' report keys (allowed_signers,
	// principal = node name), guarded like the signers file.
	DefaultNodeSignersPath = ".stoker/node_signers"
	// TrustFile is the file on stoker/fleet naming what the hub refused.
	TrustFile = api.FleetTrustFile
)

// HubTrust is the hub's part of the signed chain. The zero value checks
// nothing and signs nothing (the hub signs through its status repository's
// gitsource.Options.Signer).
type HubTrust struct {
	// Source, when set, verifies every config-branch head before it is
	// rendered; a refused head leaves the last good render in place.
	Source *trust.Chain
	// HubKeys, when set, are the hub's own keys (the signing key plus the
	// previous one during a rotation): a stoker/status or stoker/fleet head
	// they did not sign is not built upon; the hub restores the newest
	// commit they signed and commits over the unverified one.
	HubKeys *trust.Set
	// RequireSignedReports ignores report commits not signed by the
	// node's key in NodeSignersPath at the verified default-branch head.
	RequireSignedReports bool
	NodeSignersPath      string
	// Refused counts refused commits by kind (source, status, fleet,
	// report); nil counts nothing.
	Refused *prometheus.CounterVec
}

// NewRefusedCounter registers stoker_hub_unverified_commits_total.
func NewRefusedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stoker_hub_unverified_commits_total",
		Help: "Commits the hub refused because their signature did not verify, by kind (source, status, fleet, report).",
	}, []string{"kind"})
	reg.MustRegister(c)
	return c
}

// Refusal is one refused commit, as written to stoker/fleet trust.yaml.
type Refusal = api.Refusal

// TrustReport is trust.yaml on stoker/fleet.
type TrustReport = api.FleetTrust

// trustState is what the hub remembers between reconciles.
type trustState struct {
	mu sync.Mutex
	// refused this reconcile, by key kind/branch-or-node.
	refused map[string]Refusal
	// counted remembers refusals already counted in the metric.
	counted map[string]bool
	// nodeSigners is the trusted node signers file of the last verified
	// default-branch head.
	nodeSigners *trust.Set
	// reportOK caches verified report commits for nodeSigners (reset when
	// it changes), so a large fleet's reports are checked once each.
	reportOK       map[string]bool
	nodeSignersRaw []byte
}

func (h *Hub) refuse(r Refusal) {
	t := &h.trust
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refused == nil {
		t.refused, t.counted = map[string]Refusal{}, map[string]bool{}
	}
	key := r.Kind + "/" + r.Branch + r.Node
	t.refused[key] = r
	if !t.counted[key+"@"+r.Commit] {
		t.counted[key+"@"+r.Commit] = true
		if c := h.cfg.Trust.Refused; c != nil {
			c.WithLabelValues(r.Kind).Inc()
		}
		h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(r.Commit), "action": "refuse"}).
			Warnf("refusing %s %s%s: %s", r.Kind, r.Branch, r.Node, r.Reason)
	}
}

// accept clears a refusal once its branch (or node) verifies again.
func (h *Hub) accept(kind, name string) {
	h.trust.mu.Lock()
	delete(h.trust.refused, kind+"/"+name)
	h.trust.mu.Unlock()
}

// verifySource checks a config-branch head. It returns nil when the head
// may be rendered, else the problems to show on stoker/fleet.
func (h *Hub) verifySource(ctx context.Context, branch, commit string) (api.Problems, error) {
	chain := h.cfg.Trust.Source
	if chain == nil {
		return nil, nil
	}
	hist, ok := h.cfg.Config.(interface{ History() trust.History })
	if !ok {
		return nil, errors.New("verify source: the config repository cannot show signatures")
	}
	v, err := chain.Verify(ctx, hist.History(), commit)
	if err != nil && !trust.IsRefused(err) {
		return nil, fmt.Errorf("verify %s at %s: %w", branch, fleetview.Short(commit), err)
	}
	if err != nil {
		h.refuse(Refusal{Kind: "source", Branch: branch, Commit: commit, Reason: err.Error()})
		return api.Problems{{Field: "signature", Commit: commit, Severity: api.SeverityError,
			Message: fmt.Sprintf("%s head not rendered: %v; keeping the last good render", branch, err)}}, nil
	}
	h.accept("source", branch)
	h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(commit)}).Debugf("%s verified: %s", branch, v.By)
	if branch == h.cfg.Branch && h.cfg.Trust.NodeSignersPath != "" {
		set := &trust.Set{}
		if data := v.Files[h.cfg.Trust.NodeSignersPath]; data != nil {
			// allowed_signers only: a bare .pub list would let any listed
			// key sign for every node.
			as, err := trust.ParseAllowedSigners(h.cfg.Trust.NodeSignersPath+"@"+fleetview.Short(commit), data)
			set = &trust.Set{SSH: as}
			if err != nil {
				return api.Problems{{File: h.cfg.Trust.NodeSignersPath, Commit: commit, Severity: api.SeverityError, Message: err.Error()}}, nil
			}
		}
		h.trust.mu.Lock()
		if h.trust.nodeSigners == nil || string(h.trust.nodeSignersRaw) != string(data(v, h.cfg.Trust.NodeSignersPath)) {
			h.trust.reportOK = nil
		}
		h.trust.nodeSigners = set
		h.trust.nodeSignersRaw = data(v, h.cfg.Trust.NodeSignersPath)
		h.trust.mu.Unlock()
	}
	return nil, nil
}

// trustedHubCommit returns the commit of branch (stoker/status or
// stoker/fleet) the hub may build on: head when one of the hub's keys
// signed it, else the newest first-parent ancestor they signed; superseded
// is set when head itself is not the hub's, so the next commit restores
// that tree over it. A branch the hub never signed (signing just turned
// on) is adopted once at its head.
func (h *Hub) trustedHubCommit(ctx context.Context, branch, head string) (commit string, superseded bool, err error) {
	keys := h.cfg.Trust.HubKeys
	if keys == nil || head == "" {
		return head, false, nil
	}
	hist, ok := h.cfg.Status.(interface{ History() trust.History })
	if !ok {
		return "", false, errors.New("verify hub branches: the status repository cannot show signatures")
	}
	kind := strings.TrimPrefix(branch, "stoker/")
	var headErr error
	cur := head
	for i := 0; i < trust.DefaultMaxDepth; i++ {
		c, err := hist.History().Commit(ctx, cur)
		if err != nil {
			return "", false, fmt.Errorf("verify %s at %s: %w", branch, fleetview.Short(cur), err)
		}
		_, verr := keys.Verify(c.Signed, "")
		switch {
		case verr == nil && cur == head:
			h.accept(kind, branch)
			return head, false, nil
		case verr == nil:
			h.refuse(Refusal{Kind: kind, Branch: branch, Commit: head,
				Reason: fmt.Sprintf("not signed by the hub (%v); superseded by a signed commit restoring %s", headErr, fleetview.Short(cur))})
			return cur, true, nil
		case cur == head:
			headErr = verr
		}
		if len(c.Parents) == 0 {
			h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(head)}).
				Warnf("%s has no commit signed by the hub yet; adopting its head and signing over it", branch)
			return head, true, nil
		}
		cur = c.Parents[0]
	}
	return "", false, fmt.Errorf("verify %s at %s: no hub-signed commit in %d commits", branch, fleetview.Short(head), trust.DefaultMaxDepth)
}

// verifyReport says whether a node's report commit may be used.
func (h *Hub) verifyReport(ctx context.Context, node, commit string) bool {
	if !h.cfg.Trust.RequireSignedReports {
		return true
	}
	h.trust.mu.Lock()
	signers := h.trust.nodeSigners
	cached := h.trust.reportOK[node+"@"+commit]
	h.trust.mu.Unlock()
	if cached {
		return true
	}
	reason := ""
	if hist, ok := h.cfg.Reports.(interface{ History() trust.History }); !ok {
		reason = "the reports repository cannot show signatures"
	} else if c, err := hist.History().Commit(ctx, commit); err != nil {
		reason = err.Error()
	} else if signers == nil {
		reason = "no verified node signers file yet"
	} else if _, err := signers.Verify(c.Signed, node); err != nil {
		reason = fmt.Sprintf("%v (node keys: %s)", err, h.cfg.Trust.NodeSignersPath)
	}
	if reason != "" {
		h.refuse(Refusal{Kind: "report", Node: node, Commit: commit, Reason: "report ignored: " + reason})
		return false
	}
	h.accept("report", node)
	h.trust.mu.Lock()
	if h.trust.reportOK == nil || len(h.trust.reportOK) > 1<<16 {
		h.trust.reportOK = map[string]bool{}
	}
	h.trust.reportOK[node+"@"+commit] = true
	h.trust.mu.Unlock()
	return true
}

// data returns a verdict's trusted content of path.
func data(v trust.Verdict, path string) []byte { return v.Files[path] }

// trustFiles adds trust.yaml (and a README section) to a stoker/fleet
// commit when signing is on.
func (h *Hub) trustFiles(files map[string][]byte) {
	t := h.cfg.Trust
	if t.Source == nil && t.HubKeys == nil && !t.RequireSignedReports {
		return
	}
	rep := TrustReport{}
	if t.Source != nil {
		rep.Source = "config heads verified against the hub's trust root"
		if t.Source.SignersPath != "" {
			rep.Source += " and " + t.Source.SignersPath
		}
	}
	h.trust.mu.Lock()
	for _, r := range h.trust.refused {
		rep.Refused = append(rep.Refused, r)
	}
	h.trust.mu.Unlock()
	sort.Slice(rep.Refused, func(i, j int) bool {
		a, b := rep.Refused[i], rep.Refused[j]
		return a.Kind+a.Branch+a.Node < b.Kind+b.Branch+b.Node
	})
	data, err := yaml.Marshal(rep)
	if err == nil {
		files[TrustFile] = data
	}
	if len(rep.Refused) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\n## Refused commits\n\n| kind | branch / node | commit | reason |\n|---|---|---|---|\n")
	for _, r := range rep.Refused {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Kind, r.Branch+r.Node, r.Commit, escapeCell(r.Reason))
	}
	files["README.md"] = append(files["README.md"], b.String()...)
}

func escapeCell(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }

// SigningOptions are the hub's signing flags.
type SigningOptions struct {
	// TrustRoots are files (allowed_signers, SSH .pub, OpenPGP keyring)
	// whose keys may sign config-branch heads; empty renders unsigned
	// heads as before.
	TrustRoots []string
	// RepoSignersPath extends the roots from the config repo
	// (DefaultRepoSignersPath; "-" = off).
	RepoSignersPath string
	// NodeSignersPath lists the nodes' report keys in the config repo
	// (DefaultNodeSignersPath; "-" = off).
	NodeSignersPath string
	// SignKeyFile is the hub's SSH private key: every stoker/status and
	// stoker/fleet commit is signed with it.
	SignKeyFile string
	// TrustHubKeys are earlier hub public keys still accepted on
	// stoker/status and stoker/fleet (the overlap of a key rotation).
	TrustHubKeys []string
	// RequireSignedReports ignores reports not signed by their node's key.
	RequireSignedReports bool
}

// load builds the hub's trust and signer from the options.
func (o SigningOptions) load(reg prometheus.Registerer, log logrus.FieldLogger) (HubTrust, gitsource.Signer, error) {
	var t HubTrust
	var signer gitsource.Signer
	orDefault := func(v, def string) string {
		switch v {
		case "":
			return def
		case "-":
			return ""
		}
		return v
	}
	if len(o.TrustRoots) > 0 {
		root, err := trust.LoadFiles(o.TrustRoots...)
		if err != nil {
			return t, nil, fmt.Errorf("hub: --trust-root: %w", err)
		}
		if root.Empty() {
			return t, nil, fmt.Errorf("hub: --trust-root %s: no keys", strings.Join(o.TrustRoots, ", "))
		}
		t.Source = &trust.Chain{Root: root, SignersPath: orDefault(o.RepoSignersPath, DefaultRepoSignersPath)}
		if p := orDefault(o.NodeSignersPath, DefaultNodeSignersPath); p != "" {
			t.NodeSignersPath = p
			t.Source.Guarded = []string{p}
		}
	}
	if o.RequireSignedReports && (t.Source == nil || t.NodeSignersPath == "") {
		return t, nil, errors.New("hub: --require-signed-reports needs --trust-root (node keys come from a verified config commit)")
	}
	t.RequireSignedReports = o.RequireSignedReports
	if o.SignKeyFile != "" {
		s, err := trust.LoadSSHSigner(o.SignKeyFile)
		if err != nil {
			return t, nil, fmt.Errorf("hub: --sign-key: %w", err)
		}
		signer = s
		keys := &trust.Set{SSH: &trust.AllowedSigners{Entries: []trust.Entry{{Principals: "*", Key: s.PublicKey(), Source: o.SignKeyFile}}}}
		if len(o.TrustHubKeys) > 0 {
			old, err := trust.LoadFiles(o.TrustHubKeys...)
			if err != nil {
				return t, nil, fmt.Errorf("hub: --trust-hub-key: %w", err)
			}
			keys = keys.Merge(old)
		}
		t.HubKeys = keys
		log.WithField("key", s.Fingerprint()).Info("signing stoker/status and stoker/fleet")
	} else if len(o.TrustHubKeys) > 0 {
		return t, nil, errors.New("hub: --trust-hub-key needs --sign-key")
	}
	if reg != nil && (t.Source != nil || t.HubKeys != nil) {
		t.Refused = NewRefusedCounter(reg)
	}
	return t, signer, nil
}

// previewSignature says whether a preview's head would be rendered as a
// branch head: "verified, ..." or "**unverified**: ..." ("" when source
// signing is off). Previews are never read by agents either way.
func (h *Hub) previewSignature(ctx context.Context, commit string) string {
	chain := h.cfg.Trust.Source
	if chain == nil {
		return ""
	}
	hist, ok := h.cfg.Config.(interface{ History() trust.History })
	if !ok {
		return "**unverified**: the config repository cannot show signatures"
	}
	v, err := chain.Verify(ctx, hist.History(), commit)
	var refused *trust.Refused
	switch {
	case errors.As(err, &refused):
		return "**unverified**: " + refused.Err.Error() + " (the hub would not render it)"
	case err != nil:
		return "**unverified**: " + err.Error()
	}
	return "verified, signed by " + v.By.String()
}
