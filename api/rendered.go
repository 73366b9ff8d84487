package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// IgnitionVersion is the one Ignition spec version every config is
// normalised to. It is MCO's choice, so rendered configs served to machines
// on first boot are ones RHCOS's Ignition reads.
const IgnitionVersion = "3.5.0"

// Rendered is a pool's merged config: what rendered/<name>.json on
// stoker/status holds, decoded.
type Rendered struct {
	Name            string
	Config          ign3types.Config
	KernelArguments []string
	KernelType      string
	Extensions      []string
	FIPS            bool
	OSImageURL      string
}

// MachineConfig returns r as the complete rendered MachineConfig object MCO
// would have, with spec.config as Ignition JSON.
func (r *Rendered) MachineConfig() (MachineConfig, error) {
	cfg := r.Config
	if cfg.Ignition.Version == "" {
		cfg.Ignition.Version = IgnitionVersion
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return MachineConfig{}, fmt.Errorf("encode rendered config %s: %w", r.Name, err)
	}
	return r.machineConfigWith(raw)
}

// machineConfigWith is MachineConfig with the config already encoded.
func (r *Rendered) machineConfigWith(raw []byte) (MachineConfig, error) {
	return MachineConfig{
		TypeMeta:   TypeMeta{APIVersion: MachineConfigGroupVersion, Kind: KindMachineConfig},
		ObjectMeta: ObjectMeta{Name: r.Name},
		Spec: MachineConfigSpec{
			Config:          raw,
			KernelArguments: r.KernelArguments,
			KernelType:      r.KernelType,
			Extensions:      r.Extensions,
			FIPS:            r.FIPS,
			OSImageURL:      r.OSImageURL,
		},
	}, nil
}

// Encode returns the canonical bytes of rendered/<name>.json: indented JSON
// with a trailing newline, the same on every machine.
func (r *Rendered) Encode() ([]byte, error) {
	mc, err := r.MachineConfig()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(mc); err != nil {
		return nil, fmt.Errorf("encode rendered config %s: %w", r.Name, err)
	}
	return buf.Bytes(), nil
}

// ParseRendered decodes rendered/<name>.json. It checks the shape only;
// callers that apply it also run ValidateRendered.
func ParseRendered(data []byte) (*Rendered, error) {
	var mc MachineConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&mc); err != nil {
		return nil, fmt.Errorf("decode rendered config: %w", err)
	}
	if mc.Kind != KindMachineConfig {
		return nil, fmt.Errorf("decode rendered config: kind is %q, want %s", mc.Kind, KindMachineConfig)
	}
	r := &Rendered{
		Name:            mc.Name,
		KernelArguments: mc.Spec.KernelArguments,
		KernelType:      mc.Spec.KernelType,
		Extensions:      mc.Spec.Extensions,
		FIPS:            mc.Spec.FIPS,
		OSImageURL:      mc.Spec.OSImageURL,
	}
	if len(mc.Spec.Config) > 0 {
		if err := json.Unmarshal(mc.Spec.Config, &r.Config); err != nil {
			return nil, fmt.Errorf("decode rendered config %s: spec.config: %w", mc.Name, err)
		}
	}
	if v := r.Config.Ignition.Version; v != "" && v != IgnitionVersion {
		return nil, fmt.Errorf("decode rendered config %s: spec.config.ignition.version: %q, want %s", mc.Name, v, IgnitionVersion)
	}
	return r, nil
}
