package configserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/go-semver/semver"
	v32tov22 "github.com/coreos/ign-converter/translate/v32tov22"
	v32tov31 "github.com/coreos/ign-converter/translate/v32tov31"
	v33tov32 "github.com/coreos/ign-converter/translate/v33tov32"
	v34tov33 "github.com/coreos/ign-converter/translate/v34tov33"
	v35tov34 "github.com/coreos/ign-converter/translate/v35tov34"
	ign35 "github.com/coreos/ignition/v2/config/v3_5/types"
)

// ignitionMIME is the media type Ignition asks for.
const ignitionMIME = "application/vnd.coreos.ignition+json"

// Spec versions the server can write: the rendered config's (3.5) and,
// through ign-converter, each older 3.x down to 3.1, and 2.2.
var (
	newest3 = *semver.New("3.5.0")
	oldest3 = *semver.New("3.1.0")
	spec22  = *semver.New("2.2.0")
)

// ErrUnsupportedVersion: the Accept header asks for Ignition versions none
// of which can be served (answered 400).
var ErrUnsupportedVersion = errors.New("unsupported Ignition spec version")

type acceptValue struct {
	mediaType string
	version   *semver.Version
	q         float64
}

// parseAccept splits an Accept header into its media ranges, highest q
// first (stable), ignoring malformed entries.
func parseAccept(h string) []acceptValue {
	var out []acceptValue
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		v := acceptValue{mediaType: mt, q: 1}
		if s, ok := params["version"]; ok {
			if sv, err := semver.NewVersion(s); err == nil {
				v.version = sv
			} else if sv, err := semver.NewVersion(s + ".0"); err == nil {
				v.version = sv // "3.1" as well as "3.1.0"
			}
		}
		if s, ok := params["q"]; ok {
			if q, err := strconv.ParseFloat(s, 64); err == nil {
				v.q = q
			}
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	return out
}

// Negotiate picks the spec version to serve for an Accept header, with
// the rules of MCO's detectSpecVersionFromAcceptHeader: the first Ignition
// media range (by q) whose version can be served wins; 3.x clients get
// their version or the newest older one the server writes (at most 3.5,
// at least 3.1), 2.x clients from 2.2 get 2.2; a header without an
// Ignition media range (curl) gets 2.2, as from MCO; Ignition ranges none
// of which can be served are ErrUnsupportedVersion.
func Negotiate(accept string) (semver.Version, error) {
	unsupported := false
	for _, v := range parseAccept(accept) {
		if v.mediaType != ignitionMIME || v.version == nil {
			continue
		}
		switch ver := *v.version; {
		case !ver.LessThan(oldest3) && ver.Major == 3:
			if newest3.LessThan(ver) {
				return newest3, nil
			}
			return semver.Version{Major: 3, Minor: ver.Minor}, nil
		case !ver.LessThan(spec22) && ver.Major == 2:
			return spec22, nil
		default:
			unsupported = true
		}
	}
	if unsupported {
		return semver.Version{}, fmt.Errorf("accept %q: %w", accept, ErrUnsupportedVersion)
	}
	return spec22, nil
}

// Encode writes cfg (spec 3.5) as spec version v, translating down with
// ign-converter one version at a time.
func Encode(cfg ign35.Config, v semver.Version) ([]byte, error) {
	cfg.Ignition.Version = newest3.String()
	if v == newest3 {
		return json.Marshal(cfg)
	}
	c34, err := v35tov34.Translate(cfg)
	if err != nil {
		return nil, fmt.Errorf("translate config to Ignition 3.4: %w", err)
	}
	if v.Major == 3 && v.Minor == 4 {
		return json.Marshal(c34)
	}
	c33, err := v34tov33.Translate(c34)
	if err != nil {
		return nil, fmt.Errorf("translate config to Ignition 3.3: %w", err)
	}
	if v.Major == 3 && v.Minor == 3 {
		return json.Marshal(c33)
	}
	c32, err := v33tov32.Translate(c33)
	if err != nil {
		return nil, fmt.Errorf("translate config to Ignition 3.2: %w", err)
	}
	switch {
	case v.Major == 3 && v.Minor == 2:
		return json.Marshal(c32)
	case v.Major == 3 && v.Minor == 1:
		c31, err := v32tov31.Translate(c32)
		if err != nil {
			return nil, fmt.Errorf("translate config to Ignition 3.1: %w", err)
		}
		return json.Marshal(c31)
	case v == spec22:
		c22, err := v32tov22.Translate(c32)
		if err != nil {
			return nil, fmt.Errorf("translate config to Ignition 2.2: %w", err)
		}
		return json.Marshal(c22)
	}
	return nil, fmt.Errorf("encode config as Ignition %s: %w", v, ErrUnsupportedVersion)
}
