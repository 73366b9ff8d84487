package api

import (
	"fmt"
	"strings"
)

// UnitNameMax is systemd's UNIT_NAME_MAX: a unit name is shorter.
const UnitNameMax = 256

// unitTypes are the unit type suffixes systemd knows (unit_type_table in
// systemd's src/basic/unit-def.c).
var unitTypes = map[string]bool{
	"service": true, "mount": true, "swap": true, "socket": true, "target": true,
	"device": true, "automount": true, "timer": true, "path": true, "slice": true, "scope": true,
}

// ValidUnitName checks name with systemd's own grammar for unit names
// (unit_name_is_valid in systemd's src/basic/unit-name.c, documented in
// systemd.unit(5)): shorter than 256 bytes, a known type suffix after the
// last dot, a non-empty prefix of ASCII letters, digits and ":-_.\" with at
// most one "@" that does not start it (a template "foo@.service" or an
// instance "foo@bar.service"). It also refuses a leading "-": systemd
// accepts "-.mount" and "-foo.service", but a unit argument starting
// with "-" is read as an option by systemctl, and no config needs one.
// That last rule goes beyond MCO, which checks only the suffix (Ignition's
// Unit.Validate).
func ValidUnitName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("unit name is empty")
	case len(name) >= UnitNameMax:
		return fmt.Errorf("unit name is %d bytes, systemd's limit is %d", len(name), UnitNameMax-1)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("unit name %q starts with \"-\" (it would reach systemctl as an option)", name)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return fmt.Errorf("unit name %q has no type suffix (.service, .timer, ...)", name)
	}
	if suffix := name[dot+1:]; !unitTypes[suffix] {
		return fmt.Errorf("unit name %q: unknown unit type %q", name, suffix)
	}
	prefix := name[:dot]
	at := strings.IndexByte(prefix, '@')
	if at == 0 {
		return fmt.Errorf("unit name %q starts with \"@\"", name)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":-_.\\@", c) >= 0 {
			continue
		}
		return fmt.Errorf("unit name %q: character %q is not allowed in a systemd unit name", name, c)
	}
	return nil
}
