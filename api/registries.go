package api

import (
	"fmt"
	"reflect"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// SafeRegistriesChange reports whether a change of registries.conf (TOML,
// parsed into containers/image's sysregistriesv2 types as MCO's daemon
// parses it) can be applied with a crio reload alone, without draining the
// node, following isSafeContainerRegistryConfChanges in MCO's
// pkg/daemon/drain.go: nothing removed from unqualified-search-registries
// and its order kept (entries may be appended); no registry removed; a
// registry present in both may only gain mirrors, and only mirrors pulled by
// digest (pull-from-mirror = "digest-only", or the registry's
// mirror-by-digest-only); a registry added must pull all its mirrors by
// digest. Anything else, or bytes that do not parse, is unsafe: the node
// drains.
func SafeRegistriesChange(oldData, newData []byte) (bool, error) {
	var oldConf, newConf sysregistriesv2.V2RegistriesConf
	if _, err := toml.Decode(string(oldData), &oldConf); err != nil {
		return false, fmt.Errorf("decode old %s: %w", ContainerRegistryConfPath, err)
	}
	if _, err := toml.Decode(string(newData), &newConf); err != nil {
		return false, fmt.Errorf("decode new %s: %w", ContainerRegistryConfPath, err)
	}
	if len(oldConf.UnqualifiedSearchRegistries) > len(newConf.UnqualifiedSearchRegistries) {
		return false, nil
	}
	for i, r := range oldConf.UnqualifiedSearchRegistries {
		if newConf.UnqualifiedSearchRegistries[i] != r {
			return false, nil
		}
	}
	oldRegs, newRegs := registriesByScope(oldConf), registriesByScope(newConf)
	for scope := range oldRegs {
		if _, ok := newRegs[scope]; !ok {
			return false, nil
		}
	}
	for scope, nr := range newRegs {
		or, existed := oldRegs[scope]
		switch {
		case !existed:
			if !allMirrorsByDigest(nr, nr.Mirrors) || len(nr.Mirrors) == 0 || nr.Blocked {
				return false, nil
			}
		case reflect.DeepEqual(or, nr):
		default:
			if or.Prefix != nr.Prefix || or.Location != nr.Location || or.Blocked != nr.Blocked ||
				or.Insecure != nr.Insecure || or.MirrorByDigestOnly != nr.MirrorByDigestOnly ||
				or.PullFromMirror != nr.PullFromMirror || or.NamespaceProxy != nr.NamespaceProxy {
				return false, nil
			}
			for _, m := range or.Mirrors {
				nm, ok := findMirror(m.Location, nr.Mirrors)
				if !ok || !reflect.DeepEqual(m, nm) {
					return false, nil
				}
			}
			var added []sysregistriesv2.Endpoint
			for _, m := range nr.Mirrors {
				if _, ok := findMirror(m.Location, or.Mirrors); !ok {
					added = append(added, m)
				}
			}
			if !allMirrorsByDigest(nr, added) {
				return false, nil
			}
		}
	}
	return true, nil
}

func registriesByScope(c sysregistriesv2.V2RegistriesConf) map[string]sysregistriesv2.Registry {
	out := make(map[string]sysregistriesv2.Registry, len(c.Registries))
	for _, r := range c.Registries {
		scope := r.Location
		if r.Prefix != "" {
			scope = r.Prefix
		}
		out[scope] = r
	}
	return out
}

func allMirrorsByDigest(r sysregistriesv2.Registry, mirrors []sysregistriesv2.Endpoint) bool {
	for _, m := range mirrors {
		if !r.MirrorByDigestOnly && m.PullFromMirror != sysregistriesv2.MirrorByDigestOnly {
			return false
		}
	}
	return true
}

func findMirror(loc string, mirrors []sysregistriesv2.Endpoint) (sysregistriesv2.Endpoint, bool) {
	for _, m := range mirrors {
		if m.Location == loc {
			return m, true
		}
	}
	return sysregistriesv2.Endpoint{}, false
}
