package render

import (
	ign2_2types "github.com/coreos/ignition/config/v2_2/types"
)

// dedupeIgnition22 removes what spec 2.2 allowed inside one config and
// spec 3 does not, as MCO's removeIgnDuplicateFilesUnitsUsers does before
// it translates: of files with the same path the last wins; of units with
// the same name the last wins and takes the dropins of the earlier ones it
// lacks (by name); the users, which must all be the core user, become one
// core user holding every ssh key once (dedupePasswdUserSSHKeys), the last
// user's first. Users other than the core user are left for validation to
// report with their field path (MCO refuses them too). Unlike MCO it keeps the files' and units' order where there
// is nothing to remove, so configs without duplicates render as before.
func dedupeIgnition22(cfg ign2_2types.Config, coreUser string) ign2_2types.Config {
	cfg.Storage.Files = lastByKey(cfg.Storage.Files, func(f ign2_2types.File) string { return f.Path }, nil)
	cfg.Systemd.Units = lastByKey(cfg.Systemd.Units, func(u ign2_2types.Unit) string { return u.Name },
		func(winner *ign2_2types.Unit, earlier ign2_2types.Unit) {
			for _, d := range earlier.Dropins {
				have := false
				for _, e := range winner.Dropins {
					if e.Name == d.Name {
						have = true
						break
					}
				}
				if !have {
					winner.Dropins = append(winner.Dropins, d)
				}
			}
		})
	users := cfg.Passwd.Users
	for _, u := range users {
		if u.Name != coreUser {
			return cfg
		}
	}
	if len(users) == 0 {
		return cfg
	}
	out := users[len(users)-1]
	for i := len(users) - 1; i >= 0; i-- {
		if i < len(users)-1 {
			out.SSHAuthorizedKeys = append(out.SSHAuthorizedKeys, users[i].SSHAuthorizedKeys...)
		}
	}
	seen := map[ign2_2types.SSHAuthorizedKey]bool{}
	keys := out.SSHAuthorizedKeys[:0:0]
	for _, k := range out.SSHAuthorizedKeys {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	out.SSHAuthorizedKeys = keys
	cfg.Passwd.Users = []ign2_2types.PasswdUser{out}
	return cfg
}

// lastByKey keeps the last item of each key, at the place of that last
// item; absorb, when set, folds each earlier duplicate into the winner,
// latest first.
func lastByKey[T any](items []T, key func(T) string, absorb func(winner *T, earlier T)) []T {
	last := map[string]int{}
	for i, it := range items {
		last[key(it)] = i
	}
	if len(last) == len(items) {
		return items
	}
	out := make([]T, 0, len(last))
	for i, it := range items {
		if last[key(it)] != i {
			continue
		}
		if absorb != nil {
			for j := i - 1; j >= 0; j-- {
				if key(items[j]) == key(it) {
					absorb(&it, items[j])
				}
			}
		}
		out = append(out, it)
	}
	return out
}
