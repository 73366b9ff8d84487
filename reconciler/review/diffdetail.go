package review

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/vincent-petithory/dataurl"
	"golang.org/x/crypto/ssh"

	"stoker.dev/stoker/api"
)

// maxDiffInput is the largest content, per side, that gets a line diff;
// larger files are summarised by size and digest (the diff is quadratic in
// the worst case and no reviewer reads it).
const maxDiffInput = 256 << 10

// Secret-looking paths and contents are never printed, only summarised:
// a PR comment is public to everyone who can read the repo, and so is CI's
// log.
var (
	secretPath    = regexp.MustCompile(`(?i)(\.(pem|key|crt|cer|der|p12|pfx|jks|keystore)$|passw|token|secret|credential|/pki/|/ssl/|/tls/|id_rsa|id_ed25519|id_ecdsa|auth\.json|pull-secret|kubeconfig|\.htpasswd)`)
	secretContent = regexp.MustCompile(`(?i)(-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|CERTIFICATE)|passw(or)?d|token|secret|api[_-]?key|credential|bearer )`)
)

// addDetail fills cd's Diff and Details from the two rendered configs.
func addDetail(cd *ChangeDiff, from, to *api.Rendered) {
	if from == nil {
		from = &api.Rendered{}
	}
	switch cd.Kind {
	case api.ChangeFile:
		f, inF := findFile(from, cd.Path)
		t, inT := findFile(to, cd.Path)
		hookDetail(cd, t, inT)
		fileDetail(cd, f, inF, t, inT)
	case api.ChangeUnit:
		f, _ := findUnit(from, cd.Name)
		t, _ := findUnit(to, cd.Name)
		cd.Diff = textDiff(cd.Name, deref(f.Contents), deref(t.Contents))
	case api.ChangeDropin:
		unit, dropin, _ := strings.Cut(cd.Name, "/")
		f, _ := findUnit(from, unit)
		t, _ := findUnit(to, unit)
		cd.Diff = textDiff(cd.Name, deref(findDropin(f, dropin).Contents), deref(findDropin(t, dropin).Contents))
	case api.ChangeSSHKey:
		added, removed := keyDelta(api.SSHKeys(from, api.DefaultCoreUser), api.SSHKeys(to, api.DefaultCoreUser))
		for _, k := range added {
			cd.Details = append(cd.Details, "+ "+fingerprint(k))
		}
		for _, k := range removed {
			cd.Details = append(cd.Details, "- "+fingerprint(k))
		}
	case api.ChangeKargs:
		add, remove := api.KernelArgsDiff(from, to)
		for _, a := range add {
			cd.Details = append(cd.Details, "+ "+a)
		}
		for _, a := range remove {
			cd.Details = append(cd.Details, "- "+a)
		}
	case api.ChangeKernelType:
		cd.Details = append(cd.Details, fmt.Sprintf("kernelType %s → %s", orDefaultKT(from.KernelType), orDefaultKT(to.KernelType)))
	case api.ChangeOSImage:
		cd.Details = append(cd.Details, fmt.Sprintf("osImageURL %s → %s", orNone(from.OSImageURL), orNone(to.OSImageURL)))
	case api.ChangeDirectory:
		f, inF := findDir(from, cd.Path)
		t, inT := findDir(to, cd.Path)
		if inF && inT {
			if m, n := modeString(f.Mode), modeString(t.Mode); m != n {
				cd.Details = append(cd.Details, fmt.Sprintf("mode %s → %s", m, n))
			}
			if o, n := ownerString(f.Node), ownerString(t.Node); o != n {
				cd.Details = append(cd.Details, fmt.Sprintf("owner %s → %s", o, n))
			}
		}
	case api.ChangeLink:
		f, _ := findLink(from, cd.Path)
		t, _ := findLink(to, cd.Path)
		if a, b := deref(f.Target), deref(t.Target); a != b {
			cd.Details = append(cd.Details, fmt.Sprintf("target %s → %s", orNone(a), orNone(b)))
		}
	case api.ChangeExtensions:
		cd.Details = append(cd.Details, fmt.Sprintf("extensions [%s] → [%s]", strings.Join(from.Extensions, " "), strings.Join(to.Extensions, " ")))
	}
}

// hookDetail names a file that is a node lifecycle hook (a Stoker
// addition), when its hooks run, and a mode the agent will not run.
func hookDetail(cd *ChangeDiff, t ign3types.File, inT bool) {
	point := api.HookPointOf(cd.Path)
	if point == "" {
		return
	}
	cd.Details = append(cd.Details, "Stoker lifecycle hook "+point+" (MCO has none): "+api.HookWhen(point)+"; it gates the updates after the one that writes it")
	if !inT || t.Mode == nil {
		return
	}
	switch m := *t.Mode; {
	case m&0o022 != 0:
		cd.Details = append(cd.Details, fmt.Sprintf("mode %04o is writable by group or others: the agent refuses this hook, and every %s fails until it is fixed", m, point))
	case m&0o111 == 0:
		cd.Details = append(cd.Details, fmt.Sprintf("mode %04o is not executable: the agent skips this hook", m))
	}
}

