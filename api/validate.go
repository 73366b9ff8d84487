package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/coreos/ignition/v2/config/validate"
	"github.com/coreos/vcontext/report"
)

// MaxRenderedBytes is MCO's limit on a rendered MachineConfig: an object
// larger than this does not fit in etcd with its annotations, and Stoker keeps
// the same limit so a repo that works here works on OpenShift.
const MaxRenderedBytes = 1536 * 1024

// DefaultAllowedPrefixes are the directories a MachineConfig may write
// under: /etc and /var, plus the places real manifests write that RHCOS keeps
// writable (through symlinks into /var).
var DefaultAllowedPrefixes = []string{"/etc", "/var", "/usr/local", "/opt", "/root", "/home", "/srv", "/tmp"}

// forbiddenPrefixes are never writable, whatever AllowedPrefixes says: they
// belong to the OS image or are kernel interfaces. /usr/local is the one
// exception carved out of /usr.
var forbiddenPrefixes = []string{"/usr", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys", "/dev"}

// Kernel types MCO knows.
const (
	KernelTypeDefault  = "default"
	KernelTypeRealtime = "realtime"
	KernelType64kPages = "64k-pages"
)

// ValidationOptions tune what a node accepts.
type ValidationOptions struct {
	// AllowedPrefixes are the directories files, directories and links
	// may live under (never one of them itself).
	AllowedPrefixes []string
	// CoreUser is the one user a config may touch (ssh keys, password).
	CoreUser string
	// MaxRenderedBytes caps the encoded rendered config; 0 means no cap.
	MaxRenderedBytes int
	// MaxFileBytes caps one file's decompressed contents, MaxConfigBytes
	// all files' together; 0 means DefaultMaxFileBytes and
	// DefaultMaxConfigBytes.
	MaxFileBytes   int64
	MaxConfigBytes int64
	// Sizes, when set, remembers the decoded size of every data URL
	// checked (keyed by the source and compression pointers Ignition's
	// merge carries along), so checking a merged config does not decode
	// again what its MachineConfigs' checks decoded.
	Sizes SizeCache
}

// DefaultValidationOptions returns the options Stoker uses unless told
// otherwise: DefaultAllowedPrefixes, user core, MCO's 1.5 MiB limit.
func DefaultValidationOptions() ValidationOptions {
	return ValidationOptions{
		AllowedPrefixes:  append([]string(nil), DefaultAllowedPrefixes...),
		CoreUser:         DefaultCoreUser,
		MaxRenderedBytes: MaxRenderedBytes,
	}
}

func (o ValidationOptions) withDefaults() ValidationOptions {
	if o.AllowedPrefixes == nil {
		o.AllowedPrefixes = DefaultAllowedPrefixes
	}
	if o.CoreUser == "" {
		o.CoreUser = DefaultCoreUser
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxConfigBytes <= 0 {
		o.MaxConfigBytes = DefaultMaxConfigBytes
	}
	return o
}

// problemf appends an error problem at field.
func problemf(ps *Problems, field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

func idx(field, list string, i int) string {
	return field + "." + list + "[" + strconv.Itoa(i) + "]"
}

// ValidateIgnition checks one Ignition config for what a running node cannot
// reconcile: sections that only make sense on first boot (disks, partitions,
// filesystems, raid, luks, groups, Ignition kernel arguments), users other
// than the core user, file append, remote sources, bad data URLs, paths
// outside the allowed prefixes, unit names escaping /etc/systemd/system, and
// modes above 0777. field prefixes every Problem's field path (e.g.
// "spec.config"). It does not run Ignition's own validation; see
// IgnitionProblems for that.
func ValidateIgnition(cfg ign3types.Config, field string, opts ValidationOptions) Problems {
	opts = opts.withDefaults()
	var ps Problems
	f := func(rest string) string {
		if field == "" {
			return rest
		}
		return field + "." + rest
	}

	// Ignition section: only data: URLs may be merged in; a node never
	// fetches config from elsewhere.
	for i, r := range cfg.Ignition.Config.Merge {
		checkResource(&ps, idx(f("ignition.config"), "merge", i), r, opts.MaxFileBytes)
	}
	if cfg.Ignition.Config.Replace.Source != nil {
		checkResource(&ps, f("ignition.config.replace"), cfg.Ignition.Config.Replace, opts.MaxFileBytes)
	}
	for i, r := range cfg.Ignition.Security.TLS.CertificateAuthorities {
		checkResource(&ps, idx(f("ignition.security.tls"), "certificateAuthorities", i), r, opts.MaxFileBytes)
	}
	if len(cfg.KernelArguments.ShouldExist) > 0 || len(cfg.KernelArguments.ShouldNotExist) > 0 {
		// MCO renders them (and refuses any change to them on a running
		// node, isConfigReconcilable); a node never applies them.
		ps = append(ps, Problem{Field: f("kernelArguments"), Severity: SeverityWarning,
			Message: "Ignition kernelArguments are kept in the rendered config but never applied on a running node, and a change to them is unreconcilable (as in MCO); use the MachineConfig's spec.kernelArguments"})
	}

	// Storage: only files, directories and links.
	s := cfg.Storage
	for i := range s.Disks {
		problemf(&ps, idx(f("storage"), "disks", i), "disks cannot be changed on a running node")
		for j := range s.Disks[i].Partitions {
			problemf(&ps, idx(idx(f("storage"), "disks", i), "partitions", j), "partitions cannot be changed on a running node")
		}
	}
	for i := range s.Filesystems {
		problemf(&ps, idx(f("storage"), "filesystems", i), "filesystems cannot be changed on a running node")
	}
	for i := range s.Raid {
		problemf(&ps, idx(f("storage"), "raid", i), "raid arrays cannot be changed on a running node")
	}
	for i := range s.Luks {
		problemf(&ps, idx(f("storage"), "luks", i), "luks volumes cannot be changed on a running node")
	}
	var total int64
	for i, file := range s.Files {
		fld := idx(f("storage"), "files", i)
		checkPath(&ps, fld+".path", file.Path, opts.AllowedPrefixes)
		checkMode(&ps, fld+".mode", file.Mode)
		if len(file.Append) > 0 {
			problemf(&ps, fld+".append", "append is not supported: a node rewrites whole files, and appending on every update would grow the file")
		}
		if file.Contents.Source != nil || file.Contents.Compression != nil {
			n := checkResource(&ps, fld+".contents", file.Contents, opts.MaxFileBytes)
			opts.Sizes.put(file.Contents, n)
			total += n
		}
	}
	if total > opts.MaxConfigBytes {
		problemf(&ps, f("storage.files"), "file contents expand to %d bytes in total, over the per-config limit of %d", total, opts.MaxConfigBytes)
	}
	for i, d := range s.Directories {
		fld := idx(f("storage"), "directories", i)
		checkPath(&ps, fld+".path", d.Path, opts.AllowedPrefixes)
		checkMode(&ps, fld+".mode", d.Mode)
	}
	for i, l := range s.Links {
		fld := idx(f("storage"), "links", i)
		checkPath(&ps, fld+".path", l.Path, opts.AllowedPrefixes)
	}

	// Passwd: only the core user, only its keys and password.
	for i := range cfg.Passwd.Groups {
		problemf(&ps, idx(f("passwd"), "groups", i), "groups cannot be managed on a running node")
	}
	for i, u := range cfg.Passwd.Users {
		fld := idx(f("passwd"), "users", i)
		if u.Name != opts.CoreUser {
			problemf(&ps, fld+".name", "user %q is not allowed: only %q may be configured", u.Name, opts.CoreUser)
			continue
		}
		v := reflect.ValueOf(u)
		t := v.Type()
		for k := 0; k < t.NumField(); k++ {
			tag := strings.Split(t.Field(k).Tag.Get("json"), ",")[0]
			switch tag {
			case "name", "sshAuthorizedKeys", "passwordHash":
				continue
			}
			if !v.Field(k).IsZero() {
				problemf(&ps, fld+"."+tag, "only sshAuthorizedKeys and passwordHash may be set for user %q", u.Name)
			}
		}
	}

	// Systemd: unit names as systemd reads them; dropin names must stay
	// inside the unit's .d directory.
	for i, u := range cfg.Systemd.Units {
		fld := idx(f("systemd"), "units", i)
		if err := ValidUnitName(u.Name); err != nil {
			problemf(&ps, fld+".name", "%v", err)
		}
		for j, d := range u.Dropins {
			checkUnitName(&ps, idx(fld, "dropins", j)+".name", d.Name)
		}
	}
	return ps
}

// checkResource allows data: URLs only, and only ones that decode to at
// most max bytes. It returns the decoded size (max+1 when over): a gzip
// stream is expanded through a limited reader and never held whole.
func checkResource(ps *Problems, field string, r ign3types.Resource, max int64) int64 {
	if r.Source == nil {
		return 0
	}
	src := *r.Source
	scheme, _, ok := strings.Cut(src, ":")
	if !ok || !strings.EqualFold(scheme, "data") {
		problemf(ps, field+".source", "remote source %q is not allowed: only data: URLs (a node never fetches config from elsewhere)", redactURL(src))
		return 0
	}
	if len(r.HTTPHeaders) > 0 {
		problemf(ps, field+".httpHeaders", "httpHeaders make no sense on a data: URL")
	}
	data, err := decodeDataURL(src)
	if err != nil {
		problemf(ps, field+".source", "bad data URL: %v", err)
		return 0
	}
	size := int64(len(data))
	if r.Compression != nil {
		switch *r.Compression {
		case "":
		case "gzip":
			zr, err := pooledGzipReader(data)
			if err == nil {
				size, err = io.Copy(io.Discard, io.LimitReader(zr, max+1))
				gzipReaders.Put(zr)
			}
			if err != nil {
				problemf(ps, field+".source", "bad gzip data: %v", err)
				return size
			}
		default:
			problemf(ps, field+".compression", "unsupported compression %q: only gzip", *r.Compression)
		}
	}
	if size > max {
		problemf(ps, field+".source", "contents expand to more than %d bytes, the per-file limit", max)
	}
	return size
}

// gzipReaders are reused: a gzip.Reader holds a 32 KiB window, and every
// gzipped file of every MachineConfig is measured.
var gzipReaders sync.Pool

// pooledGzipReader is gzip.NewReader(bytes.NewReader(data)) with a reader
// from gzipReaders; put it back when done.
func pooledGzipReader(data []byte) (*gzip.Reader, error) {
	if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
		if err := zr.Reset(bytes.NewReader(data)); err != nil {
			gzipReaders.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(bytes.NewReader(data))
}

// redactURL keeps the scheme and host of a URL for the message but never
// credentials or long data.
func redactURL(s string) string {
	if at := strings.Index(s, "@"); at >= 0 {
		if i := strings.Index(s, "://"); i >= 0 && i < at {
			s = s[:i+3] + "…" + s[at:]
		}
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// checkPath enforces absolute, clean paths under an allowed prefix.
func checkPath(ps *Problems, field, p string, allowed []string) {
	switch {
	case p == "":
		problemf(ps, field, "path is empty")
		return
	case !strings.HasPrefix(p, "/"):
		problemf(ps, field, "path %q is not absolute", p)
		return
	case strings.ContainsRune(p, 0):
		problemf(ps, field, "path contains a NUL byte")
		return
	}
	for rest := p; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if c == ".." {
			problemf(ps, field, "path %q contains ..", p)
			return
		}
	}
	if path.Clean(p) != p {
		problemf(ps, field, "path %q is not clean (want %q)", p, path.Clean(p))
		return
	}
	if !underAllowed(p, allowed) {
		problemf(ps, field, "path %q must be under one of %s", p, strings.Join(allowed, ", "))
	}
}

func hasDirPrefix(p, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func underAllowed(p string, allowed []string) bool {
	if !hasDirPrefix(p, "/usr/local") {
		for _, f := range forbiddenPrefixes {
			if hasDirPrefix(p, f) {
				return false
			}
		}
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(a, "/")
		if a == "" {
			continue
		}
		if strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

func checkMode(ps *Problems, field string, mode *int) {
	if mode == nil {
		return
	}
	if *mode < 0 || *mode > 0o777 {
		problemf(ps, field, "invalid mode %#o: special bits and values above 0777 are not allowed", *mode)
	}
}

// checkUnitName refuses names that would leave /etc/systemd/system.
func checkUnitName(ps *Problems, field, name string) {
	switch {
	case name == "":
		problemf(ps, field, "name is empty")
	case strings.ContainsAny(name, "/\\\x00") || name == "." || name == "..":
		problemf(ps, field, "name %q would escape /etc/systemd/system", name)
	}
}

// ValidateKernelType refuses kernel types MCO does not know.
func ValidateKernelType(kt, field string) Problems {
	switch kt {
	case "", KernelTypeDefault, KernelTypeRealtime, KernelType64kPages:
		return nil
	}
	var ps Problems
	problemf(&ps, field, "kernelType %q is not one of default, realtime, 64k-pages", kt)
	return ps
}

// IgnitionProblems runs Ignition's own validation of cfg (the checks
// Ignition would make before applying it) and returns its errors and
// warnings with field paths under field. raw, when not nil, is the JSON cfg
// came from, which adds unknown-key warnings.
func IgnitionProblems(cfg ign3types.Config, raw []byte, field string) Problems {
	if raw != nil {
		return ReportProblems(validate.ValidateWithContext(cfg, raw), field)
	}
	return ReportProblems(ValidateIgnitionConfig(cfg), field)
}

// ReportProblems converts an Ignition report into Problems under field.
// Info entries are dropped.
func ReportProblems(r report.Report, field string) Problems {
	var ps Problems
	for _, e := range r.Entries {
		var sev Severity
		switch {
		case e.Kind == nil:
			continue
		case e.Kind.IsFatal():
			sev = SeverityError
		case e.Kind == report.Warn:
			sev = SeverityWarning
		default:
			continue
		}
		fld := field
		for _, el := range e.Context.Path {
			switch v := el.(type) {
			case int:
				fld += "[" + strconv.Itoa(v) + "]"
			default:
				if fld != "" {
					fld += "."
				}
				fld += fmt.Sprint(v)
			}
		}
		// Markers (line, column) are left out: the JSON Ignition saw is
		// converted from YAML, so its positions mean nothing to people.
		ps = append(ps, Problem{Field: fld, Message: e.Message, Severity: sev})
	}
	return ps
}

// ValidateMerged checks what merging MachineConfigs that each passed
// ValidateIgnition and Ignition's validation can still get wrong, without
// checking every entry again: the version, the kernel type, the total
// decompressed size (from opts.Sizes where the MachineConfigs' checks
// recorded it), links over the merged entries (Ignition's validation of the
// storage section, only when there are links), and the encoded size. It
// returns the problems and the encoded size. cfgJSON, when not nil, is
// r.Config already encoded. The agent, which does not trust the hub, runs
// the full ValidateRendered.
func ValidateMerged(r *Rendered, cfgJSON []byte, opts ValidationOptions) (Problems, int) {
	cfgLen := -1
	if cfgJSON != nil {
		cfgLen = len(cfgJSON)
	}
	return ValidateMergedEncoded(r, cfgLen, opts)
}

// ValidateMergedEncoded is ValidateMerged given only the length of
// r.Config's encoding (-1 when not known), so a caller that streamed the
// encoding need not hold it.
func ValidateMergedEncoded(r *Rendered, cfgLen int, opts ValidationOptions) (Problems, int) {
	opts = opts.withDefaults()
	var ps Problems
	if v := r.Config.Ignition.Version; v != "" && v != IgnitionVersion {
		problemf(&ps, "spec.config.ignition.version", "version %q, want %s", v, IgnitionVersion)
	}
	ps = append(ps, ValidateKernelType(r.KernelType, "spec.kernelType")...)
	var total int64
	for i, f := range r.Config.Storage.Files {
		if f.Contents.Source == nil {
			continue
		}
		n, ok := opts.Sizes.get(f.Contents)
		if !ok {
			n = checkResource(&ps, idx("spec.config.storage", "files", i)+".contents", f.Contents, opts.MaxFileBytes)
			opts.Sizes.put(f.Contents, n)
		}
		total += n
	}
	if total > opts.MaxConfigBytes {
		problemf(&ps, "spec.config.storage.files", "file contents expand to %d bytes in total, over the per-config limit of %d", total, opts.MaxConfigBytes)
	}
	if len(r.Config.Storage.Links) > 0 {
		storage := ign3types.Config{Ignition: ign3types.Ignition{Version: IgnitionVersion}, Storage: r.Config.Storage}
		ps = append(ps, IgnitionProblems(storage, nil, "spec.config").Errors()...)
	}
	size := 0
	var mc MachineConfig
	var err error
	if cfgLen >= 0 && r.Config.Ignition.Version != "" {
		// Measured with a one-byte stand-in for the config, which is
		// already encoded: the same length, without copying it again.
		mc, err = r.machineConfigWith(json.RawMessage("0"))
	} else {
		mc, err = r.MachineConfig()
		cfgLen = 1
	}
	if err != nil {
		problemf(&ps, "", "%v", err)
	} else if data, err := json.Marshal(mc); err != nil {
		problemf(&ps, "", "encode rendered config: %v", err)
	} else {
		size = len(data) - 1 + cfgLen
	}
	if opts.MaxRenderedBytes > 0 && size > opts.MaxRenderedBytes {
		problemf(&ps, "", "rendered config is %d bytes, over the limit of %d", size, opts.MaxRenderedBytes)
	}
	return ps, size
}

// ValidateRendered checks a rendered config before a node applies it: the
// node's own rules (ValidateIgnition), Ignition's validation, the version,
// the kernel type, and the size of the encoded object. The agent calls it on
// everything it downloads, so a bad render never reaches a host.
func ValidateRendered(r *Rendered, opts ValidationOptions) Problems {
	if r == nil {
		return Problems{{Message: "no rendered config", Severity: SeverityError}}
	}
	opts = opts.withDefaults()
	var ps Problems
	if r.Name == "" {
		problemf(&ps, "metadata.name", "rendered config has no name")
	}
	if v := r.Config.Ignition.Version; v != "" && v != IgnitionVersion {
		problemf(&ps, "spec.config.ignition.version", "version %q, want %s", v, IgnitionVersion)
	}
	ps = append(ps, ValidateIgnition(r.Config, "spec.config", opts)...)
	cfg := r.Config
	if cfg.Ignition.Version == "" {
		cfg.Ignition.Version = IgnitionVersion
	}
	ps = append(ps, IgnitionProblems(cfg, nil, "spec.config").Errors()...)
	ps = append(ps, ValidateKernelType(r.KernelType, "spec.kernelType")...)
	for i, ka := range r.KernelArguments {
		if strings.TrimSpace(ka) == "" {
			problemf(&ps, "spec.kernelArguments["+strconv.Itoa(i)+"]", "empty kernel argument")
		}
	}
	if opts.MaxRenderedBytes > 0 {
		// The compact encoding, as the object is stored in etcd, and as
		// ValidateMerged measures it on the hub.
		mc, err := r.MachineConfig()
		var data []byte
		if err == nil {
			data, err = json.Marshal(mc)
		}
		if err != nil {
			problemf(&ps, "", "%v", err)
		} else if len(data) > opts.MaxRenderedBytes {
			problemf(&ps, "", "rendered config is %d bytes, over the limit of %d", len(data), opts.MaxRenderedBytes)
		}
	}
	return ps
}
