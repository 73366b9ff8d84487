package api

// FleetTrustFile is the file on stoker/fleet naming the commits the hub
// refused because their signatures did not verify (written only when
// signing is on).
const FleetTrustFile = "trust.yaml"

// Refusal is one commit the hub refused.
type Refusal struct {
	// Kind is source (a config-branch head), status or fleet (a head of
	// the hub's own branches it did not sign), or report.
	Kind   string `json:"kind"`
	Branch string `json:"branch,omitempty"`
	Node   string `json:"node,omitempty"`
	Commit string `json:"commit"`
	Reason string `json:"reason"`
}

// FleetTrust is trust.yaml on stoker/fleet.
type FleetTrust struct {
	// Source says what the rendered heads were verified against.
	Source  string    `json:"source,omitempty"`
	Refused []Refusal `json:"refused,omitempty"`
}