func orDefaultKT(s string) string {
	if s == "" {
		return api.KernelTypeDefault
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func fileDetail(cd *ChangeDiff, f ign3types.File, inF bool, t ign3types.File, inT bool) {
	var old, cur []byte
	var oldErr, curErr error
	if inF {
		old, oldErr = decodeContents(f.Contents)
	}
	if inT {
		cur, curErr = decodeContents(t.Contents)
	}
	if inF && inT {
		if m, n := modeString(f.Mode), modeString(t.Mode); m != n {
			cd.Details = append(cd.Details, fmt.Sprintf("mode %s → %s", m, n))
		}
		if o, n := ownerString(f.Node), ownerString(t.Node); o != n {
			cd.Details = append(cd.Details, fmt.Sprintf("owner %s → %s", o, n))
		}
	}
	for _, e := range []error{oldErr, curErr} {
		if e != nil {
			cd.Details = append(cd.Details, "contents not shown: "+e.Error())
			return
		}
	}
	if bytes.Equal(old, cur) {
		return
	}
	hide := ""
	switch {
	case secretPath.MatchString(cd.Path) || secretContent.Match(old) || secretContent.Match(cur):
		hide = "secret-looking"
	case !printable(old) || !printable(cur):
		hide = "binary"
	case len(old) > maxDiffInput || len(cur) > maxDiffInput:
		hide = "large"
	}
	if hide != "" {
		cd.Details = append(cd.Details, fmt.Sprintf("contents not shown (%s): %s → %s", hide, digest(old, inF), digest(cur, inT)))
		return
	}
	cd.Diff = textDiff(cd.Path, string(old), string(cur))
}

// digest describes content by size and sha256, never by content.
func digest(b []byte, present bool) string {
	if !present {
		return "(absent)"
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes sha256:%s", len(b), hex.EncodeToString(sum[:])[:12])
}

func printable(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// decodeContents decodes a file's data: URL (optionally gzip-compressed);
// rendered configs hold nothing else (validation refuses remote sources).
func decodeContents(r ign3types.Resource) ([]byte, error) {
	if r.Source == nil || *r.Source == "" {
		return nil, nil
	}
	du, err := dataurl.DecodeString(*r.Source)
	if err != nil {
		return nil, fmt.Errorf("bad data URL: %w", err)
	}
	data := du.Data
	if r.Compression != nil && *r.Compression == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, 16<<20))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
	}
	return data, nil
}

func modeString(m *int) string {
	if m == nil {
		return "default"
	}
	return fmt.Sprintf("%04o", *m)
}

func ownerString(n ign3types.Node) string {
	part := func(id *int, name *string) string {
		switch {
		case name != nil && *name != "":
			return *name
		case id != nil:
			return fmt.Sprint(*id)
		}
		return "root"
	}
	return part(n.User.ID, n.User.Name) + ":" + part(n.Group.ID, n.Group.Name)
}

// textDiff is a unified diff of two texts with three lines of context;
// empty when they are equal.
func textDiff(name, a, b string) string {
	if a == b {
		return ""
	}
	if len(a) > maxDiffInput || len(b) > maxDiffInput {
		return ""
	}
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(a), B: splitLines(b),
		FromFile: "a" + slashPrefix(name), ToFile: "b" + slashPrefix(name), Context: 3,
	})
	if err != nil {
		return ""
	}
	return out
}

// splitLines splits s after each newline, as difflib wants, without
// difflib.SplitLines' phantom empty last line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += "\n"
	}
	return lines
}

func slashPrefix(s string) string {
	if strings.HasPrefix(s, "/") {
		return s
	}
	return "/" + s
}

// capDiff cuts a diff at max bytes on a line boundary and says how much
// was left out.
func capDiff(d string, max int) string {
	if max <= 0 || len(d) <= max {
		return d
	}
	cut := strings.LastIndexByte(d[:max], '\n') + 1
	rest := strings.Count(d[cut:], "\n")
	return d[:cut] + fmt.Sprintf("… %d more line(s) not shown\n", rest)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func findFile(r *api.Rendered, p string) (ign3types.File, bool) {
	for _, f := range r.Config.Storage.Files {
		if f.Path == p {
			return f, true
		}
	}
	return ign3types.File{}, false
}

func findUnit(r *api.Rendered, name string) (ign3types.Unit, bool) {
	for _, u := range r.Config.Systemd.Units {
		if u.Name == name {
			return u, true
		}
	}
	return ign3types.Unit{}, false
}

func findDropin(u ign3types.Unit, name string) ign3types.Dropin {
	for _, d := range u.Dropins {
		if d.Name == name {
			return d
		}
	}
	return ign3types.Dropin{}
}

func keyDelta(from, to []string) (added, removed []string) {
	in := func(list []string, k string) bool {
		for _, x := range list {
			if x == k {
				return true
			}
		}
		return false
	}
	for _, k := range to {
		if !in(from, k) {
			added = append(added, k)
		}
	}
	for _, k := range from {
		if !in(to, k) {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// fingerprint names an authorized key as ssh-keygen -l does: the SHA256
// fingerprint, the comment and the type. The key itself is never printed.
func fingerprint(line string) string {
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		sum := sha256.Sum256([]byte(line))
		return "unparsable key (line sha256:" + hex.EncodeToString(sum[:])[:12] + ")"
	}
	s := ssh.FingerprintSHA256(pub)
	if comment != "" {
		s += " " + comment
	}
	return s + " (" + strings.ToUpper(strings.TrimPrefix(pub.Type(), "ssh-")) + ")"
}

func findDir(r *api.Rendered, p string) (ign3types.Directory, bool) {
	for _, d := range r.Config.Storage.Directories {
		if d.Path == p {
			return d, true
		}
	}
	return ign3types.Directory{}, false
}

func findLink(r *api.Rendered, p string) (ign3types.Link, bool) {
	for _, l := range r.Config.Storage.Links {
		if l.Path == p {
			return l, true
		}
	}
	return ign3types.Link{}, false
}
