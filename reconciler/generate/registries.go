package generate

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"

	"stoker.dev/stoker/api"
)

// sourceRe and mirrorRe are the formats MCO's validateRegistriesConfScopes
// accepts for a mirror source and a mirror (openshift/api's IDMS schema):
// host[:port][/path], no tag or digest; a source may also be *.domain.
var (
	sourceRe = regexp.MustCompile(`^\*(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+$|^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$`)
	mirrorRe = regexp.MustCompile(`^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?)(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$`)
)

const (
	neverContactSource    = "NeverContactSource"
	allowContactingSource = "AllowContactingSource"
)

// ValidateMirrorSet checks one mirror set as MCO's
// validateRegistriesConfScopes does for each entry: source and mirror
// formats, the policy's values, and NeverContactSource not naming the
// source among its mirrors. Fields are relative to the object.
func ValidateMirrorSet(ms MirrorSet) api.Problems {
	var ps api.Problems
	list, fld := ms.Mirrors()
	for i, m := range list {
		f := fld + "[" + strconv.Itoa(i) + "]"
		if !sourceRe.MatchString(m.Source) {
			ps = append(ps, errorAt("", f+".source", "invalid format for source %q (host[:port][/path] or *.domain)", m.Source))
		}
		if ms.Kind == KindImageContentSourcePolicy && strings.Contains(m.Source, "*") {
			ps = append(ps, errorAt("", f+".source", "wildcard entries are not supported with mirror configuration %q", m.Source))
		}
		switch m.MirrorSourcePolicy {
		case "", allowContactingSource, neverContactSource:
		default:
			ps = append(ps, errorAt("", f+".mirrorSourcePolicy", "%q is not one of NeverContactSource, AllowContactingSource", m.MirrorSourcePolicy))
		}
		if ms.Kind == KindImageContentSourcePolicy && m.MirrorSourcePolicy != "" {
			ps = append(ps, errorAt("", f+".mirrorSourcePolicy", "ImageContentSourcePolicy has no mirrorSourcePolicy (use an ImageDigestMirrorSet)"))
		}
		for j, mr := range m.Mirrors {
			if !mirrorRe.MatchString(mr) {
				ps = append(ps, errorAt("", f+".mirrors["+strconv.Itoa(j)+"]", "invalid format for mirror %q (host[:port][/path], no scheme, tag or digest)", mr))
			}
			if m.MirrorSourcePolicy == neverContactSource && mr == m.Source {
				ps = append(ps, errorAt("", f+".mirrors["+strconv.Itoa(j)+"]", "cannot set mirrorSourcePolicy: NeverContactSource if the source %q is one of the mirrors", m.Source))
			}
		}
	}
	return ps
}

// isValidScope is runtime-utils' IsValidRegistriesConfScope, which MCO
// applies to insecure, blocked and allowed registries.
func isValidScope(scope string) bool {
	if scope == "" {
		return false
	}
	if !strings.Contains(scope, "*") {
		return true
	}
	return strings.HasPrefix(scope, "*.") && !strings.ContainsAny(scope[2:], "/@:*")
}

// ValidateImage checks the Image named cluster as MCO's syncImageConfig
// does: the name, each registry scope, and allowed and blocked registries
// not both set (updatePolicyJSON).
func ValidateImage(img Image) api.Problems {
	var ps api.Problems
	if img.Name != ImageConfigName {
		ps = append(ps, errorAt("", "metadata.name", "MCO reads only the Image named %q; %q would have no effect", ImageConfigName, img.Name))
	}
	rs := img.Spec.RegistrySources
	for _, l := range []struct {
		name   string
		scopes []string
	}{{"insecureRegistries", rs.InsecureRegistries}, {"blockedRegistries", rs.BlockedRegistries}, {"allowedRegistries", rs.AllowedRegistries}} {
		for i, s := range l.scopes {
			if !isValidScope(s) {
				ps = append(ps, errorAt("", "spec.registrySources."+l.name+"["+strconv.Itoa(i)+"]", "invalid entry for %s %q", l.name, s))
			}
		}
	}
	if len(rs.AllowedRegistries) > 0 && len(rs.BlockedRegistries) > 0 {
		ps = append(ps, errorAt("", "spec.registrySources", "invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified"))
	}
	return ps
}

// registriesPools are the pools MCO's syncImageConfig writes a registries
// MachineConfig for; custom pools take worker's through their selector.
var registriesPools = map[string]bool{api.PoolMaster: true, api.PoolWorker: true, api.PoolArbiter: true}

// generateRegistries is MCO's syncImageConfig: for each built-in pool,
// the pool's registries.conf edited with the mirror sets and the Image's
// insecure and blocked registries (updateRegistriesConfig), policy.json
// when allowed or blocked registries are set (updatePolicyJSON), and the
// search-registries drop-in (updateSearchRegistriesConfig), in one
// MachineConfig 99-<pool>-generated-registries.
func generateRegistries(in Input) ([]Generated, api.Problems) {
	if len(in.MirrorSets) == 0 && in.Image == nil {
		return nil, nil
	}
	var origins []Origin
	var ps api.Problems
	seen := map[string]string{} // source -> policy, across all sets
	var digest, tag []Mirror
	for _, it := range in.MirrorSets {
		ms := it.Object
		origins = append(origins, Origin{File: it.File, Kind: ms.Kind, Name: ms.Name})
		list, fld := ms.Mirrors()
		for i, m := range list {
			pol := m.MirrorSourcePolicy
			if pol == "" {
				pol = allowContactingSource
			}
			if p, ok := seen[m.Source]; ok && p != pol {
				ps = append(ps, errorAt(it.File, fld+"["+strconv.Itoa(i)+"].mirrorSourcePolicy", "conflicting mirrorSourcePolicy is set for the same source %q in imagedigestmirrorsets, imagetagmirrorsets, or imagecontentsourcepolicies", m.Source))
			}
			seen[m.Source] = pol
			if ms.Kind == KindImageTagMirrorSet {
				tag = append(tag, m)
			} else {
				digest = append(digest, m)
			}
		}
	}
	var rs RegistrySources
	if in.Image != nil {
		rs = in.Image.Object.Spec.RegistrySources
		origins = append(origins, Origin{File: in.Image.File, Kind: KindImage, Name: in.Image.Object.Name})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	digestSets, err := mergeMirrorSets(digest)
	if err == nil {
		var tagSets []Mirror
		tagSets, err = mergeMirrorSets(tag)
		digest, tag = digestSets, tagSets
	}
	if err != nil {
		return nil, api.Problems{errorAt(origins[0].File, "", "merge mirror sets: %v", err)}
	}
	var out []Generated
	for _, pool := range in.Pools {
		if !registriesPools[pool.Name] {
			continue
		}
		var files []file
		data, mode, from, _, err := pool.baseFile(RegistriesConfPath)
		if err != nil {
			return nil, api.Problems{errorAt("", "", "pool %s: %v", pool.Name, err)}
		}
		if len(digest) > 0 || len(tag) > 0 || len(rs.InsecureRegistries) > 0 || len(rs.BlockedRegistries) > 0 {
			reg, err := editRegistriesConf(data, rs.InsecureRegistries, rs.BlockedRegistries, digest, tag)
			if err != nil {
				return nil, api.Problems{errorAt("", "", "pool %s: update %s from MachineConfig %s: %v", pool.Name, RegistriesConfPath, from, err)}
			}
			files = append(files, file{path: RegistriesConfPath, data: reg, mode: mode})
		}
		if len(rs.AllowedRegistries) > 0 || len(rs.BlockedRegistries) > 0 {
			data, mode, from, _, err := pool.baseFile(PolicyJSONPath)
			if err == nil {
				data, err = updatePolicyJSON(data, rs.BlockedRegistries, rs.AllowedRegistries)
			}
			if err != nil {
				return nil, api.Problems{errorAt(in.Image.File, "spec.registrySources", "pool %s: update %s from MachineConfig %s: %v", pool.Name, PolicyJSONPath, from, err)}
			}
			files = append(files, file{path: PolicyJSONPath, data: data, mode: mode})
		}
		if len(rs.ContainerRuntimeSearchRegistries) > 0 {
			var buf bytes.Buffer
			conf := sysregistriesv2.V2RegistriesConf{UnqualifiedSearchRegistries: rs.ContainerRuntimeSearchRegistries}
			if err := toml.NewEncoder(&buf).Encode(conf); err != nil {
				return nil, api.Problems{errorAt(in.Image.File, "spec.registrySources.containerRuntimeSearchRegistries", "encode %s: %v", SearchRegistriesPath, err)}
			}
			files = append(files, file{path: SearchRegistriesPath, data: buf.Bytes()})
		}
		out = append(out, machineConfig(managedName(pool.Name, "registries", 0), pool.Name, files, origins))
	}
	return out, nil
}

// mergeMirrorSets is runtime-utils' mergedDigestMirrorSets /
// mergedTagMirrorSets: one entry per source, sorted by source, its mirrors
// ordered consistently with every set's preference order; sets whose only
// mirror is the source itself are dropped; NeverContactSource if any set
// says so.
func mergeMirrorSets(sets []Mirror) ([]Mirror, error) {
	bySource := map[string][][]string{}
	never := map[string]bool{}
	for _, s := range sets {
		real := false
		for _, m := range s.Mirrors {
			if m != s.Source {
				real = true
			}
		}
		if !real {
			continue
		}
		if s.MirrorSourcePolicy == neverContactSource {
			never[s.Source] = true
		}
		bySource[s.Source] = append(bySource[s.Source], s.Mirrors)
	}
	var out []Mirror
	for _, src := range sortedKeys(bySource) {
		order, err := topoSort(src, bySource[src])
		if err != nil {
			return nil, err
		}
		m := Mirror{Source: src, Mirrors: order}
		if never[src] {
			m.MirrorSourcePolicy = neverContactSource
		}
		out = append(out, m)
	}
	return out, nil
}

// topoSort orders the mirrors of one source so each set's order holds,
// with the source last (and then dropped, as sysregistriesv2 tries the
// source last anyway). Ties go to the first-seen mirror.
func topoSort(source string, lists [][]string) ([]string, error) {
	var nodes []string
	idx := map[string]int{}
	add := func(n string) {
		if _, ok := idx[n]; !ok {
			idx[n] = len(nodes)
			nodes = append(nodes, n)
		}
	}
	edges := map[string]map[string]bool{}
	in := map[string]int{}
	edge := func(a, b string) {
		add(a)
		add(b)
		if edges[a] == nil {
			edges[a] = map[string]bool{}
		}
		if !edges[a][b] {
			edges[a][b] = true
			in[b]++
		}
	}
	for _, l := range lists {
		for i := 0; i+1 < len(l); i++ {
			edge(l[i], l[i+1])
		}
		hasSource := false
		for _, m := range l {
			hasSource = hasSource || m == source
		}
		if !hasSource {
			edge(l[len(l)-1], source)
		}
	}
	var out []string
	done := map[string]bool{}
	for len(out) < len(nodes) {
		picked := ""
		for _, n := range nodes {
			if !done[n] && in[n] == 0 {
				picked = n
				break
			}
		}
		if picked == "" {
			return nil, fmt.Errorf("mirrors of %s are ordered in a cycle across mirror sets", source)
		}
		done[picked] = true
		out = append(out, picked)
		for b := range edges[picked] {
			in[b]--
		}
	}
	if len(out) > 0 && out[len(out)-1] == source {
		out = out[:len(out)-1]
	}
	return out, nil
}

// editRegistriesConf decodes a registries.conf, applies the mirrors and
// the insecure and blocked scopes as runtime-utils' EditRegistriesConfig
// does (mirror entries with pull-from-mirror digest-only or tag-only, the
// source blocked for NeverContactSource, insecure and blocked flags
// propagated to nested scopes), and encodes it again with BurntSushi/toml
// as MCO's updateRegistriesConfig.
func editRegistriesConf(data []byte, insecure, blocked []string, digest, tag []Mirror) ([]byte, error) {
	conf := sysregistriesv2.V2RegistriesConf{}
	if _, err := toml.Decode(string(data), &conf); err != nil {
		return nil, fmt.Errorf("decode registries config: %w", err)
	}
	entry := func(scope string) *sysregistriesv2.Registry {
		for i := range conf.Registries {
			r := conf.Registries[i].Location
			if conf.Registries[i].Prefix != "" {
				r = conf.Registries[i].Prefix
			}
			if r == scope {
				return &conf.Registries[i]
			}
		}
		reg := sysregistriesv2.Registry{}
		if strings.HasPrefix(scope, "*.") {
			reg.Prefix = scope
		} else {
			reg.Location = scope
		}
		conf.Registries = append(conf.Registries, reg)
		return &conf.Registries[len(conf.Registries)-1]
	}
	apply := func(sets []Mirror, pull string) {
		for _, s := range sets {
			reg := entry(s.Source)
			if s.MirrorSourcePolicy == neverContactSource {
				reg.Blocked = true
			}
			for _, m := range s.Mirrors {
				reg.Mirrors = append(reg.Mirrors, sysregistriesv2.Endpoint{Location: m, PullFromMirror: pull})
			}
		}
	}
	apply(digest, sysregistriesv2.MirrorByDigestOnly)
	apply(tag, sysregistriesv2.MirrorByTagOnly)
	for _, s := range blocked {
		entry(s)
	}
	scopeOf := func(r *sysregistriesv2.Registry) string {
		if r.Prefix != "" {
			return r.Prefix
		}
		return r.Location
	}
	for _, s := range insecure {
		entry(s).Insecure = true
		for i := range conf.Registries {
			r := &conf.Registries[i]
			if scopeNested(scopeOf(r), s) {
				r.Insecure = true
			}
			for j := range r.Mirrors {
				if scopeNested(r.Mirrors[j].Location, s) {
					r.Mirrors[j].Insecure = true
				}
			}
		}
	}
	for _, s := range blocked {
		entry(s).Blocked = true
		for i := range conf.Registries {
			if scopeNested(scopeOf(&conf.Registries[i]), s) {
				conf.Registries[i].Blocked = true
			}
		}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(conf); err != nil {
		return nil, fmt.Errorf("encode registries config: %w", err)
	}
	return buf.Bytes(), nil
}

// scopeNested is runtime-utils' ScopeIsNestedInsideScope.
func scopeNested(sub, super string) bool {
	if sub == super {
		return true
	}
	if len(sub) > len(super) && strings.HasPrefix(sub, super) && sub[len(super)] == '/' {
		return true
	}
	if strings.HasPrefix(super, "*.") {
		if host, _, ok := strings.Cut(sub, ":"); ok {
			return strings.HasSuffix(host, super[1:]) && !strings.Contains(host, "/")
		}
		host, _, _ := strings.Cut(sub, "/")
		return strings.HasSuffix(host, super[1:])
	}
	return false
}
